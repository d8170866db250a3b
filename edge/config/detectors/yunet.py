"""Options of `type: yunet` (sub-section `yunet`): OpenCV's YuNet. The detector: edge/detect/yunet.py."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel
from edge.config.detectors import DetectorType, Plugin, SubSection


class YuNetOptions(StrictModel):
    """Sub-section `yunet`: OpenCV's YuNet (needs `python deploy/fetch_models.py --yunet` once)."""

    model_path: str = Field("", description="Path of face_detection_yunet_2023mar.onnx; empty: the models "
                            "directories (put there by `deploy/fetch_models.py --yunet`).")
    verify_sha256: bool = Field(True, description="Check the model file against its pinned sha256 when loading.")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0, description="Boxes overlapping more than this are one face.")
    kiosk_width: int = Field(320, ge=0, description="Kiosk pass: search a copy of the frame this wide (0: full size).")
    room_width: int = Field(960, ge=0, description="Room search: search a copy of the frame this wide (0: full "
                            "size). Faces narrower than about 10 px at that width are missed.")


DETECTOR = Plugin(
    sections=(SubSection("yunet", YuNetOptions, "YuNet"),),
    types=(DetectorType("yunet", "YuNetConfig", "Detector `type: yunet`: OpenCV's YuNet at both profiles (its model "
                        "is fetched with --yunet).", flat="yunet"),),
    order=20,
)
