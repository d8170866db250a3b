"""Frame sources behind one interface: image, folder, video file, V4L2/USB camera, RTSP/HTTP stream, picamera2.

``open_source(cfg)`` returns a :class:`Source`: iterate it for :class:`~edge.types.Frame` objects,
``close()`` it from any thread. A source that fails to open, fails to read or stalls is reported
(one log line) and reopened with exponential backoff; iteration never raises for such a
transient failure (only after ``max_reopens`` failures in a row, when that is set).

Files are read as fast as the consumer asks (benchmarks) unless ``pace`` plays them at their
frame rate. Live sources (cameras, streams, picamera2) are read by a grab thread that keeps only
the newest frame, so a slow consumer always gets a fresh picture; frames it never saw are counted
in ``dropped``.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edge.config_base import StrictModel
from edge.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts"})
SourceKind = Literal["image", "folder", "video", "camera", "stream", "picamera2"]
LIVE_KINDS = frozenset({"camera", "stream", "picamera2"})


class SourceConfig(StrictModel):
    """Section `source`: where frames come from."""

    uri: str = Field("0", description="What to read: a camera index (0) or device (/dev/video0), an "
                     "rtsp:// or http(s):// stream URL, a video file, an image file, a folder of images, "
                     "or 'picamera2' (Raspberry Pi camera; 'picamera2:1' for the second one).")
    kind: Literal["auto", "image", "folder", "video", "camera", "stream", "picamera2"] = Field(
        "auto", description="How to read `uri`; 'auto' decides from its form (digits: camera, '://': stream, "
        "a folder, an image or video extension).")
    name: str = Field("cam0", min_length=1, max_length=64, description="Camera id carried by every frame and event.")
    width: int = Field(0, ge=0, description="Requested capture width for cameras/picamera2 (0: the driver's default; "
                       "picamera2 defaults to 640).")
    height: int = Field(0, ge=0, description="Requested capture height (0: the driver's default; picamera2: 480).")
    fps: float = Field(0.0, ge=0.0, description="Requested camera frame rate (0: default). For image folders: "
                       "the frame rate their timestamps assume (0: one frame per second).")
    pace: bool = Field(False, description="Video files: play at the file's frame rate instead of as fast as "
                       "frames are consumed.")
    loop: bool = Field(False, description="Video files, images, folders: start again at the end (demos).")
    reopen_delay_s: float = Field(1.0, gt=0.0, description="First wait before reopening a failed source; doubles "
                                  "after each failure in a row.")
    reopen_max_delay_s: float = Field(30.0, gt=0.0, description="Longest wait between reopen attempts.")
    max_reopens: int = Field(0, ge=0, description="Give up after this many failures in a row (0: never; a "
                             "service should keep trying).")
    stall_timeout_s: float = Field(10.0, gt=0.0, description="A live source that delivers no frame for this long "
                                   "counts as failed and is reopened.")


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message is one line a person can act on."""


class _Stalled(SourceError):
    """A live source delivered no frame within ``stall_timeout_s``."""


@dataclass
class SourceStats:
    """What a source has done so far (for the service's stats)."""

    frames: int = 0          # frames delivered
    dropped: int = 0         # live frames replaced by a newer one before anyone took them
    skipped: int = 0         # unreadable files in an image folder
    failures: int = 0        # open/read failures and stalls (each reported)
    reopens: int = 0         # successful reopenings after a failure
    last_error: str = ""
    state: str = "new"       # new, open, reopening, ended, closed, failed


# ----------------------------------------------------------------------------------------------
# Which kind of source a uri is
# ----------------------------------------------------------------------------------------------

def resolve_kind(cfg: SourceConfig) -> SourceKind:
    """The source kind: as configured, or guessed from the uri's form."""
    if cfg.kind != "auto":
        return cfg.kind
    uri = cfg.uri.strip()
    if re.fullmatch(r"picamera2(:\d+)?", uri):
        return "picamera2"
    if uri.isdigit() or uri.startswith("/dev/video"):
        return "camera"
    if "://" in uri and not uri.startswith("file://"):
        return "stream"
    path = Path(uri.removeprefix("file://")).expanduser()
    if path.is_dir():
        return "folder"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    return "video"


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


def _quiet_opencv() -> None:
    """Keep OpenCV's own WARN lines (e.g. 'can't open camera by index') out of the log: we report instead."""
    import cv2

    if not log.isEnabledFor(logging.DEBUG):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


