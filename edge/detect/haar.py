"""OpenCV Haar cascade face detector (always available: the cascades ship inside opencv-python).

Faces are searched on a downscaled grey copy of the frame (``detect_width``) for speed; each face's
eyes are then searched with OpenCV's eye cascade, at full resolution inside the face's upper half,
so that the aligner can level them. Where both eyes are not found, the face has no landmarks and
the aligner frames it from the box alone.

Registered as `type: haar` (``build``); its options: edge/config/detectors/haar.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from edge.config.detector import CommonDetectorOptions, DetectorSection
from edge.config.detectors.haar import HaarOptions
from edge.detect.base import keep_largest
from edge.detect.registry import backend
from edge.interpreter import ModelError
from edge.types import Detection

if TYPE_CHECKING:
    import cv2


def load_cascade(name: str) -> "cv2.CascadeClassifier":
    """Open a cascade by bundled name or path; ModelError if it is missing or not a cascade."""
    import cv2  # kept out of module import: config loading must not load OpenCV

    path = Path(name).expanduser()
    if not path.is_file():
        path = Path(cv2.data.haarcascades) / name
    if not path.is_file():
        raise ModelError(f"Haar cascade not found: {name} (neither a file nor one of OpenCV's bundled cascades "
                         f"in {cv2.data.haarcascades})")
    cascade = cv2.CascadeClassifier()
    try:
        ok = cascade.load(str(path))
    except cv2.error:
        ok = False
    if not ok or cascade.empty():
        raise ModelError(f"{path} could not be loaded as a Haar cascade (corrupt or not a cascade XML?)")
    return cascade


@backend("haar", one_search=lambda section: section.haar.detect_width == section.haar.room_width)
def build(section: DetectorSection, common: CommonDetectorOptions, room: bool) -> "HaarDetector":
    """`type: haar`: the `haar` options, searched at `detect_width` (kiosk) or `room_width` (room)."""
    return HaarDetector(section.haar, common, section.haar.room_width if room else section.haar.detect_width)


class HaarDetector:
    """Haar cascade faces, plus eye landmarks where the eye cascade finds both eyes."""

    def __init__(self, opts: HaarOptions | None = None, common: CommonDetectorOptions | None = None,
                 detect_width: int | None = None) -> None:
        self.cfg = opts or HaarOptions()
        self.common = common or CommonDetectorOptions()
        # the profile's search width (kiosk: detect_width, room: room_width); None: detect_width
        self.detect_width = self.cfg.detect_width if detect_width is None else detect_width
        self.faces = load_cascade(self.cfg.cascade)
        self.eyes = load_cascade(self.cfg.eye_cascade) if self.cfg.eyes else None
        self.detector_id = f"haar-{Path(self.cfg.cascade).stem.removeprefix('haarcascade_')}" + \
            ("+eyes" if self.eyes is not None else "")

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR (or grey) uint8 image, largest first; eye landmarks where both eyes were found."""
        import cv2

        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape
        scale = min(1.0, self.detect_width / w) if self.detect_width else 1.0
        small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
            if scale < 1.0 else gray
        small = cv2.equalizeHist(small)
        min_px = max(20, round(self.common.min_face_px * scale))
        rects, neighbours = self.faces.detectMultiScale2(small, scaleFactor=self.cfg.scale_factor,
                                                        minNeighbors=self.cfg.min_neighbors,
                                                        minSize=(min_px, min_px))
        dets = []
        for (x, y, fw, fh), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).reshape(-1)):
            box = (x / scale, y / scale, fw / scale, fh / scale)
            # Haar gives no probability: more overlapping hits = surer; min_neighbors hits scores 0.5.
            score = float(n) / (float(n) + self.cfg.min_neighbors)
            dets.append(Detection(box=tuple(float(v) for v in box), score=score))
        dets = keep_largest(dets, self.common)
        if self.eyes is not None:               # only for the faces kept: the eye search is the costly part
            for det in dets:
                det.landmarks.update(self._find_eyes(gray, det.box))
        return dets

    def _find_eyes(self, gray: np.ndarray, box: tuple[float, ...]) -> dict[str, tuple[float, float]]:
        """Both eye centres inside the face's upper half, or {} when not both are found."""
        import cv2
        x, y, w, h = box
        x0, y0 = max(0, int(x)), max(0, int(y + 0.15 * h))
        x1, y1 = min(gray.shape[1], int(x + w)), min(gray.shape[0], int(y + 0.6 * h))
        roi = gray[y0:y1, x0:x1]
        if roi.size == 0:
            return {}
        # Search at a fixed ROI width so eye search costs the same for near and far faces.
        s = min(1.0, 120.0 / roi.shape[1])
        if s < 1.0:
            roi = cv2.resize(roi, (round(roi.shape[1] * s), round(roi.shape[0] * s)), interpolation=cv2.INTER_AREA)
        side = max(8, round(0.12 * w * s))
        eyes = self.eyes.detectMultiScale(roi, scaleFactor=1.1, minNeighbors=3, minSize=(side, side),
                                          maxSize=(3 * side, 3 * side))
        mid = roi.shape[1] / 2
        best: dict[str, tuple[float, float, float]] = {}
        for ex, ey, ew, eh in np.asarray(eyes).reshape(-1, 4):
            cx, cy = ex + ew / 2, ey + eh / 2
            name = "right_eye" if cx < mid else "left_eye"   # the subject's right eye is on the image's left
            # prefer the candidate nearest the expected eye spot (a quarter in from each side)
            expect_x = mid * 0.5 if name == "right_eye" else mid * 1.5
            cost = abs(cx - expect_x) + abs(cy - 0.45 * roi.shape[0])
            if name not in best or cost < best[name][2]:
                best[name] = (cx, cy, cost)
        if len(best) < 2:
            return {}
        return {name: (float(x0 + cx / s), float(y0 + cy / s)) for name, (cx, cy, _) in best.items()}
