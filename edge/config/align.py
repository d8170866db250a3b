"""Section `align`: how a detected face becomes the emotion model's crop (edge/align.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class AlignConfig(StrictModel):
    """Section `align`: how a detected face is turned into the emotion model's crop."""

    size: int = Field(48, ge=16, le=512, description="Side of the square grey crop in pixels "
                      "(the shipped model's input is 48; other sizes are resized by the model).")
    eye_y: float = Field(0.40, gt=0.1, lt=0.7, description="Height of the eye midpoint in the crop, as a "
                         "fraction of its side from the top (reproduces the FER+ median, 0.395: docs/alignment.md).")
    eye_distance: float = Field(0.365, gt=0.1, lt=0.8, description="Distance between the eyes as a fraction of "
                                "the crop's width (reproduces the FER+ median, 0.367). Smaller shows more of the head.")
    level_eyes: bool = Field(True, description="Rotate so the eyes are level (FER+ faces are mostly upright).")
    max_roll_deg: float = Field(40.0, ge=0.0, le=90.0, description="Rotate at most this much; beyond it the "
                                "eye landmarks are more likely wrong than the head that tilted.")
    box_eye_y: float = Field(0.41, gt=0.0, lt=1.0, description="Without eye landmarks: eye midpoint height "
                             "inside the detector's box, as a fraction of the box height (measured for Haar).")
    box_eye_distance: float = Field(0.41, gt=0.1, lt=1.0, description="Without eye landmarks: inter-ocular "
                                    "distance as a fraction of the box width (measured for Haar).")
