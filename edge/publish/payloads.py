"""The JSON payloads besides events: availability (`status`), health (`stats`), and retained messages.

Each is built here, apart from the client that sends it (edge/publish/mqtt.py), so that their
shape can be read and tested without a broker; schemas in edge/schemas/.
"""
from __future__ import annotations

import time
from typing import Any

from edge import __version__
from edge.events import SCHEMA_VERSION, iso_utc
from edge.formatting import compact_json


def status_payload(state: str, device: str, instance: str | None = None, not_before: float = 0.0) -> bytes:
    """The retained availability message (schema edge/schemas/status.schema.json).

    ``instance`` (this process's, edge/publish/instance.py) lets a second process with the same
    device id be noticed (edge/publish/duplicate.py). ``not_before``: the time of the last event
    published, so that `stopped` is never stamped before the events it follows (a video file's
    events carry its media time, which runs ahead of the clock when frames are processed faster).
    """
    now = max(time.time(), not_before)
    body = {"v": SCHEMA_VERSION, "state": state, "device": device, "version": __version__,
            "ts": iso_utc(now), "epoch": round(now, 3)}
    if instance:
        body["instance"] = instance
    return compact_json(body).encode()


def stats_payload(device: str, started: float, stats: dict[str, Any], publisher: dict[str, Any]) -> dict[str, Any]:
    """The stats message (schema edge/schemas/stats.schema.json) from the service's figures and the publisher's.

    ``fps`` per stage and ``dropped_frames`` are derived from the processor's ``stage_ms`` and
    ``dropped`` when the service does not give them; ``started`` is a time.monotonic() value.
    """
    now = time.time()
    derived: dict[str, Any] = {}
    if "fps" not in stats and isinstance(stats.get("stage_ms"), dict):
        derived["fps"] = {k: round(1000.0 / ms, 1) for k, ms in stats["stage_ms"].items() if ms}
    if "dropped_frames" not in stats and isinstance(stats.get("dropped"), int):
        derived["dropped_frames"] = stats["dropped"]
    return {"v": SCHEMA_VERSION, "device": device, "version": __version__, "ts": iso_utc(now), "epoch": round(now, 3),
            "uptime_s": round(time.monotonic() - started, 1), **derived, **stats, **publisher}



def encode(payload: dict[str, Any] | str | bytes) -> bytes:
    """A message body: bytes as they are, text as UTF-8, a mapping as compact JSON."""
    if isinstance(payload, bytes):
        return payload
    return (payload if isinstance(payload, str) else compact_json(payload)).encode()
