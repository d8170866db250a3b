"""Home Assistant MQTT discovery: per camera, the dominant emotion (an enum sensor), faces in view, one
``state_class: measurement`` sensor per emotion of the model (its share of the face-time, %, so Home
Assistant keeps long-term statistics and graphs without templates), people seen, an ``event`` entity
for faces appearing and emotion changes, and diagnostic sensors (fps, lag); per device, availability
and the event queue's depth. The device is named by ``device.name`` (or ``homeassistant.device_name``)
with ``suggested_area`` from ``device.location``.

Home Assistant creates an entity for every retained JSON message under
``<discovery_prefix>/<component>/<node_id>/<object_id>/config``; the entities then read the
device's own topics (`state/<camera>`, `status`, `stats`, `events`), so nothing here is sent more
than once per connection.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.config.homeassistant import HomeAssistantConfig


def node_id(device: str) -> str:
    """The device id reduced to what discovery topics and unique ids allow ([a-zA-Z0-9_-])."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", device)


# Home Assistant's availability only knows two words; `stopped` means unavailable too.
_AVAILABLE_TEMPLATE = "{{ 'online' if value_json.state == 'online' else 'offline' }}"


# the per-face events the event entity fires (the events topic carries every camera's, and summaries)
EVENT_TYPES = ("face_appeared", "emotion_changed")


@dataclass(frozen=True)
class Announced:
    """What Home Assistant is told beyond the device id: its name and place, the model's emotions, its topics."""

    name: str = ""                       # device.name
    location: str = ""                   # device.location: Home Assistant's suggested area
    emotions: tuple[str, ...] = ()       # the model card's classes: one statistics sensor each
    stats_topic: str = ""
    events_topic: str = ""


def _device_block(cfg: HomeAssistantConfig, device: str, who: Announced) -> dict[str, Any]:
    block = {"identifiers": [f"fer-edge-{node_id(device)}"],
             "name": cfg.device_name or who.name or f"fer-edge {device}",
             "model": "fer-edge", "manufacturer": "fer-edge", "sw_version": __version__}
    if who.location:
        block["suggested_area"] = who.location
    return block


def _availability(status_topic: str) -> list[dict[str, str]]:
    return [{"topic": status_topic, "value_template": _AVAILABLE_TEMPLATE,
             "payload_available": "online", "payload_not_available": "offline"}]


def availability_message(cfg: HomeAssistantConfig, device: str, status_topic: str,
                         who: Announced = Announced()) -> tuple[str, dict[str, Any]]:
    """(topic, config) of the device's connectivity binary sensor, read from the retained `status` topic."""
    node = node_id(device)
    return (f"{cfg.discovery_prefix.rstrip('/')}/binary_sensor/{node}/online/config",
            {"name": "Online", "unique_id": f"fer_edge_{node}_online", "object_id": f"fer_edge_{node}_online",
             "state_topic": status_topic,
             "value_template": "{{ 'ON' if value_json.state == 'online' else 'OFF' }}",
             "device_class": "connectivity", "entity_category": "diagnostic",
             "device": _device_block(cfg, device, who)})


