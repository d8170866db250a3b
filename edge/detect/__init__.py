"""Face detectors, one module per backend; the config picks one by its ``type`` field.

``detector: {type: blazeface, ...}`` (default; needs the model fetched by deploy/fetch_models.py)
or ``detector: {type: haar, ...}`` (always available). ``make_detector(cfg)`` builds it.
"""
from __future__ import annotations

import logging

from edge.config.detector import BlazeFaceConfig, DetectorConfig, HaarConfig
from edge.detect.base import FaceDetector
from edge.detect.blazeface import BlazeFaceDetector
from edge.detect.haar import HaarDetector
from edge.interpreter import ModelError

log = logging.getLogger(__name__)


__all__ = ["FaceDetector", "make_detector"]


def make_detector(cfg: DetectorConfig | None = None) -> FaceDetector:
    """Build the configured detector; raise ModelError with one clear line when it cannot be opened.

    A BlazeFace model that cannot be opened falls back to Haar when ``fallback_to_haar`` is set,
    with one warning line, so that a service keeps running with the detector it has.
    """
    cfg = cfg if cfg is not None else BlazeFaceConfig()
    if isinstance(cfg, HaarConfig):
        return HaarDetector(cfg)
    try:
        return BlazeFaceDetector(cfg)
    except ModelError as exc:
        if not cfg.fallback_to_haar:
            raise
        log.warning("%s; using the Haar detector instead (detector.fallback_to_haar)", exc)
        return HaarDetector(HaarConfig(min_score=0.0, max_faces=cfg.max_faces, min_face_px=cfg.min_face_px))
