"""Small data types that travel between the pipeline's steps (camera -> detect -> align -> classify -> track)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One picture from a source, in BGR as OpenCV reads it."""

    image: np.ndarray          # (H, W, 3) uint8 BGR
    index: int                 # frame number within the source (0-based)
    timestamp: float           # seconds: wall clock (epoch) for live sources, media time for files
    camera: str = "cam0"       # camera id from the config
    path: str | None = None    # file the frame came from, where it came from a file


@dataclass
class Detection:
    """A face found in a frame: box in pixels and, where the detector gives them, landmarks."""

    box: tuple[float, float, float, float]     # x, y, width, height in pixels
    score: float                               # detector confidence 0..1
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    # landmark names: right_eye, left_eye (the subject's), nose, mouth, right_ear, left_ear

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@dataclass
class Classification:
    """The emotion model's answer for one face."""

    scores: np.ndarray          # (n_classes,) float probabilities summing to about 1
    classes: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.classes[int(np.argmax(self.scores))]

    @property
    def score(self) -> float:
        return float(np.max(self.scores))

    def as_dict(self) -> dict[str, float]:
        return {c: round(float(s), 4) for c, s in zip(self.classes, self.scores)}
