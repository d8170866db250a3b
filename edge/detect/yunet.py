"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``, OpenCV 4.8+): boxes, a score and 5 landmarks.

The model (``face_detection_yunet_2023mar.onnx``, Apache-2.0, from opencv_zoo) is not shipped and
no package registry carries it: ``deploy/fetch_models.py --yunet`` downloads it from opencv_zoo (or
copies it from a folder given with ``--from``) and checks its sha256. It is an option, never the
default: when the file is missing the error says how to get it.

YuNet is fully convolutional, so it runs on the frame at any size; ``input_width`` shrinks the
frame first (faces narrower than about 10 px at that width are lost). Landmarks: the subject's
right and left eye, nose tip, right and left mouth corner (named as BlazeFace's, plus the corners).

Registered as `type: yunet` (``build``); its options: edge/config/detectors/yunet.py.
"""
from __future__ import annotations

import numpy as np

from edge.config.detector import CommonDetectorOptions, DetectorSection
from edge.config.detectors.yunet import YuNetOptions
from edge.detect.base import keep_largest
from edge.detect.fetched import YUNET, resolve_model_path
from edge.detect.registry import backend
from edge.interpreter import ModelError, sha256_file
from edge.types import Detection

FETCH_HINT = "python deploy/fetch_models.py --yunet (or --yunet --from DIR)"


@backend("yunet")
def build(section: DetectorSection, common: CommonDetectorOptions, room: bool) -> "YuNetDetector":
    """`type: yunet`: the `yunet` options, on a copy of the frame `kiosk_width` or `room_width` wide."""
    return YuNetDetector(section.yunet, common, section.yunet.room_width if room else section.yunet.kiosk_width)


class YuNetDetector:
    """YuNet through ``cv2.FaceDetectorYN``; ``detect(bgr) -> [Detection]`` with 5 landmarks each."""

    def __init__(self, opts: YuNetOptions | None = None, common: CommonDetectorOptions | None = None,
                 input_width: int = 0) -> None:
        import cv2  # kept out of module import: config loading must not load OpenCV

        self.opts = opts or YuNetOptions()
        self.common = common or CommonDetectorOptions()
        self.input_width = input_width
        path = resolve_model_path(YUNET, self.opts.model_path, FETCH_HINT)
        digest = sha256_file(path)
        if self.opts.verify_sha256 and digest != YUNET.sha256:
            raise ModelError(f"{path}: sha256 {digest[:12]}... is not the pinned YuNet model ({YUNET.sha256[:12]}...); "
                             "corrupt or replaced: re-run `python deploy/fetch_models.py --yunet --force`")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError(f"OpenCV {cv2.__version__} has no FaceDetectorYN (YuNet needs OpenCV 4.8 or later)")
        try:
            # the score threshold is ours to apply (keep_largest); YuNet's own is set low to let it through
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), min(self.common.min_score, 0.3),
                                                 self.opts.nms_iou, 5000)
        except cv2.error as exc:
            raise ModelError(f"{path} could not be loaded as the YuNet ONNX model (corrupt?): "
                             f"{str(exc).strip().splitlines()[-1]}") from None
        self._size: tuple[int, int] | None = None
        self.detector_id = f"yunet-2023mar@{digest[:8]}" + (f"@w{input_width}" if input_width else "")

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR uint8 image, largest first, with eyes, nose tip and mouth corners."""
        import cv2

        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        scale = min(1.0, self.input_width / w) if self.input_width else 1.0
        if scale < 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        size = (image.shape[1], image.shape[0])
        if size != self._size:                 # setInputSize rebuilds the priors: only when the size changes
            self.net.setInputSize(size)
            self._size = size
        _, faces = self.net.detect(image)
        dets = []
        for f in (faces if faces is not None else np.zeros((0, 15), np.float32)):
            p = f[4:14].reshape(5, 2) / scale
            mouth = (p[3] + p[4]) / 2
            dets.append(Detection(box=tuple(float(v) / scale for v in f[:4]), score=float(f[14]), landmarks={
                "right_eye": (float(p[0, 0]), float(p[0, 1])), "left_eye": (float(p[1, 0]), float(p[1, 1])),
                "nose": (float(p[2, 0]), float(p[2, 1])), "mouth": (float(mouth[0]), float(mouth[1])),
                "mouth_right": (float(p[3, 0]), float(p[3, 1])), "mouth_left": (float(p[4, 0]), float(p[4, 1]))}))
        return keep_largest(dets, self.common)
