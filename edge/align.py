"""Face alignment: level the eyes and crop the face the way FER+ (FER2013) crops are framed.

One similarity transform (rotation + scale + shift) maps the eye midpoint to a fixed spot of the
output and the inter-ocular distance to a fixed fraction of its width, so the emotion model sees
faces framed as in its training data. The fractions are measured on FER+ (docs/alignment.md,
docs/alignment_study.py). A face without eye landmarks (Haar where the eye cascade missed) is
framed from its box, with the eye position a Haar box implies on average (measured likewise).
"""
from __future__ import annotations

import math

import numpy as np
from edge.config.align import AlignConfig
from edge.types import Detection


def eye_geometry(det: Detection, cfg: AlignConfig) -> tuple[float, float, float, float]:
    """Eye midpoint (x, y), inter-ocular distance and roll in degrees, from landmarks or else the box."""
    lm = det.landmarks
    if "right_eye" in lm and "left_eye" in lm:
        (rx, ry), (lx, ly) = lm["right_eye"], lm["left_eye"]   # subject's right eye is on the image's left
        dx, dy = lx - rx, ly - ry
        dist = math.hypot(dx, dy)
        if dist > 1.0:
            roll = math.degrees(math.atan2(dy, dx)) if cfg.level_eyes else 0.0
            if abs(roll) > cfg.max_roll_deg:
                roll = math.copysign(cfg.max_roll_deg, roll)
            return (rx + lx) / 2, (ry + ly) / 2, dist, roll
    x, y, w, h = det.box
    return x + w / 2, y + cfg.box_eye_y * h, cfg.box_eye_distance * w, 0.0


def alignment_matrix(det: Detection, cfg: AlignConfig, size: int | None = None) -> np.ndarray:
    """The 2x3 affine matrix taking frame pixels to crop pixels (crop side ``size``, default cfg.size)."""
    cfg = cfg.framed()
    size = size or cfg.size
    cx, cy, dist, roll = eye_geometry(det, cfg)
    scale = cfg.eye_distance * size / dist
    a, b = scale * math.cos(math.radians(roll)), scale * math.sin(math.radians(roll))
    # rotate by -roll about the eye midpoint and scale, then move the midpoint to its place in the crop
    return np.array([[a, b, size / 2 - (a * cx + b * cy)],
                     [-b, a, cfg.eye_y * size - (-b * cx + a * cy)]], dtype=np.float64)


def align_face(image: np.ndarray, det: Detection, cfg: AlignConfig | None = None) -> np.ndarray:
    """Grey uint8 crop (cfg.size square) of one face, eyes level, framed like FER+.

    Pixels outside the frame repeat the border (FER+ crops are face to the edges, a black band
    would be new to the model). Large reductions warp to an intermediate size and then
    area-average, to avoid the aliasing a single bilinear warp gives.
    """
    import cv2  # kept out of module import: config loading must not load OpenCV

    cfg = (cfg or AlignConfig()).framed()      # unset framing: the FER+ default (FaceAnalyzer fills in the card's)
    size = cfg.size
    scale = cfg.eye_distance * size / max(eye_geometry(det, cfg)[2], 1e-6)
    factor = int(min(4, max(1, math.floor(1 / scale)))) if scale < 0.5 else 1
    m = alignment_matrix(det, cfg, size * factor)
    src = image
    if image.ndim == 3:
        # warp colour first, then convert only the small crop to grey (cheaper than the whole frame)
        crop = cv2.warpAffine(src, m, (size * factor, size * factor), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    else:
        crop = cv2.warpAffine(src, m, (size * factor, size * factor), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    if factor > 1:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return crop


def align_faces(image: np.ndarray, dets: list[Detection], cfg: AlignConfig | None = None) -> list[np.ndarray]:
    """``align_face`` for every face of a frame."""
    return [align_face(image, d, cfg) for d in dets]
