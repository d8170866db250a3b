"""Noticing a second process that publishes under this device id (issue 12.6).

Two processes with one device id (and so one default client id) make the broker disconnect one
whenever the other connects. Each process subscribes to its own retained ``status`` topic. A
status message from another instance means another process is live under the same id when it
arrives live, or when it is the retained one found on a reconnection and is dated after this
process started. The retained message found on the first connection is never counted: it is the
last word of an earlier run of this device (a will, `stopped`), whatever the clock said then (a
Pi without a real-time clock may boot with its clock behind). What to do about a duplicate is the
sink's business; this module only decides and words it.
"""
from __future__ import annotations

import json
import time
from typing import Any

from edge.events import SCHEMA_VERSION, iso_utc


class DuplicateWatch:
    """Which other instances published on this device's status topic since this process started."""

    def __init__(self, device: str, instance: str, started_epoch: float) -> None:
        self.device, self.instance, self.started_epoch = device, instance, started_epoch
        self.others: dict[str, str] = {}      # instance -> the last state it published

    def check(self, payload: bytes, retained: bool = False, first_connection: bool = False) -> tuple[str, str] | None:
        """(other instance, its state) when ``payload`` is a status message of another live process, else None.

        ``retained``: delivered from the broker's store on subscribing; ``first_connection``: on this
        process's first connection.
        """
        if retained and first_connection:
            return None
        try:
            msg = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(msg, dict):
            return None
        other, epoch, state = msg.get("instance"), msg.get("epoch"), msg.get("state")
        if not isinstance(other, str) or other == self.instance or not isinstance(epoch, (int, float)):
            return None
        if retained and epoch < self.started_epoch:
            return None         # an earlier run of this device: its retained status or its last will
        self.others[other] = str(state)
        return other, str(state)

    def message(self, client_id: str) -> str:
        """The log line: what is wrong and what to change."""
        return (f"another fer-edge process uses the same device id {self.device!r} (instances "
                f"{', '.join(sorted(self.others))}; this one is {self.instance}): the broker disconnects one "
                f"whenever the other connects and both publish on the same topics. Give each device its own "
                f"device.id; meanwhile this process connects as client id {client_id!r}")

    def alarm(self) -> dict[str, Any]:
        """The retained payload of ``<prefix>/<device>/duplicate``."""
        now = time.time()
        return {"v": SCHEMA_VERSION, "device": self.device, "instances": sorted({self.instance, *self.others}),
                "ts": iso_utc(now), "epoch": round(now, 3),
                "error": f"more than one process publishes as device {self.device!r}: give each its own device.id"}
