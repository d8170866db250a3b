"""Backend: a video file through OpenCV (FFmpeg); timestamps are media time."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge.config.source import SourceConfig
from edge.sources.base import SourceError, quiet_opencv

log = logging.getLogger("edge.sources")


class VideoFileBackend:
    """A video file through OpenCV (FFmpeg); timestamps are media time."""

    live = False

    def __init__(self, cfg: SourceConfig) -> None:
        self.path = Path(cfg.uri.removeprefix("file://")).expanduser()
        self.cap: Any = None
        self.fps: float | None = None
        self.pos = 0
        self.count = 0

    def open(self) -> None:
        import cv2

        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such video file")
        quiet_opencv()
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.path}: cannot be opened as a video (corrupt, or a codec FFmpeg lacks)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 and fps < 1000 else None
        self.count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.cap, self.pos = cap, 0

    def read(self) -> tuple[np.ndarray, float | None, str] | None:
        ok, image = self.cap.read()
        if not ok or image is None:
            if self.count and self.pos < self.count - 1:
                # A truncated file: say so, but treat it as the end (reopening would replay it forever).
                log.warning("source: %s: read failed at frame %d of %d; treating as the end", self.path,
                            self.pos, self.count)
            return None
        ts = self.pos / self.fps if self.fps else None
        self.pos += 1
        return image, ts, str(self.path)

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
