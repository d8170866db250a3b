"""Section `align`: how a detected face becomes the emotion model's crop (edge/align.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


#: The framing of a model card without ``preprocessing.framing``: FER+'s, which the shipped 2.0.0 was trained with.
FERPLUS_EYE_Y, FERPLUS_EYE_DISTANCE = 0.40, 0.365


class AlignConfig(StrictModel):
    """Section `align`: how a detected face is turned into the emotion model's crop."""

    size: int = Field(48, ge=16, le=512, description="Side of the square grey crop in pixels "
                      "(the shipped model's input is 48; other sizes are resized by the model).")
    eye_y: float | None = Field(None, gt=0.1, lt=0.7, description="Height of the eye midpoint in the crop, as "
                                "a fraction of its side from the top. Empty (default): what the emotion model was "
                                "trained with, from its card (preprocessing.framing.eye_y; the shipped model: 0.40, "
                                "the FER+ median 0.395: docs/alignment.md). Set it only to override the card.")
    eye_distance: float | None = Field(None, gt=0.1, lt=0.8, description="Distance between the eyes as a fraction "
                                       "of the crop's width. Empty (default): the model card's "
                                       "(preprocessing.framing.eye_distance; the shipped model: 0.365, the FER+ "
                                       "median 0.367). Smaller shows more of the head.")
    level_eyes: bool = Field(True, description="Rotate so the eyes are level (FER+ faces are mostly upright).")
    max_roll_deg: float = Field(40.0, ge=0.0, le=90.0, description="Rotate at most this much; beyond it the "
                                "eye landmarks are more likely wrong than the head that tilted.")
    box_eye_y: float = Field(0.41, gt=0.0, lt=1.0, description="Without eye landmarks: eye midpoint height "
                             "inside the detector's box, as a fraction of the box height (measured for Haar).")
    box_eye_distance: float = Field(0.41, gt=0.1, lt=1.0, description="Without eye landmarks: inter-ocular "
                                    "distance as a fraction of the box width (measured for Haar).")

    def framed(self, eye_y: float | None = None, eye_distance: float | None = None) -> "AlignConfig":
        """This section with its framing filled in: its own values, else the given ones (the model card's), else FER+'s."""
        return self.model_copy(update={
            "eye_y": next(v for v in (self.eye_y, eye_y, FERPLUS_EYE_Y) if v is not None),
            "eye_distance": next(v for v in (self.eye_distance, eye_distance, FERPLUS_EYE_DISTANCE) if v is not None)})
