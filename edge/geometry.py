"""Boxes: (x, y, w, h) in pixels. The one intersection-over-union, used by the detector's NMS and the tracker."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def iou_many(box: np.ndarray | Sequence[float], boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each row of ``boxes`` (N x 4); 0 where nothing overlaps."""
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter + 1e-9)   # 1e-9: empty boxes give 0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes."""
    return float(iou_many(a, np.asarray([b]))[0])


def centre(box: Sequence[float]) -> tuple[float, float]:
    """The centre point of a box."""
    return box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
