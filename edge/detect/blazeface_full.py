"""MediaPipe BlazeFace full-range face detector (TFLite): faces up to about 5 m away, 6 landmarks.

The model takes a 192x192 RGB image scaled to [-1, 1] and returns, for each of 2304 anchors
(one per cell of a 48x48 grid, stride 4), 16 regressors (box centre/size and 6 keypoints in input
pixels relative to the anchor) and one logit: MediaPipe's face_detection_full_range graph, decoded
exactly as the short-range model is (edge/detect/blazeface.py). It comes from the same pinned
wheel as the short-range model (``deploy/fetch_models.py``).

One pass over a 1280x720 frame shrinks it 6.7 times, so faces under about 60 px are lost; for a
room or a ceiling camera the frame is also searched in overlapping tiles (``tiles``: 256 and 512 px
by default), each letterboxed into the model's input. bench/crowd.py measures the trade-off.

`type: blazeface` is registered here (``build``), the module that sees both models: short-range for
the kiosk pass, full-range for the room search.
"""
from __future__ import annotations

from edge.config.detector import CommonDetectorOptions, DetectorSection
from edge.config.detectors.blazeface import BlazeFaceFullOptions
from edge.detect.base import FaceDetector
from edge.detect.blazeface import BlazeFaceDetector, ssd_anchors
from edge.detect.fetched import BLAZEFACE_FULL
from edge.detect.registry import backend


class BlazeFaceFullDetector(BlazeFaceDetector):
    """BlazeFace full-range on the TFLite interpreter, over the whole frame and its tiles."""

    INPUT = 192
    ANCHORS = ssd_anchors(192, ((4, 1),))
    MODEL = BLAZEFACE_FULL
    NAME = "full-range"

    def __init__(self, opts: BlazeFaceFullOptions | None = None, common: CommonDetectorOptions | None = None) -> None:
        self.full_opts = opts or BlazeFaceFullOptions()
        super().__init__(self.full_opts, common)   # type: ignore[arg-type]  # same fields the decoder reads

    def tile_sizes(self) -> list[int]:
        """Sides of the tiles searched besides the whole frame, smallest first."""
        return sorted(self.full_opts.tiles)

    def refine_below(self) -> float:
        """The room search does not search faces again: its tiles already put small faces in range."""
        return 0.0


@backend("blazeface")
def build(section: DetectorSection, common: CommonDetectorOptions, room: bool) -> FaceDetector:
    """`type: blazeface`: short-range (`blazeface`) for the kiosk pass, full-range (`blazeface_full`) for the room."""
    return BlazeFaceFullDetector(section.blazeface_full, common) if room else BlazeFaceDetector(section.blazeface, common)
