"""Backend: one image file, or the images of a folder (recursively)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.config.source import SourceConfig
from edge.sources.base import IMAGE_EXTENSIONS, SourceError, SourceKind, SourceStats

log = logging.getLogger("edge.sources")


def list_images(folder: Path) -> list[Path]:
    """Image files (by extension) under ``folder``, recursively, in a stable sorted order; hidden ones skipped."""
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to BGR uint8 (EXIF orientation applied); SourceError with the reason if not."""
    import cv2

    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"{path}: not a readable image (empty, corrupt, or not an image format OpenCV knows)")
    return image


class ImageBackend:
    """One image file, or the images of a folder (recursively); unreadable files are reported and skipped."""

    live = False

    def __init__(self, cfg: SourceConfig, kind: SourceKind, stats: SourceStats) -> None:
        self.path = Path(cfg.uri.removeprefix("file://")).expanduser()
        self.kind = kind
        self.stats = stats
        self.fps = cfg.fps or 1.0
        self.files: list[Path] = []
        self.pos = 0

    def open(self) -> None:
        if self.kind == "folder":
            if not self.path.is_dir():
                raise SourceError(f"{self.path}: no such folder")
            self.files = list_images(self.path)
            if not self.files:
                raise SourceError(f"{self.path}: folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        else:
            read_image(self.path)   # fail at open time, so the error is reported like any other
            self.files = [self.path]
        self.pos = 0

    def read(self) -> tuple[np.ndarray, float | None, str] | None:
        while self.pos < len(self.files):
            path = self.files[self.pos]
            self.pos += 1
            try:
                return read_image(path), None, str(path)
            except SourceError as exc:
                self.stats.skipped += 1
                log.warning("source: skipping %s", exc)
        return None

    def release(self) -> None:
        self.files = []
