"""Section `detector`: one backend's options, chosen by `type` (edge/detect/)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from edge.config.base import StrictModel


class CommonDetectorOptions(StrictModel):
    """Options every detector backend accepts (each backend's config extends this)."""

    min_score: float = Field(0.5, ge=0.0, le=1.0,
                             description="Drop faces the detector is less sure of than this (0..1).")
    max_faces: int = Field(10, ge=1, description="Keep at most this many faces per frame, the largest first.")
    min_face_px: int = Field(24, ge=8, description="Ignore faces narrower than this many pixels in the full frame "
                             "(too small for the 48x48 emotion model to read).")



class BlazeFaceConfig(CommonDetectorOptions):
    """BlazeFace short-range (TFLite): faces within about 2 m of the camera, with eye/nose/mouth/ear landmarks."""

    type: Literal["blazeface"] = Field("blazeface", description="Detector backend: 'blazeface' or 'haar'.")
    model_path: str = Field("", description="Path of face_detection_short_range.tflite; empty: look in "
                            "$FER_EDGE_MODELS, /var/lib/fer-edge/models, ~/.cache/fer-edge/models "
                            "(put there by deploy/fetch_models.py).")
    verify_sha256: bool = Field(True, description="Check the model file against its pinned sha256 when loading "
                                "(catches truncated or swapped files).")
    threads: int = Field(1, ge=1, le=16, description="Interpreter threads for the detector.")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0, description="Boxes overlapping more than this are merged "
                           "(weighted by score) into one face.")
    fallback_to_haar: bool = Field(True, description="If the model cannot be opened, say so in one line and use "
                                   "the Haar detector instead of stopping.")
    tile_px: int = Field(0, ge=0, description="0: search the whole frame in one pass (faces down to about a "
                         "seventh of its longer side). N: also search overlapping N-pixel tiles, which finds faces "
                         "down to about N/6 px at one more detector run per tile (crowds, wide frames).")



class HaarConfig(CommonDetectorOptions):
    """OpenCV Haar cascades: no download needed, less accurate than BlazeFace, no landmarks but the eyes."""

    type: Literal["haar"] = Field("haar", description="Detector backend: 'blazeface' or 'haar'.")
    cascade: str = Field("haarcascade_frontalface_default.xml",
                         description="Face cascade: a file name from OpenCV's bundled cascades, or a path.")
    scale_factor: float = Field(1.1, gt=1.0, le=2.0, description="Image pyramid step of the cascade search "
                                "(smaller finds more faces, slower).")
    min_neighbors: int = Field(5, ge=1, description="Overlapping hits a face needs to count (higher: fewer false faces).")
    detect_width: int = Field(320, ge=0, description="Search faces on a copy of the frame downscaled to this width "
                              "(0: full size). Faces narrower than about 24*frame_width/detect_width px are missed.")
    eyes: bool = Field(True, description="Find both eyes with the eye cascade so the aligner can level them.")
    eye_cascade: str = Field("haarcascade_eye.xml", description="Eye cascade: bundled file name or a path.")



#: The `detector` config section: one of the backends' configs, chosen by `type`.
DetectorConfig = Annotated[Union[BlazeFaceConfig, HaarConfig], Field(discriminator="type")]
