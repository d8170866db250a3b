"""Fixtures of the tracking tests: real detections recorded from the shared videos, replayed.

The recordings (tests/fixtures/tracking/*.json) are made by tests/fixtures/tracking/record.py
from ../shared/data/video with the project's detectors and emotion model; replaying them keeps
the tracker, hysteresis and event tests fast and deterministic (media timestamps, no clock).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.types import Classification, Detection

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tracking"


@dataclass
class RecordedFrame:
    """One recorded frame: its index, media time, detections and their emotion scores."""

    index: int
    t: float
    detections: list[Detection]
    classifications: list[Classification]


@dataclass
class Recording:
    clip: str
    fps: float
    frames_in_clip: int
    every: int                     # one frame in `every` was recorded
    size: tuple[int, int]
    classes: tuple[str, ...]
    frames: list[RecordedFrame]

    @property
    def duration_s(self) -> float:
        return self.frames_in_clip / self.fps


def load_recording(name: str) -> Recording:
    """Read tests/fixtures/tracking/<name>.json into Detection / Classification objects."""
    d = json.loads((FIXTURES / f"{name}.json").read_text())
    classes = tuple(d["classes"])
    frames = []
    for f in d["frames"]:
        dets = [Detection(box=tuple(x["box"]), score=x["score"],
                          landmarks={k: tuple(v) for k, v in x["landmarks"].items()}) for x in f["faces"]]
        cls = [Classification(scores=np.asarray(x["scores"], np.float32), classes=classes) for x in f["faces"]]
        frames.append(RecordedFrame(f["index"], f["t"], dets, cls))
    return Recording(d["clip"], d["fps"], d["frames_in_clip"], d["every"], tuple(d["size"]), classes, frames)
