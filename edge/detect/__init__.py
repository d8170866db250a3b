"""Face detectors, one module per backend; the config's `type` picks the backend, `profile` the search.

``detector: {type: blazeface}`` (default; BlazeFace short- and full-range, fetched by
deploy/fetch_models.py), ``type: yunet`` (OpenCV YuNet, fetched with ``--yunet``) or ``type: haar``
(always available). ``profile``: kiosk (one fast pass), room (small far faces) or auto
(edge/detect/profile.py). ``make_detector(cfg)`` builds it.

Backends are plug-ins: each module here that holds a detector registers its builder once with
``@backend("<type>")`` (edge/detect/registry.py), and ``make_detector`` finds them by importing
every module of this package; the backend's options are its module in edge/config/detectors/.
Adding a backend is adding those two files (docs/structure.md, "Adding a detector").
"""
from __future__ import annotations

import logging

from edge.config.detector import CONFIG_CLASSES, DEFAULT_TYPE, DetectorConfig, DetectorSection
from edge.detect.base import FaceDetector
from edge.detect.profile import ProfileDetector
from edge.detect.registry import Backend, discover, find
from edge.interpreter import ModelError

log = logging.getLogger(__name__)


__all__ = ["FaceDetector", "ProfileDetector", "make_detector"]


def make_detector(cfg: DetectorConfig | None = None) -> FaceDetector:
    """Build the configured detector; raise ModelError with one clear line when it cannot be opened.

    A model that cannot be opened falls back to Haar (with the `haar` options and the same profile)
    when ``fallback_to_haar`` is set, with one warning line, so that a service keeps running with
    the detector it has. A `type` whose backend is not registered is an error, never a fallback.
    """
    cfg = cfg if cfg is not None else CONFIG_CLASSES[DEFAULT_TYPE]()
    discover(__path__, __name__)        # import every backend module: their @backend registers them
    chosen = find(cfg.type)
    try:
        return _build(cfg, chosen)
    except ModelError as exc:
        if cfg.type == "haar" or not cfg.fallback_to_haar:
            raise
        log.warning("%s; using the Haar detector instead (detector.fallback_to_haar)", exc)
        return _build(cfg, find("haar"))


def _build(cfg: DetectorSection, backend: Backend) -> FaceDetector:
    """The backend's detector for the configured profile."""
    if cfg.profile == "kiosk":
        return _one(cfg, backend, room=False)
    if cfg.profile == "room":
        return _one(cfg, backend, room=True)
    if backend.one_search is not None and backend.one_search(cfg):
        return _one(cfg, backend, room=False)      # both searches would be the same one
    return ProfileDetector(_one(cfg, backend, room=False), _one(cfg, backend, room=True), cfg)


def _one(cfg: DetectorSection, backend: Backend, room: bool) -> FaceDetector:
    # the section carries the common options (min_score, max_faces, min_face_px)
    return backend.build(cfg, cfg, room)
