"""Backend: a V4L2/USB camera (index or device) or an RTSP/HTTP stream through OpenCV."""
from __future__ import annotations

from typing import Any

import numpy as np

from edge.config.source import SourceConfig
from edge.sources.base import SourceError, SourceKind, quiet_opencv, redact


class OpenCVLiveBackend:
    """A V4L2/USB camera (index or device path) or a network stream (RTSP/HTTP) through OpenCV."""

    live = True

    def __init__(self, cfg: SourceConfig, kind: SourceKind) -> None:
        self.cfg, self.kind = cfg, kind
        self.cap: Any = None
        self.fps: float | None = None

    def open(self) -> None:
        import cv2

        quiet_opencv()
        uri = self.cfg.uri.strip()
        timeout_ms = int(self.cfg.stall_timeout_s * 1000)
        if self.kind == "camera":
            target: Any = int(uri) if uri.isdigit() else uri
            cap = cv2.VideoCapture(target)
            what = f"camera {uri}"
        else:
            # FFmpeg open/read timeouts turn a dead stream into a read error instead of a hang
            cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
            what = f"stream {redact(uri)}"
        if not cap.isOpened():
            cap.release()
            hint = "is it plugged in, and is this user in the 'video' group?" if self.kind == "camera" \
                else "is the URL right and the server reachable?"
            raise SourceError(f"{what} cannot be opened ({hint})")
        if self.kind == "camera":
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)   # do not let the driver queue stale frames
            if self.cfg.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
            if self.cfg.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
            if self.cfg.fps:
                cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        self.cap = cap

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        ok, image = self.cap.read()
        if not ok or image is None:
            raise SourceError(f"{self.kind} {redact(self.cfg.uri)}: read failed (disconnected or ended)")
        return image, None, None

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
