"""Section `events`: which events are produced and what they may contain (edge/emitter.py, edge/events.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class SnapshotConfig(StrictModel):
    """Section `events.snapshots`: whether a face picture may travel with an event (privacy: off)."""

    enabled: bool = Field(False, description="Attach a JPEG of the aligned face crop (never the whole frame) to "
                                             "face_appeared and emotion_changed events. Off: no image data leaves "
                                             "the device, whatever the emitter produced.")
    max_size: int = Field(96, ge=16, le=512, description="Longest side of the attached crop in pixels.")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of the attached crop.")


class EventsConfig(StrictModel):
    """Section `events`: which events are produced and what they may contain."""

    summary_interval_s: float = Field(60.0, ge=1.0, le=86400.0,
                                      description="Seconds between `summary` events (counts per emotion).")
    aggregate_only: bool = Field(False, description="Publish only `summary` events and the retained per-camera "
                                                    "emotion mix; no per-face events (face_appeared, "
                                                    "emotion_changed, face_left) leave the device.")
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig,
                                      description="Face crops attached to events (off by default).")
