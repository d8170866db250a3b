"""Home Assistant MQTT discovery: sensors for the dominant emotion, faces in view, and availability.

Home Assistant creates an entity for every retained JSON message under
``<discovery_prefix>/<component>/<node_id>/<object_id>/config``; the entities then read the
device's own retained topics (`state/<camera>`, `status`), so nothing here is sent more than once
per connection.
"""
from __future__ import annotations

import re
from typing import Any

from edge import __version__
from edge.config.homeassistant import HomeAssistantConfig


def node_id(device: str) -> str:
    """The device id reduced to what discovery topics and unique ids allow ([a-zA-Z0-9_-])."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", device)


# Home Assistant's availability only knows two words; `stopped` means unavailable too.
_AVAILABLE_TEMPLATE = "{{ 'online' if value_json.state == 'online' else 'offline' }}"


def _device_block(cfg: HomeAssistantConfig, device: str) -> dict[str, Any]:
    return {"identifiers": [f"fer-edge-{node_id(device)}"], "name": cfg.device_name or f"fer-edge {device}",
            "model": "fer-edge", "manufacturer": "fer-edge", "sw_version": __version__}


def availability_message(cfg: HomeAssistantConfig, device: str, status_topic: str) -> tuple[str, dict[str, Any]]:
    """(topic, config) of the device's connectivity binary sensor, read from the retained `status` topic."""
    node = node_id(device)
    return (f"{cfg.discovery_prefix.rstrip('/')}/binary_sensor/{node}/online/config",
            {"name": "Online", "unique_id": f"fer_edge_{node}_online", "object_id": f"fer_edge_{node}_online",
             "state_topic": status_topic,
             "value_template": "{{ 'ON' if value_json.state == 'online' else 'OFF' }}",
             "device_class": "connectivity", "entity_category": "diagnostic", "device": _device_block(cfg, device)})


def camera_messages(cfg: HomeAssistantConfig, device: str, camera: str, state_topic: str,
                    status_topic: str) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) of one camera's sensors: dominant emotion (mix as attributes) and faces in view."""
    node, cam = node_id(device), node_id(camera)
    base = f"{cfg.discovery_prefix.rstrip('/')}/sensor/{node}"
    common = {"state_topic": state_topic, "device": _device_block(cfg, device),
              "availability": [{"topic": status_topic, "value_template": _AVAILABLE_TEMPLATE,
                                "payload_available": "online", "payload_not_available": "offline"}]}
    return [
        (f"{base}/{cam}_emotion/config", {
            "name": f"{camera} emotion", "unique_id": f"fer_edge_{node}_{cam}_emotion",
            "object_id": f"fer_edge_{node}_{cam}_emotion",
            "value_template": "{{ value_json.dominant if value_json.dominant else 'none' }}",
            "json_attributes_topic": state_topic, "json_attributes_template": "{{ value_json.mix | tojson }}",
            "icon": "mdi:emoticon-outline", **common}),
        (f"{base}/{cam}_faces/config", {
            "name": f"{camera} faces in view", "unique_id": f"fer_edge_{node}_{cam}_faces",
            "object_id": f"fer_edge_{node}_{cam}_faces", "value_template": "{{ value_json.faces }}",
            "state_class": "measurement", "unit_of_measurement": "faces", "icon": "mdi:account-multiple",
            **common}),
    ]
