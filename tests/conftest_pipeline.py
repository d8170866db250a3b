"""Fixtures for the pipeline tests (sources, detectors, alignment, FaceAnalyzer, detect CLI).

Imported by those test modules only. Real pictures come from ../shared/data; tests skip clearly
where it (or the fetched BlazeFace model) is absent.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import require_shared


def taiwanese_subset(per_label: int = 3) -> list[tuple[Path, str]]:
    """A few photographs of every posed label (the first ``per_label`` of each, by labels.csv order)."""
    root = require_shared("faces", "taiwanese_fed")
    out: dict[str, list[tuple[Path, str]]] = {}
    with open(root / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            group = out.setdefault(row["label"], [])
            if len(group) < per_label:
                group.append((root / row["path"], row["label"]))
    return [item for group in out.values() for item in group]


def single_face_video() -> Path:
    return require_shared("video", "single_face.mp4")


def require_blazeface() -> Path:
    """The fetched BlazeFace model, or skip saying how to fetch it."""
    from edge.detect.fetched import BLAZEFACE_SHORT, find_fetched_model, model_search_dirs

    path = find_fetched_model(BLAZEFACE_SHORT.filename)
    if path is None:
        pytest.skip(f"BlazeFace model not fetched (looked in {', '.join(map(str, model_search_dirs()))}): "
                    "run python deploy/fetch_models.py")
    return path


def require_emotion_model() -> Path:
    from edge.config.model import SHIPPED_MODEL

    if not SHIPPED_MODEL.is_file():
        pytest.skip(f"emotion model not found: {SHIPPED_MODEL}")
    return SHIPPED_MODEL


def read_video_frames(n: int, step: int = 1):
    """The first ``n`` frames (every ``step``-th) of single_face.mp4, BGR."""
    import cv2

    cap = cv2.VideoCapture(str(single_face_video()))
    frames, i = [], 0
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(img)
        i += 1
    cap.release()
    return frames
