"""What happened, as versioned event objects: the payload contract of the `events` MQTT topic.

The tracker's emitter builds an :class:`Event` (type, camera, track, label, scores, box); the
sink stamps it with the device id, a sequence number and a unique id when it enters the durable
queue (edge/publish/queue.py), and :meth:`Event.to_json` is what subscribers receive. The JSON
Schema of every payload lives in edge/schemas/ and is documented in docs/mqtt.md.
"""
from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from edge.config.events import EventsConfig, SnapshotConfig
from edge.formatting import compact_json

#: Version of every JSON payload this package publishes (field ``v``). A field is only ever
#: added, renamed or removed together with a bump of this number (see docs/mqtt.md).
SCHEMA_VERSION = 1

EventType = Literal["face_appeared", "emotion_changed", "face_left", "summary"]
EVENT_TYPES: tuple[str, ...] = ("face_appeared", "emotion_changed", "face_left", "summary")
#: Types that describe one face; ``events.aggregate_only`` keeps them off the wire.
PER_FACE_TYPES = frozenset({"face_appeared", "emotion_changed", "face_left"})

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def iso_utc(epoch: float) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``: ``2025-01-31T12:00:00.123Z``."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    """A fresh, globally unique event id (random UUID, 36 characters)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Summary:
    """What a `summary` event counts over one interval."""

    interval_s: float                 # length of the interval
    start: float                      # epoch seconds at its start (the event's ts is its end)
    counts: dict[str, int]            # emotion -> faces (tracks) that showed it during the interval
    faces: int                        # distinct faces (tracks) seen during the interval
    seconds: dict[str, float] = field(default_factory=dict)   # emotion -> face-seconds in the interval

    def to_dict(self) -> dict[str, Any]:
        return {"interval_s": round(float(self.interval_s), 3), "start": iso_utc(self.start),
                "counts": {k: int(v) for k, v in self.counts.items()}, "faces": int(self.faces),
                "seconds": {k: round(float(v), 3) for k, v in self.seconds.items()}}


@dataclass(frozen=True)
class Event:
    """One thing that happened in front of a camera.

    The emitter fills type, camera, ts and the type's fields; ``device``, ``seq`` and ``id`` are
    stamped by the sink when the event is queued (see :meth:`stamped`).
    """

    type: EventType
    camera: str = "cam0"
    ts: float = field(default_factory=time.time)            # epoch seconds (UTC) when it happened
    track_id: int | None = None                              # per-face types only
    label: str | None = None                                 # current emotion (per-face types)
    score: float | None = None                               # probability of ``label``
    scores: dict[str, float] | None = None                   # all class probabilities
    box: tuple[float, float, float, float] | None = None     # x, y, width, height in frame pixels
    previous_label: str | None = None                        # emotion_changed: the label before
    duration_s: float | None = None                          # face_left: how long the face was tracked
    emotions: dict[str, float] | None = None                 # face_left: seconds spent in each emotion
    summary: Summary | None = None                           # summary events only
    snapshot: bytes | None = None                            # JPEG face crop; published only if enabled
    device: str = ""
    seq: int = 0                                             # assigned by the queue, monotonic per device
    id: str = ""                                             # assigned by the queue, unique
    instance: str | None = None                              # the publishing process (edge/publish/instance.py)

    def stamped(self, device: str, seq: int, event_id: str | None = None, instance: str | None = None) -> "Event":
        """A copy carrying the device id, its sequence number, a unique id and the publishing process's instance."""
        return replace(self, device=device, seq=seq, id=event_id or new_event_id(), instance=instance)

    def to_dict(self) -> dict[str, Any]:
        """The published payload (schema edge/schemas/event.schema.json)."""
        d: dict[str, Any] = {
            "v": SCHEMA_VERSION, "id": self.id, "seq": self.seq, "device": self.device, "camera": self.camera,
            "type": self.type, "ts": iso_utc(self.ts), "epoch": round(float(self.ts), 3),
            "track_id": None if self.track_id is None else int(self.track_id),
            "label": self.label,
            "score": None if self.score is None else round(float(self.score), 4),
            "scores": None if self.scores is None else {k: round(float(v), 4) for k, v in self.scores.items()},
            "box": None if self.box is None else [round(float(v), 1) for v in self.box],
        }
        if self.type == "emotion_changed":
            d["previous_label"] = self.previous_label
        if self.type == "face_left":
            d["duration_s"] = None if self.duration_s is None else round(float(self.duration_s), 3)
            d["emotions"] = None if self.emotions is None else {k: round(float(v), 3) for k, v in self.emotions.items()}
        if self.type == "summary":
            d["summary"] = self.summary.to_dict() if self.summary else None
        if self.snapshot is not None:
            d["snapshot"] = {"format": "jpeg", "data": base64.b64encode(self.snapshot).decode("ascii")}
        if self.instance:
            d["instance"] = self.instance
        return d

    def to_json(self) -> str:
        """The payload as compact JSON text."""
        return compact_json(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        """Rebuild an event from its payload (what a consumer or a test reads back)."""
        s = d.get("summary")
        summary = None
        if s:
            summary = Summary(interval_s=s["interval_s"], start=_parse_iso(s["start"]), counts=dict(s["counts"]),
                              faces=s["faces"], seconds=dict(s.get("seconds", {})))
        snap = d.get("snapshot")
        return cls(type=d["type"], camera=d["camera"], ts=float(d["epoch"]), track_id=d.get("track_id"),
                   label=d.get("label"), score=d.get("score"), scores=d.get("scores"),
                   box=tuple(d["box"]) if d.get("box") else None, previous_label=d.get("previous_label"),
                   duration_s=d.get("duration_s"), emotions=d.get("emotions"), summary=summary,
                   snapshot=base64.b64decode(snap["data"]) if snap else None,
                   device=d["device"], seq=int(d["seq"]), id=d["id"], instance=d.get("instance"))


def _parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def publishable(events: list[Event], cfg: EventsConfig) -> list[Event]:
    """The events that may leave the device under ``cfg``: per-face ones dropped in aggregate_only mode,
    face crops removed unless snapshots are enabled (whatever the emitter attached)."""
    out = [e for e in events if not (cfg.aggregate_only and e.type in PER_FACE_TYPES)]
    if not cfg.snapshots.enabled:
        out = [replace(e, snapshot=None) if e.snapshot is not None else e for e in out]
    return out


def encode_snapshot(crop: Any, cfg: SnapshotConfig) -> bytes | None:
    """JPEG bytes of a face crop scaled to ``cfg.max_size``, or None when snapshots are disabled."""
    if not cfg.enabled:
        return None
    import cv2  # imported here: the event contract itself never needs OpenCV

    h, w = crop.shape[:2]
    scale = min(1.0, cfg.max_size / max(h, w))
    if scale < 1.0:
        crop = cv2.resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
    return buf.tobytes() if ok else None


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of a payload: ``event``, ``status``, ``stats``, ``state`` or ``config_state``."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    if not path.is_file():
        raise FileNotFoundError(f"no schema {name!r}: {path} missing (known: "
                                f"{', '.join(sorted(p.name.split('.')[0] for p in SCHEMA_DIR.glob('*.schema.json')))})")
    return json.loads(path.read_text())
