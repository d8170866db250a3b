"""What the dashboard knows about the fleet, built from MQTT messages, with bounded memory.

:meth:`Fleet.ingest` takes one message (topic, payload, retained flag) and returns the change to
push to the browsers (a small dict), or ``None`` when nothing changed: a re-delivered event (same
``id``), a payload of an unknown version, or bad input (counted in :attr:`Fleet.rejected`).

Memory is bounded whatever the broker sends, so a kiosk can stay open for days: at most
``Limits.max_devices`` devices (the longest-silent one that is not online is forgotten first),
``max_cameras`` per device, the last ``events_per_device`` events, the summaries of the last
``summary_window_s`` (and at most ``summaries_per_camera``), and the last ``seen_ids`` event ids
per device for de-duplication. Payloads larger than ``max_payload`` are refused unread.
"""
from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1          # the payload version this dashboard understands (docs/mqtt.md: field `v`)
PER_FACE = frozenset({"face_appeared", "emotion_changed", "face_left"})
EVENT_TYPES = PER_FACE | {"summary"}
# fields of an event the page shows; the rest (box, snapshot images) stays out of its memory
EVENT_FIELDS = ("id", "seq", "camera", "type", "ts", "epoch", "track_id", "label", "score", "previous_label",
                "duration_s", "emotions", "summary")


@dataclass(frozen=True)
class Limits:
    """Upper bounds of everything the dashboard keeps (per process, and the page mirrors them)."""

    max_devices: int = 1000
    max_cameras: int = 16
    events_per_device: int = 30
    summary_window_s: float = 3600.0
    summaries_per_camera: int = 360
    seen_ids: int = 2048
    max_payload: int = 256 * 1024


class BoundedSet:
    """A set that forgets its oldest members beyond ``size`` (event ids already shown)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, None] = OrderedDict()

    def add(self, item: str) -> bool:
        """Add ``item``; False when it was already there (a duplicate)."""
        if item in self._items:
            return False
        self._items[item] = None
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Camera:
    """One camera of a device: its retained state and the summaries of the last hour."""

    state: dict[str, Any] | None = None
    summaries: deque = field(default_factory=deque)

    def add_summary(self, event: dict[str, Any], limits: Limits, now: float) -> None:
        self.summaries.append(event)
        while len(self.summaries) > limits.summaries_per_camera:
            self.summaries.popleft()
        self.prune(limits, now)

    def prune(self, limits: Limits, now: float) -> None:
        """Drop summaries that ended before the timeline's window."""
        while self.summaries and self.summaries[0]["epoch"] < now - limits.summary_window_s:
            self.summaries.popleft()


@dataclass
class Device:
    """Everything known about one device id under the prefix."""

    id: str
    limits: Limits
    status: dict[str, Any] | None = None
    since: float | None = None          # when the current availability began (epoch s), if known
    stats: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    cameras: dict[str, Camera] = field(default_factory=dict)
    events: deque = field(default_factory=deque)
    seen: BoundedSet | None = None
    heard: float = 0.0                  # time.time() of the last message
    per_face: bool = False              # per-face events seen (False: aggregate-only so far)
    last_seq: int = 0
    gaps: int = 0                       # events never received, from holes in seq
    newest: float = 0.0                 # event time (epoch s) of the newest event or summary

    def __post_init__(self) -> None:
        self.seen = BoundedSet(self.limits.seen_ids)

    def camera(self, name: str) -> Camera | None:
        """The camera called ``name``, created if there is room (None beyond max_cameras)."""
        cam = self.cameras.get(name)
        if cam is None and len(self.cameras) < self.limits.max_cameras:
            cam = self.cameras[name] = Camera()
        return cam

    def view(self, now: float) -> dict[str, Any]:
        """The device as the page receives it in a snapshot."""
        for cam in self.cameras.values():
            cam.prune(self.limits, now)
        return {"id": self.id, "status": self.status, "since": self.since, "stats": self.stats,
                "config": self.config, "heard": self.heard, "per_face": self.per_face, "gaps": self.gaps,
                "newest": self.newest or None, "live": (self.status or {}).get("state") == "online",
                "cameras": {n: {"state": c.state, "summaries": list(c.summaries)} for n, c in self.cameras.items()},
                "events": list(self.events)}


