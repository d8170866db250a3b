"""What every face detector shares: the interface and the options common to all backends."""
from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import Field

from edge.config_base import StrictModel
from edge.types import Detection


class CommonDetectorOptions(StrictModel):
    """Options every detector backend accepts (each backend's config extends this)."""

    min_score: float = Field(0.5, ge=0.0, le=1.0,
                             description="Drop faces the detector is less sure of than this (0..1).")
    max_faces: int = Field(10, ge=1, description="Keep at most this many faces per frame, the largest first.")
    min_face_px: int = Field(24, ge=8, description="Ignore faces narrower than this many pixels in the full frame "
                             "(too small for the 48x48 emotion model to read).")


class FaceDetector(Protocol):
    """A face detector: BGR frame in, faces out (largest first)."""

    detector_id: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Find faces in a BGR uint8 image; boxes and landmarks in that image's pixels."""
        ...


def keep_largest(dets: list[Detection], opts: CommonDetectorOptions) -> list[Detection]:
    """Apply the common filters: score, minimum size, and the largest ``max_faces``."""
    dets = [d for d in dets if d.score >= opts.min_score and d.box[2] >= opts.min_face_px]
    dets.sort(key=lambda d: d.area, reverse=True)
    return dets[: opts.max_faces]
