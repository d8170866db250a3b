"""Section `homeassistant`: Home Assistant MQTT discovery (edge/publish/discovery.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class HomeAssistantConfig(StrictModel):
    """Section `homeassistant`: announce the device to Home Assistant through MQTT discovery."""

    enabled: bool = Field(False, description="Publish retained discovery messages on every (re)connection.")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix (its MQTT "
                                                               "integration setting; 'homeassistant' by default).")
    device_name: str = Field("", description="Name of the device in Home Assistant; empty: 'fer-edge <device id>'.")
