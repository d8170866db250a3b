"""Section `device`: who this device is (its id is in every MQTT topic and event)."""
from __future__ import annotations

import re
import socket

from pydantic import Field

from edge.config.base import ID_PATTERN, StrictModel


def _hostname_id() -> str:
    # A hostname may hold dots (FQDN) or other characters MQTT topics and HA ids do not like.
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname().split(".")[0]).strip("-")
    return (name or "fer-edge")[:64]


class DeviceConfig(StrictModel):
    """Who this device is: its id appears in every MQTT topic and event."""

    id: str = Field(default_factory=_hostname_id, pattern=ID_PATTERN,
                    description="Device id used in MQTT topics and events (letters, digits, '-', '_'; "
                                "default: the hostname)")
    name: str = Field("", max_length=128, description="Human-readable name (e.g. for Home Assistant)")
    location: str = Field("", max_length=128, description="Where the device is installed (free text)")
