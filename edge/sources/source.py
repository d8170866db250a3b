"""The Source: one interface over every backend (edge/sources/*.py), with reopen and backoff."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edge.config.source import SourceConfig
from edge.sources.base import LIVE_KINDS, Backend, SourceError, SourceKind, SourceStats, Stalled, redact, resolve_kind
from edge.sources.demo import DemoBackend
from edge.sources.grabber import LatestFrameGrabber
from edge.sources.images import ImageBackend
from edge.sources.opencv_live import OpenCVLiveBackend
from edge.sources.picamera import Picamera2Backend
from edge.sources.video import VideoFileBackend
from edge.types import Frame

log = logging.getLogger("edge.sources")


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
        self._grabber: LatestFrameGrabber | None = None
        self._index = 0
        self._hinted = False          # what to check has been said (once per source)
        self._down_since: float | None = None   # monotonic time the current outage began

    def _backend(self) -> Backend:
        if self.kind in ("image", "folder"):
            return ImageBackend(self.cfg, self.kind, self.stats)
        if self.kind == "video":
            return VideoFileBackend(self.cfg)
        if self.kind == "picamera2":
            return Picamera2Backend(self.cfg, self._picamera_factory)
        if self.kind == "demo":
            return DemoBackend()
        return OpenCVLiveBackend(self.cfg, self.kind)

    def describe(self) -> str:
        """Kind and uri for log lines (stream passwords hidden)."""
        return f"{self.kind} {redact(self.cfg.uri)}"

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
                    if self._down_since is not None:          # frames are back: the outage is over
                        self.stats.outage_s += time.monotonic() - self._down_since
                        self._down_since = None
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

    def _file_frames(self, backend: Backend) -> Iterator[Frame]:
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

    def _live_frames(self, backend: Backend) -> Iterator[Frame]:
        grabber = self._grabber = LatestFrameGrabber(backend, self.stats)
        try:
            while not self._closed.is_set():
                try:
                    image, ts, path = grabber.get(self.cfg.stall_timeout_s)
                except Stalled as exc:
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
        if failures_in_row == 1 and self.stats.frames and self._down_since is None:
            self.stats.outages += 1                    # frames had been coming: a new outage starts
            self._down_since = time.monotonic()
        self.stats.state = "reopening"
        limit = f"/{self.cfg.max_reopens}" if self.cfg.max_reopens else ""
        hint = ""
        if exc.hint and not self._hinted:
            hint, self._hinted = f" - {exc.hint}", True
        log.warning("source: %s (failure %d%s in a row)%s", exc, failures_in_row, limit, hint)
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
