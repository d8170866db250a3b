"""Options of `type: haar` (sub-section `haar`): OpenCV Haar cascades. The detector: edge/detect/haar.py.

The `haar` sub-section is also what `fallback_to_haar` runs with when another backend's model
cannot be opened."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel
from edge.config.detectors import DetectorType, Plugin, SubSection


class HaarOptions(StrictModel):
    """Sub-section `haar`: OpenCV Haar cascades (always available; slower and less accurate)."""

    cascade: str = Field("haarcascade_frontalface_default.xml",
                         description="Face cascade: a file name from OpenCV's bundled cascades, or a path.")
    scale_factor: float = Field(1.1, gt=1.0, le=2.0, description="Image pyramid step of the cascade search "
                                "(smaller finds more faces, slower).")
    min_neighbors: int = Field(5, ge=1, description="Overlapping hits a face needs to count "
                               "(higher: fewer false faces).")
    detect_width: int = Field(320, ge=0, description="Kiosk pass: search a copy of the frame downscaled to this "
                              "width (0: full size). Faces narrower than about 24*frame_width/detect_width px "
                              "are missed.")
    room_width: int = Field(0, ge=0, description="Room search: the same, for the room profile (0: full size; "
                            "about a second per 1280x720 frame on one core).")
    eyes: bool = Field(True, description="Find both eyes with the eye cascade so the aligner can level them.")
    eye_cascade: str = Field("haarcascade_eye.xml", description="Eye cascade: bundled file name or a path.")


DETECTOR = Plugin(
    sections=(SubSection("haar", HaarOptions, "Haar cascades"),),
    types=(DetectorType("haar", "HaarConfig", "Detector `type: haar`: OpenCV Haar cascades (no download needed, less "
                        "accurate, eyes as the only landmarks).", flat="haar"),),
    order=30,
)
