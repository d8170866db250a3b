"""Backend: the Raspberry Pi camera through picamera2 (imported only when this source is chosen)."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.config.source import SourceConfig
from edge.formatting import one_line
from edge.sources.base import SourceError


PICAMERA_HINT = ("check the ribbon cable and that `rpicam-hello --list-cameras` lists the camera, and that this "
                 "user is in the 'video' group; to try fer-edge without a camera: fer-edge run --demo")


class Picamera2Backend:
    """The Raspberry Pi camera through picamera2 (imported only when this source is chosen).

    ``factory(camera_num)`` builds the camera object; by default ``picamera2.Picamera2``. Tests
    pass a stand-in with the same methods.
    """

    live = True

    def __init__(self, cfg: SourceConfig, factory: Callable[[int], Any] | None = None) -> None:
        self.cfg = cfg
        self.factory = factory
        self.cam: Any = None
        self.fps: float | None = cfg.fps or None
        m = re.fullmatch(r"picamera2(?::(\d+))?", cfg.uri.strip())
        self.camera_num = int(m.group(1)) if m and m.group(1) else 0

    def open(self) -> None:
        factory = self.factory
        if factory is None:
            try:
                from picamera2 import Picamera2  # type: ignore[import-not-found]
            except ImportError:
                raise SourceError("picamera2 is not installed: sudo apt install python3-picamera2 "
                                  "(or pip install 'fer-edge[picamera]')") from None
            factory = Picamera2
        size = (self.cfg.width or 640, self.cfg.height or 480)
        try:
            cam = factory(self.camera_num)
        except Exception as exc:  # picamera2 raises RuntimeError/IndexError when the camera is absent or busy
            raise SourceError(f"picamera2 camera {self.camera_num} cannot be opened: {one_line(exc, rest=False)}",
                              hint=PICAMERA_HINT) from None
        try:
            controls = {"FrameRate": float(self.cfg.fps)} if self.cfg.fps else {}
            # "RGB888" is B,G,R in memory: exactly OpenCV's BGR, no conversion needed
            config = cam.create_video_configuration(main={"format": "RGB888", "size": size}, controls=controls)
            cam.configure(config)
            cam.start()
        except Exception as exc:
            _close_quietly(cam)
            raise SourceError(f"picamera2 camera {self.camera_num} cannot be started: {one_line(exc, rest=False)}") from None
        self.cam = cam

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        try:
            image = self.cam.capture_array("main")
        except Exception as exc:
            raise SourceError(f"picamera2 camera {self.camera_num}: capture failed: {one_line(exc, rest=False)}") from None
        if image is None or image.ndim != 3:
            raise SourceError(f"picamera2 camera {self.camera_num}: capture returned no colour image")
        if image.shape[2] == 4:          # XRGB8888/XBGR8888 layouts: drop the padding byte
            image = image[:, :, :3]
        return np.ascontiguousarray(image), None, None

    def release(self) -> None:
        if self.cam is not None:
            _close_quietly(self.cam)
            self.cam = None


def _close_quietly(cam: Any) -> None:
    for method in ("stop", "close"):
        try:
            getattr(cam, method)()
        except Exception:  # already stopped/closed, or the device vanished: nothing left to release
            pass
