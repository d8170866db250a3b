"""Quality gates on real faces: size, detector score, pose from landmarks, blur of the aligned crop."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import require_shared
from conftest_tracking import load_recording
from edge.config.align import AlignConfig
from edge.align import align_face
from edge.config.quality import QualityConfig
from edge.quality import crop_problem, detection_problem, sharpness, yaw_degrees
from edge.types import Detection


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, Detection]:
    """A real frame of the single-face clip and its recorded BlazeFace detection (with landmarks)."""
    path = require_shared("video", "single_face.mp4")
    cap = cv2.VideoCapture(str(path))
    ok, image = cap.read()
    cap.release()
    assert ok
    return image, load_recording("single_face").frames[0].detections[0]


def test_a_sharp_frontal_real_face_passes_every_gate(face) -> None:
    image, det = face
    cfg = QualityConfig()
    assert detection_problem(det, cfg) is None
    crop = align_face(image, det, AlignConfig())
    assert sharpness(crop) > 4 * cfg.min_sharpness
    assert crop_problem(crop, cfg) is None
    assert yaw_degrees(det) < 15


def test_blur_lowers_sharpness_and_fails_the_gate(face) -> None:
    image, det = face
    crop = align_face(image, det, AlignConfig())
    values = [sharpness(cv2.GaussianBlur(crop, (0, 0), s)) if s else sharpness(crop) for s in (0, 0.8, 1.5, 2.5)]
    assert values == sorted(values, reverse=True)
    assert crop_problem(cv2.GaussianBlur(crop, (0, 0), 2.5), QualityConfig()) == "blurry"
    assert crop_problem(cv2.GaussianBlur(crop, (0, 0), 2.5), QualityConfig(min_sharpness=0)) is None


def test_small_and_unsure_faces_fail(face) -> None:
    _, det = face
    small = Detection(box=(10, 10, 30, 30), score=0.99, landmarks={})
    assert detection_problem(small, QualityConfig()) == "small"
    unsure = Detection(box=det.box, score=0.3, landmarks=det.landmarks)
    assert detection_problem(unsure, QualityConfig()) == "low_score"
    assert detection_problem(unsure, QualityConfig(enabled=False)) is None


def test_turned_face_fails_the_pose_gate_and_roll_is_not_yaw(face) -> None:
    _, det = face
    lm = det.landmarks
    (rx, _), (lx, _) = lm["right_eye"], lm["left_eye"]
    eye = lx - rx
    # the nose moved towards one eye, as when the head turns about 45 degrees
    turned = Detection(det.box, det.score, {**lm, "nose": (lm["nose"][0] + 0.5 * eye, lm["nose"][1])})
    assert yaw_degrees(turned) > 40
    assert detection_problem(turned, QualityConfig()) == "turned"
    assert detection_problem(turned, QualityConfig(max_yaw_deg=60)) is None
    # the whole face rotated in the image plane by 30 degrees (head tilt): still frontal
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    cx, cy = det.box[0] + det.box[2] / 2, det.box[1] + det.box[3] / 2
    rolled = {k: (cx + c * (x - cx) - s * (y - cy), cy + s * (x - cx) + c * (y - cy)) for k, (x, y) in lm.items()}
    assert abs(yaw_degrees(Detection(det.box, det.score, rolled)) - yaw_degrees(det)) < 1.0


def test_faces_without_landmarks_are_not_judged_on_pose() -> None:
    det = Detection(box=(100, 100, 120, 120), score=0.9, landmarks={})
    assert yaw_degrees(det) is None
    assert detection_problem(det, QualityConfig()) is None


def test_bad_config_values_are_rejected_with_the_field_name() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_yaw_deg"):
        QualityConfig(max_yaw_deg=0)
    with pytest.raises(ValidationError, match="min_sharpnes"):
        QualityConfig(min_sharpnes=10)      # a typo is an error, not silently ignored