def device_messages(cfg: HomeAssistantConfig, device: str, status_topic: str,
                    who: Announced = Announced()) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) of the device's own entities: availability, and the event queue's depth (diagnostic)."""
    msgs = [availability_message(cfg, device, status_topic, who)]
    if who.stats_topic:
        node = node_id(device)
        msgs.append((f"{cfg.discovery_prefix.rstrip('/')}/sensor/{node}/queue_depth/config", {
            "name": "Event queue", "unique_id": f"fer_edge_{node}_queue_depth",
            "object_id": f"fer_edge_{node}_queue_depth", "state_topic": who.stats_topic,
            "value_template": "{{ value_json.queue.depth }}", "unit_of_measurement": "events",
            "state_class": "measurement", "entity_category": "diagnostic", "icon": "mdi:tray-full",
            "availability": _availability(status_topic), "device": _device_block(cfg, device, who)}))
    return msgs


def camera_messages(cfg: HomeAssistantConfig, device: str, camera: str, state_topic: str,
                    status_topic: str, who: Announced = Announced()) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) of one camera's entities (the module's docstring lists them)."""
    node, cam = node_id(device), node_id(camera)
    prefix = cfg.discovery_prefix.rstrip("/")
    base = f"{prefix}/sensor/{node}"
    block = _device_block(cfg, device, who)
    common = {"state_topic": state_topic, "device": block, "availability": _availability(status_topic)}

    def ids(suffix: str) -> dict[str, str]:
        return {"unique_id": f"fer_edge_{node}_{cam}_{suffix}", "object_id": f"fer_edge_{node}_{cam}_{suffix}"}

    options = [*who.emotions, "unknown", "none"] if who.emotions else None
    emotion = {"name": f"{camera} emotion", **ids("emotion"),
               "value_template": "{{ value_json.dominant if value_json.dominant else 'none' }}",
               "json_attributes_topic": state_topic, "json_attributes_template": "{{ value_json.mix | tojson }}",
               "icon": "mdi:emoticon-outline", **common}
    if options:
        emotion.update({"device_class": "enum", "options": options})
    msgs = [
        (f"{base}/{cam}_emotion/config", emotion),
        (f"{base}/{cam}_faces/config", {
            "name": f"{camera} faces in view", **ids("faces"), "value_template": "{{ value_json.faces }}",
            "state_class": "measurement", "unit_of_measurement": "faces", "icon": "mdi:account-multiple",
            **common}),
        (f"{base}/{cam}_people/config", {
            "name": f"{camera} people seen", **ids("people"),
            "value_template": "{{ value_json.people if value_json.people is defined else None }}",
            "state_class": "measurement", "unit_of_measurement": "people", "icon": "mdi:account-group", **common}),
    ]
    for label in who.emotions:      # share of the face-time of the last summary interval
        msgs.append((f"{base}/{cam}_{node_id(label)}/config", {
            "name": f"{camera} {label}", **ids(node_id(label)),
            "value_template": f"{{{{ value_json.share['{label}'] if value_json.share is defined "
                              f"and value_json.share else None }}}}",
            "state_class": "measurement", "unit_of_measurement": "%", "suggested_display_precision": 0,
            "icon": "mdi:emoticon-outline", **common}))
    if who.events_topic:
        types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
        msgs.append((f"{prefix}/event/{node}/{cam}_faces/config", {
            "name": f"{camera} faces", **ids("face_event"), "state_topic": who.events_topic,
            "event_types": list(EVENT_TYPES),
            "value_template": f"{{% if value_json.camera == '{camera}' and value_json.type in [{types}] %}}"
                              "{{ {'event_type': value_json.type, 'label': value_json.get('label'), "
                              "'previous_label': value_json.get('previous_label'), "
                              "'track_id': value_json.get('track_id'), 'score': value_json.get('score')} | tojson }}"
                              "{% endif %}",
            "icon": "mdi:face-recognition", "device": block, "availability": _availability(status_topic)}))
    if who.stats_topic:
        per_cam = f"value_json.cameras['{camera}']"
        has_cam = f"value_json.cameras is defined and '{camera}' in value_json.cameras"
        msgs += [
            (f"{base}/{cam}_fps/config", {
                "name": f"{camera} fps", **ids("fps"), "state_topic": who.stats_topic,
                "value_template": f"{{{{ {per_cam}.processing_fps if {has_cam} else value_json.processing_fps }}}}",
                "unit_of_measurement": "fps", "state_class": "measurement", "entity_category": "diagnostic",
                "icon": "mdi:speedometer", "device": block, "availability": _availability(status_topic)}),
            (f"{base}/{cam}_lag/config", {
                "name": f"{camera} lag", **ids("lag"), "state_topic": who.stats_topic,
                "value_template": f"{{{{ value_json.lag_s['{camera}'] if value_json.lag_s is defined and "
                                  f"'{camera}' in value_json.lag_s else None }}}}",
                "unit_of_measurement": "s", "device_class": "duration", "state_class": "measurement",
                "entity_category": "diagnostic", "device": block, "availability": _availability(status_topic)}),
        ]
    return msgs
