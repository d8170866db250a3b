"""Section `device`: who this device is (its id is in every MQTT topic and event)."""
from __future__ import annotations

import re
import socket

from pydantic import Field, field_validator

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
    name: str = Field("", max_length=128, description="Human-readable name, shown before the id (dashboard, "
                                                      "`fleet list`, Home Assistant's device name)")
    location: str = Field("", max_length=128, description="Where the device is installed (free text): shown beside "
                                                          "its name, Home Assistant's suggested area, the dashboard's "
                                                          "history per location")
    groups: list[str] = Field(default_factory=list, max_length=16,
                              description="Fleet groups this device belongs to: it also applies config changes sent "
                                          "to <prefix>/group/<group>/config/set (precedence: this file < each group, "
                                          "in this order < changes sent to the device itself; docs/fleet.md)")

    @field_validator("groups")
    @classmethod
    def _group_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.match(ID_PATTERN, name):
                raise ValueError(f"group {name!r}: use letters, digits, '-' or '_' (it is one MQTT topic level)")
        if len(set(v)) != len(v):
            raise ValueError("a group is listed twice")
        return v