# ----------------------------------------------------------------------------------------------
# Backends: open() raises SourceError; read() returns (image, media time or None) or None at the end
# ----------------------------------------------------------------------------------------------

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
        _quiet_opencv()
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


class OpenCVLiveBackend:
    """A V4L2/USB camera (index or device path) or a network stream (RTSP/HTTP) through OpenCV."""

    live = True

    def __init__(self, cfg: SourceConfig, kind: SourceKind) -> None:
        self.cfg, self.kind = cfg, kind
        self.cap: Any = None
        self.fps: float | None = None

    def open(self) -> None:
        import cv2

        _quiet_opencv()
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
            what = f"stream {_redact(uri)}"
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
            raise SourceError(f"{self.kind} {_redact(self.cfg.uri)}: read failed (disconnected or ended)")
        return image, None, None

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


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
            raise SourceError(f"picamera2 camera {self.camera_num} cannot be opened: {_one_line(exc)}") from None
        try:
            controls = {"FrameRate": float(self.cfg.fps)} if self.cfg.fps else {}
            # "RGB888" is B,G,R in memory: exactly OpenCV's BGR, no conversion needed
            config = cam.create_video_configuration(main={"format": "RGB888", "size": size}, controls=controls)
            cam.configure(config)
            cam.start()
        except Exception as exc:
            _close_quietly(cam)
            raise SourceError(f"picamera2 camera {self.camera_num} cannot be started: {_one_line(exc)}") from None
        self.cam = cam

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        try:
            image = self.cam.capture_array("main")
        except Exception as exc:
            raise SourceError(f"picamera2 camera {self.camera_num}: capture failed: {_one_line(exc)}") from None
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _redact(uri: str) -> str:
    """A stream URL without its password (rtsp://user:secret@host -> rtsp://user:***@host)."""
    return re.sub(r"(://[^/:@]+:)[^@/]*@", r"\1***@", uri)


# ----------------------------------------------------------------------------------------------
# The grab thread of live sources: keep only the newest frame
# ----------------------------------------------------------------------------------------------

