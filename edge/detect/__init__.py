"""Face detectors, one module per backend; the config's `type` picks the backend, `profile` the search.

``detector: {type: blazeface}`` (default; BlazeFace short- and full-range, fetched by
deploy/fetch_models.py), ``type: yunet`` (OpenCV YuNet, fetched with ``--yunet``) or ``type: haar``
(always available). ``profile``: kiosk (one fast pass), room (small far faces) or auto
(edge/detect/profile.py). ``make_detector(cfg)`` builds it.
"""
from __future__ import annotations

import logging

from edge.config.detector import BlazeFaceConfig, DetectorConfig, DetectorSection
from edge.detect.base import FaceDetector
from edge.detect.blazeface import BlazeFaceDetector
from edge.detect.blazeface_full import BlazeFaceFullDetector
from edge.detect.haar import HaarDetector
from edge.detect.profile import ProfileDetector
from edge.detect.yunet import YuNetDetector
from edge.interpreter import ModelError

log = logging.getLogger(__name__)


__all__ = ["FaceDetector", "ProfileDetector", "make_detector"]


def make_detector(cfg: DetectorConfig | None = None) -> FaceDetector:
    """Build the configured detector; raise ModelError with one clear line when it cannot be opened.

    A model that cannot be opened falls back to Haar (with the `haar` options and the same profile)
    when ``fallback_to_haar`` is set, with one warning line, so that a service keeps running with
    the detector it has.
    """
    cfg = cfg if cfg is not None else BlazeFaceConfig()
    try:
        return _build(cfg, cfg.type)
    except ModelError as exc:
        if cfg.type == "haar" or not cfg.fallback_to_haar:
            raise
        log.warning("%s; using the Haar detector instead (detector.fallback_to_haar)", exc)
        return _build(cfg, "haar")


def _build(cfg: DetectorSection, backend: str) -> FaceDetector:
    """The backend's detector for the configured profile."""
    if cfg.profile == "kiosk":
        return _one(cfg, backend, room=False)
    if cfg.profile == "room":
        return _one(cfg, backend, room=True)
    if backend == "haar" and cfg.haar.detect_width == cfg.haar.room_width:
        return _one(cfg, backend, room=False)      # both searches would be the same one
    return ProfileDetector(_one(cfg, backend, room=False), _one(cfg, backend, room=True), cfg)


def _one(cfg: DetectorSection, backend: str, room: bool) -> FaceDetector:
    common = cfg    # the section carries the common options (min_score, max_faces, min_face_px)
    if backend == "blazeface":
        return BlazeFaceFullDetector(cfg.blazeface_full, common) if room else BlazeFaceDetector(cfg.blazeface, common)
    if backend == "yunet":
        return YuNetDetector(cfg.yunet, common, cfg.yunet.room_width if room else cfg.yunet.kiosk_width)
    return HaarDetector(cfg.haar, common, cfg.haar.room_width if room else cfg.haar.detect_width)
