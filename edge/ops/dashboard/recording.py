"""What the dashboard hands to its history store: summaries, status changes, names and groups.

:class:`HistoryTap` sees every change the model passes to the pages (under the feed's lock, on the
MQTT thread) and queues what the history keeps to the store's writer thread, without waiting.
"""
from __future__ import annotations

from typing import Any

from edge.ops.dashboard.store import Recorder


class HistoryTap:
    """Change dicts of :class:`edge.ops.dashboard.model.Fleet` -> :class:`Recorder` writes."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._state: dict[str, str] = {}                       # device -> last availability recorded
        self._who: dict[str, tuple[str, str, tuple[str, ...]]] = {}   # device -> name, location, groups

    def __call__(self, change: dict[str, Any]) -> None:
        kind, device = change.get("t"), change.get("device")
        if not isinstance(device, str):
            return
        data = change.get("data") or {}
        if kind == "event" and data.get("type") == "summary":
            s = data.get("summary") or {}
            seconds = s.get("seconds") if isinstance(s.get("seconds"), dict) else {}
            self.recorder.put("summary", device, data["camera"], float(data["epoch"]),
                              float(s.get("interval_s") or 0) or 60.0, float(s.get("faces") or 0),
                              {k: float(v) for k, v in seconds.items() if isinstance(v, (int, float))})
        elif kind == "status" and self._state.get(device) != data.get("state"):
            self._state[device] = data["state"]
            self.recorder.put("status", device, data["state"], float(change.get("since") or change.get("rx") or 0))
        elif kind in ("stats", "config"):
            self._who_changed(device, data, change.get("rx") or 0.0)
        elif kind == "removed":
            self._state.pop(device, None)

    def _who_changed(self, device: str, data: dict[str, Any], now: float) -> None:
        old = self._who.get(device, ("", "", ()))
        name = data.get("name") if isinstance(data.get("name"), str) else old[0]
        location = data.get("location") if isinstance(data.get("location"), str) else old[1]
        groups = data.get("groups")
        groups = tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else old[2]
        if (name, location, groups) != old:
            self._who[device] = (name, location, groups)
            self.recorder.put("device", device, name, location, groups, float(now))
