"""Face quality gates: is this face worth classifying? (size, detector score, pose, blur).

A face that fails a gate is still tracked (it keeps its id and its place in the dwell time); it is
only not classified, so a blurred or turned-away face cannot push the smoothed emotion around.
The cheap gates (size, score, pose from landmarks) run on the detection before any crop is made;
the blur gate needs pixels and runs on the aligned crop, just before the emotion model.
"""
from __future__ import annotations

import math

import numpy as np
from edge.config.quality import QualityConfig
from edge.types import Detection

# The nose tip stands in front of the eyes' plane by about half the distance between the eyes
# (anthropometric averages: interpupillary ~63 mm, nose tip ~30-35 mm in front of the eyes).
# Turning the head by yaw moves the nose sideways by depth*sin(yaw) while the eyes' projected
# distance shrinks to distance*cos(yaw), so the ratio of the two is NOSE_DEPTH * tan(yaw).
NOSE_DEPTH = 0.5

# Sharpness is measured on the crop resized to this side, so that it does not depend on face size.
SHARPNESS_SIDE = 64


def yaw_degrees(det: Detection) -> float | None:
    """How far the face is turned left/right of frontal, in degrees (unsigned), from its landmarks.

    Needs both eyes and the nose; returns None when the detector gave fewer landmarks (Haar).
    The nose's sideways offset from the eyes' midpoint is measured along the eye line, so head roll
    (tilt) does not count as yaw.
    """
    lm = det.landmarks
    if not all(k in lm for k in ("right_eye", "left_eye", "nose")):
        return None
    r, l, n = (np.asarray(lm[k], np.float64) for k in ("right_eye", "left_eye", "nose"))
    axis = l - r
    dist = float(np.hypot(*axis))
    if dist < 1e-6:
        return 90.0
    offset = float(np.dot(n - (r + l) / 2.0, axis / dist)) / dist   # nose offset along the eye line, in eye distances
    return math.degrees(math.atan(abs(offset) / NOSE_DEPTH))


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of a grey crop resized to 64x64: high for sharp, low for blurred faces."""
    import cv2  # heavy import kept out of config loading

    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    if gray.shape[:2] != (SHARPNESS_SIDE, SHARPNESS_SIDE):
        gray = cv2.resize(gray, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def detection_problem(det: Detection, cfg: QualityConfig) -> str | None:
    """The first cheap gate a detection fails ('small', 'low_score', 'turned'), or None if it passes."""
    if not cfg.enabled:
        return None
    if min(det.box[2], det.box[3]) < cfg.min_face_px:
        return "small"
    if det.score < cfg.min_score:
        return "low_score"
    yaw = yaw_degrees(det)
    if yaw is not None and yaw > cfg.max_yaw_deg:
        return "turned"
    return None


def crop_problem(crop: np.ndarray, cfg: QualityConfig) -> str | None:
    """'blurry' when the aligned crop is too blurred to classify, else None."""
    if not cfg.enabled or cfg.min_sharpness <= 0:
        return None
    return "blurry" if sharpness(crop) < cfg.min_sharpness else None
