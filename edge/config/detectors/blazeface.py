"""Options of `type: blazeface`: BlazeFace short-range (sub-section `blazeface`, the kiosk pass) and
full-range (`blazeface_full`, the room search). The detectors: edge/detect/blazeface.py, blazeface_full.py."""
from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.base import StrictModel
from edge.config.detectors import DetectorType, Plugin, SubSection


class BlazeFaceOptions(StrictModel):
    """Sub-section `blazeface`: BlazeFace short-range (the kiosk pass): faces within about 2 m."""

    model_path: str = Field("", description="Path of face_detection_short_range.tflite; empty: look in "
                            "$FER_EDGE_MODELS, /var/lib/fer-edge/models, ~/.cache/fer-edge/models "
                            "(put there by deploy/fetch_models.py).")
    verify_sha256: bool = Field(True, description="Check the model file against its pinned sha256 when loading "
                                "(catches truncated or swapped files).")
    threads: int = Field(1, ge=1, le=16, description="Interpreter threads for the detector.")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0, description="Boxes overlapping more than this are merged "
                           "(weighted by score) into one face.")
    tile_px: int = Field(0, ge=0, description="0: search the whole frame in one pass (faces down to about a "
                         "seventh of its longer side). N: also search overlapping N-pixel tiles (faces down to "
                         "about N/6 px, one more model run per tile).")
    refine_below: float = Field(0.25, ge=0.0, le=1.0, description="A face narrower than this share of the frame's "
                                "longer side is searched again in a square patch around it (`refine_patch` times "
                                "its box), where it fills the model's input: one more model run per such face, and "
                                "landmarks precise enough to align it (bench/face_size.py measures it). 0: off.")
    refine_patch: float = Field(2.5, ge=1.5, le=6.0, description="Side of that patch, in face boxes.")


class BlazeFaceFullOptions(StrictModel):
    """Sub-section `blazeface_full`: BlazeFace full-range (the room search of type blazeface): faces to ~5 m."""

    model_path: str = Field("", description="Path of face_detection_full_range.tflite; empty: the models "
                            "directories, as for the short-range model (deploy/fetch_models.py fetches both).")
    verify_sha256: bool = Field(True, description="Check the model file against its pinned sha256 when loading.")
    threads: int = Field(1, ge=1, le=16, description="Interpreter threads for the detector.")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0, description="Boxes overlapping more than this are one face.")
    tiles: list[int] = Field([256, 512], max_length=4, description="Besides one pass over the whole frame, search "
                             "overlapping square tiles of these sides (pixels): a tile of N px finds faces down to "
                             "about N/12 px. [] : the whole frame only (faces down to about a twelfth of its side).")

    @model_validator(mode="after")
    def _tile_sizes(self) -> "BlazeFaceFullOptions":
        if any(t < 64 for t in self.tiles):
            raise ValueError("tiles: each tile side must be at least 64 px")
        return self


DETECTOR = Plugin(
    sections=(SubSection("blazeface", BlazeFaceOptions, "BlazeFace short-range"),
              SubSection("blazeface_full", BlazeFaceFullOptions, "BlazeFace full-range (room search of type blazeface)")),
    types=(DetectorType("blazeface", "BlazeFaceConfig", "Detector `type: blazeface` (default): BlazeFace short-range "
                        "at a kiosk, full-range in a room.", flat="blazeface"),),
    order=10,
)
