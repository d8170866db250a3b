"""Backend: a V4L2/USB camera (index or device) or an RTSP/HTTP stream through OpenCV."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge.config.source import SourceConfig
from edge.sources.base import SourceError, SourceKind, quiet_opencv, redact

CAMERA_HINT = ("check that the camera is plugged in (`ls /dev/video*` lists it) and that this user is in the "
               "'video' group (`sudo usermod -aG video $USER`, then log in again); to try fer-edge without "
               "a camera: fer-edge run --demo")


def camera_problem(uri: str) -> str:
    """Why camera ``uri`` (an index or /dev/videoN) may not open, from its device node (Linux)."""
    node = f"/dev/video{uri}" if uri.isdigit() else uri
    if not sys.platform.startswith("linux") or not node.startswith("/dev/"):
        return "not found or busy"
    if not Path(node).exists():
        return f"no device node {node}"
    if not os.access(node, os.R_OK | os.W_OK):
        return f"{node} exists, but this user may not open it"
    return f"{node} is busy (another program?) or not a capture device"


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
            if self.kind == "camera":
                raise SourceError(f"{what} cannot be opened ({camera_problem(uri)})", hint=CAMERA_HINT)
            raise SourceError(f"{what} cannot be opened (is the URL right and the server reachable?)")
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
