"""Section `quality`: which faces are classified (edge/quality.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class QualityConfig(StrictModel):
    """Section `quality`: which faces are classified (the others are tracked but not classified)."""

    enabled: bool = Field(True, description="Apply the gates below; false classifies every tracked face.")
    min_face_px: int = Field(40, ge=0, description="Faces narrower than this (pixels in the full frame) are not "
                             "classified: too few pixels for the 48x48 emotion model to read an expression.")
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="Faces the detector is less sure of than this are "
                             "not classified.")
    max_yaw_deg: float = Field(40.0, gt=0.0, le=90.0, description="Faces turned further than this from frontal "
                               "(estimated from eye and nose landmarks) are not classified; faces without those "
                               "landmarks are not judged on pose.")
    min_sharpness: float = Field(40.0, ge=0.0, description="Faces whose aligned crop is blurrier than this "
                                 "(variance of the Laplacian on a 64x64 grey crop) are not classified; 0 turns "
                                 "the blur gate off. Measured: sharp faces 270-930, FER+ training faces 140 at "
                                 "the 1st percentile, a sharp 48 px crop blurred by sigma 1.5 px about 40.")