class Fleet:
    """All devices under one topic prefix."""

    def __init__(self, prefix: str, limits: Limits | None = None) -> None:
        self.prefix = prefix.strip("/")
        self.limits = limits or Limits()
        self.devices: dict[str, Device] = {}
        self.received = 0
        self.duplicates = 0
        self.rejected: dict[str, int] = {}      # reason -> count
        self.last_rejection: str | None = None
        self.evicted: list[str] = []            # devices forgotten for room; the feed tells the pages
        self._topic = ""

    # ---- input ----

    def ingest(self, topic: str, payload: bytes, retained: bool = False, now: float | None = None) -> dict | None:
        """Apply one MQTT message; the change for the page, or None when there is none."""
        now = time.time() if now is None else now
        self.received += 1
        self._topic = topic
        parts = topic.split("/")
        head = self.prefix.split("/")
        if parts[:len(head)] != head or len(parts) < len(head) + 2:
            return self._reject("topic", "not <prefix>/<device>/<kind>")
        device_id, kind = parts[len(head)], "/".join(parts[len(head) + 1:])
        shown = kind in ("status", "stats", "config/state", "events") or (kind.startswith("state/")
                                                                          and kind.count("/") == 1)
        if not shown:
            return None                      # a topic the dashboard does not show (discovery, config/set, ...)
        if not payload:                      # a retained message being cleared
            return self._cleared(device_id, kind)
        if len(payload) > self.limits.max_payload:
            return self._reject("too large", f"{len(payload)} bytes (limit {self.limits.max_payload})")
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._reject("not JSON", f"not JSON ({exc})")
        if not isinstance(data, dict):
            return self._reject("not an object", f"a JSON {type(data).__name__}, not an object")
        if data.get("v", SCHEMA_VERSION) != SCHEMA_VERSION:
            return self._reject("version", f"payload version {data.get('v')!r}, this dashboard reads {SCHEMA_VERSION}")
        if kind == "status":
            return self._status(device_id, data, retained, now)
        if kind == "stats":
            return self._simple(device_id, "stats", data, now)
        if kind == "config/state":
            return self._simple(device_id, "config", data, now)
        if kind == "events":
            return self._event(device_id, data, now)
        return self._state(device_id, kind[6:], data, now)

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.last_rejection = f"{self._topic}: {detail}"
        return None

    def _device(self, device_id: str, now: float, create: bool = True) -> Device | None:
        dev = self.devices.get(device_id)
        if dev is None and create:
            if not device_id or len(device_id) > 128:
                return self._reject("device id", f"device id {device_id[:40]!r} is empty or too long")
            if len(self.devices) >= self.limits.max_devices:
                self._evict()
            dev = self.devices[device_id] = Device(device_id, self.limits)
        if dev is not None:
            dev.heard = now
        return dev

    def _evict(self) -> None:
        """Forget the device heard from longest ago, preferring ones that are not online."""
        def key(d: Device) -> tuple[bool, float]:
            return ((d.status or {}).get("state") == "online", d.heard)
        victim = min(self.devices.values(), key=key)
        del self.devices[victim.id]
        self.evicted.append(victim.id)

    def _cleared(self, device_id: str, kind: str) -> dict | None:
        dev = self.devices.get(device_id)
        if dev is None:
            return None
        if kind == "status":           # the operator removed the device (mosquitto_pub -r -n -t .../status)
            del self.devices[device_id]
            return {"t": "removed", "device": device_id}
        if kind.startswith("state/") and kind[6:] in dev.cameras:
            del dev.cameras[kind[6:]]
            return {"t": "camera_removed", "device": device_id, "camera": kind[6:]}
        return None

    def _status(self, device_id: str, data: dict, retained: bool, now: float) -> dict | None:
        state = data.get("state")
        if state not in ("online", "offline", "stopped"):
            return self._reject("status", f"state {state!r} is not online, offline or stopped")
        dev = self._device(device_id, now)
        if dev is None:
            return None
        previous = (dev.status or {}).get("state")
        epoch = _number(data.get("epoch"))
        if state == "offline":
            # the will's epoch is when the lost connection was opened: the time it went offline is
            # when the broker sent it (now, if live), or, from a retained copy, the last time heard of
            last = _number((dev.stats or {}).get("epoch"))
            dev.since = now if not retained else max(x for x in (epoch, last, 0.0) if x is not None) or None
        elif previous != state or dev.since is None:
            dev.since = epoch or now
        dev.status = data
        return {"t": "status", "device": device_id, "data": data, "since": dev.since}

    def _simple(self, device_id: str, key: str, data: dict, now: float) -> dict | None:
        dev = self._device(device_id, now)
        if dev is None:
            return None
        setattr(dev, key, data)
        return {"t": key, "device": device_id, "data": data}

    def _state(self, device_id: str, camera: str, data: dict, now: float) -> dict | None:
        if not isinstance(data.get("faces"), int) or not isinstance(data.get("mix", {}), dict):
            return self._reject("state", "no integer 'faces' or no 'mix' object")
        dev = self._device(device_id, now)
        cam = dev.camera(camera) if dev else None
        if cam is None:
            return self._reject("cameras", f"more than {self.limits.max_cameras} cameras on this device")
        cam.state = data
        return {"t": "state", "device": device_id, "camera": camera, "data": data}

    def _event(self, device_id: str, data: dict, now: float) -> dict | None:
        kind, event_id, camera = data.get("type"), data.get("id"), data.get("camera")
        if kind not in EVENT_TYPES or not isinstance(event_id, str) or not isinstance(camera, str) or not camera:
            return self._reject("event", f"an event needs a known type, an id and a camera (type {kind!r})")
        epoch = _number(data.get("epoch"))
        if epoch is None:
            return self._reject("event", "an event without a numeric epoch")
        if kind == "summary" and not isinstance(data.get("summary"), dict):
            return self._reject("event", "a summary event without its 'summary' object")
        dev = self._device(device_id, now)
        if dev is None:
            return None
        if not dev.seen.add(event_id):
            self.duplicates += 1
            return None
        seq = data.get("seq")
        if isinstance(seq, int):
            if dev.last_seq and seq > dev.last_seq + 1:
                dev.gaps += seq - dev.last_seq - 1
            dev.last_seq = max(dev.last_seq, seq)
        event = {k: data[k] for k in EVENT_FIELDS if k in data}
        dev.newest = max(dev.newest, epoch)
        cam = dev.camera(camera)
        if kind == "summary":
            if cam is not None:
                cam.add_summary(event, self.limits, now)
        else:
            dev.per_face = True
            dev.events.append(event)
            if len(dev.events) > 1 and dev.events[-2]["epoch"] > epoch:    # late: keep event-time order
                dev.events = deque(sorted(dev.events, key=lambda e: e["epoch"]))
            while len(dev.events) > self.limits.events_per_device:
                dev.events.popleft()
        return {"t": "event", "device": device_id, "data": event, "gaps": dev.gaps}

    # ---- output ----

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Everything, for a page that (re)connects."""
        now = time.time() if now is None else now
        return {"t": "snapshot", "prefix": self.prefix, "now": now, "limits": self.limits.__dict__,
                "devices": [d.view(now) for d in self.devices.values()], "counters": self.counters()}

    def counters(self) -> dict[str, Any]:
        """Messages received, duplicates dropped, rejected by reason (shown in the page's footer)."""
        return {"received": self.received, "duplicates": self.duplicates, "rejected": dict(self.rejected),
                "last_rejection": self.last_rejection, "devices": len(self.devices)}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
