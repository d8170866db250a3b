"""The MQTT topics of one device (documented in docs/mqtt.md), and what a topic level may hold."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """Every topic of one device (documented in docs/mqtt.md)."""

    prefix: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    def state(self, camera: str) -> str:
        return f"{self.base}/state/{camera}"

    def sub(self, name: str) -> str:
        """A further topic below the device, e.g. ``config/state``."""
        return f"{self.base}/{name.strip('/')}"


def check_topic_level(value: str, what: str) -> str:
    """Return ``value`` if it can be one MQTT topic level, else raise ValueError naming ``what``."""
    if not value or any(c in value for c in "/+#\0"):
        raise ValueError(f"{what} {value!r} cannot be used in MQTT topics: it must be non-empty, without '/', '+' or '#'")
    return value

