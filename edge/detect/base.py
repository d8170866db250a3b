"""What every face detector shares: the interface and the options common to all backends."""
from __future__ import annotations

from typing import Protocol

import numpy as np
from edge.config.detector import CommonDetectorOptions
from edge.types import Detection


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