class _LatestFrameGrabber:
    """Reads a live backend on its own thread, keeping only the newest frame.

    The thread owns the backend and releases it when it stops, so a consumer that gives up on a
    stalled read never has to touch a capture another thread is blocked in.
    """

    def __init__(self, backend: Any, stats: SourceStats) -> None:
        self.backend, self.stats = backend, stats
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, float, str | None] | None = None
        self._error: SourceError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="source-grab", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    got = self.backend.read()
                    if got is None:
                        raise SourceError("live source ended")
                except SourceError as exc:
                    with self._cond:
                        self._error = exc
                        self._cond.notify_all()
                    return
                image, _, path = got
                with self._cond:
                    if self._latest is not None:
                        self.stats.dropped += 1      # the consumer never saw the previous one
                    self._latest = (image, time.time(), path)
                    self._cond.notify_all()
        finally:
            self.backend.release()

    def get(self, timeout: float) -> tuple[np.ndarray, float, str | None]:
        """The newest frame not yet taken; SourceError on a read failure or after ``timeout`` s without one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None and self._error is None and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Stalled(f"no frame for {timeout:g} s (stalled)")
                self._cond.wait(left)
            if self._latest is not None:
                frame, self._latest = self._latest, None
                return frame
            if self._error is not None:
                raise self._error
            raise SourceError("closed")

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)   # a thread stuck in read() is a daemon; it releases when it returns


# ----------------------------------------------------------------------------------------------
# The Source: one interface over all backends, with reopen/backoff
# ----------------------------------------------------------------------------------------------

class Source:
    """Iterable of frames from the configured source; reopens with backoff on failure; ``close()`` ends it."""

    def __init__(self, cfg: SourceConfig, *, picamera_factory: Callable[[int], Any] | None = None) -> None:
        self.cfg = cfg
        self.kind: SourceKind = resolve_kind(cfg)
        self.live = self.kind in LIVE_KINDS
        self.name = cfg.name
        self.stats = SourceStats()
        self.fps: float | None = None
        self._picamera_factory = picamera_factory
        self._closed = threading.Event()
        self._grabber: _LatestFrameGrabber | None = None
        self._index = 0

    def _backend(self) -> Any:
        if self.kind in ("image", "folder"):
            return ImageBackend(self.cfg, self.kind, self.stats)
        if self.kind == "video":
            return VideoFileBackend(self.cfg)
        if self.kind == "picamera2":
            return Picamera2Backend(self.cfg, self._picamera_factory)
        return OpenCVLiveBackend(self.cfg, self.kind)

    def describe(self) -> str:
        """Kind and uri for log lines (stream passwords hidden)."""
        return f"{self.kind} {_redact(self.cfg.uri)}"

    def __iter__(self) -> Iterator[Frame]:
        failures_in_row = 0
        while not self._closed.is_set():
            backend = self._backend()
            try:
                backend.open()
            except SourceError as exc:
                failures_in_row += 1
                if not self._after_failure(exc, failures_in_row):
                    return
                continue
            if failures_in_row:
                self.stats.reopens += 1
                log.info("source: %s reopened after %d failure(s)", self.describe(), failures_in_row)
            self.fps = backend.fps or self.fps
            self.stats.state = "open"
            try:
                for frame in (self._live_frames(backend) if self.live else self._file_frames(backend)):
                    failures_in_row = 0
                    yield frame
            except SourceError as exc:
                failures_in_row += 1
                if not self._after_failure(exc, failures_in_row):
                    return
                continue
            finally:
                if not self.live:
                    backend.release()
            # a file source reached its end
            if self.cfg.loop and not self._closed.is_set():
                continue
            self.stats.state = "ended" if not self._closed.is_set() else "closed"
            return
        self.stats.state = "closed"

    def _file_frames(self, backend: Any) -> Iterator[Frame]:
        start = time.monotonic()
        first_ts: float | None = None
        n = 0
        while not self._closed.is_set():
            got = backend.read()
            if got is None:
                return
            image, media_ts, path = got
            ts = media_ts if media_ts is not None else n / (backend.fps or 1.0)
            if self.cfg.pace:
                first_ts = ts if first_ts is None else first_ts
                delay = (ts - first_ts) - (time.monotonic() - start)
                if delay > 0 and self._closed.wait(delay):
                    return
            n += 1
            yield self._frame(image, ts, path)

    def _live_frames(self, backend: Any) -> Iterator[Frame]:
        grabber = self._grabber = _LatestFrameGrabber(backend, self.stats)
        try:
            while not self._closed.is_set():
                try:
                    image, ts, path = grabber.get(self.cfg.stall_timeout_s)
                except _Stalled as exc:
                    raise SourceError(f"{self.describe()}: {exc}") from None
                except SourceError:
                    if self._closed.is_set():
                        return
                    raise
                yield self._frame(image, ts, path)
        finally:
            self._grabber = None
            grabber.stop()

    def _frame(self, image: np.ndarray, ts: float, path: str | None) -> Frame:
        frame = Frame(image=image, index=self._index, timestamp=float(ts), camera=self.name, path=path)
        self._index += 1
        self.stats.frames += 1
        return frame

    def _after_failure(self, exc: SourceError, failures_in_row: int) -> bool:
        """Report a failure (one line) and back off; False when closed meanwhile, SourceError when out of attempts."""
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        self.stats.state = "reopening"
        limit = f"/{self.cfg.max_reopens}" if self.cfg.max_reopens else ""
        log.warning("source: %s (failure %d%s in a row)", exc, failures_in_row, limit)
        if self.cfg.max_reopens and failures_in_row >= self.cfg.max_reopens:
            self.stats.state = "failed"
            raise SourceError(f"{self.describe()}: giving up after {failures_in_row} failures in a row: "
                              f"{self.stats.last_error}")
        delay = min(self.cfg.reopen_max_delay_s, self.cfg.reopen_delay_s * 2 ** (failures_in_row - 1))
        log.info("source: reopening %s in %.3g s", self.describe(), delay)
        return not self._closed.wait(delay)

    def close(self) -> None:
        """Stop iteration (from any thread); a running iterator ends at its next frame or wait."""
        self._closed.set()
        self.stats.state = "closed"
        grabber = self._grabber
        if grabber is not None:
            grabber.stop(wait=False)   # wakes a consumer waiting for the next frame


def open_source(cfg: SourceConfig | None = None, *, picamera_factory: Callable[[int], Any] | None = None) -> Source:
    """The configured source, ready to iterate (opening happens on the first iteration, with retries)."""
    return Source(cfg or SourceConfig(), picamera_factory=picamera_factory)
