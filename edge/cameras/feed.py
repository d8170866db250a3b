"""One camera's reader thread: frames of one :class:`~edge.sources.Source` into a one-frame slot."""
from __future__ import annotations

import logging
import threading
import time

from edge.clock import dated
from edge.sources import Source
from edge.types import Frame

log = logging.getLogger("edge.cameras")


class CameraFeed:
    """Reads ``source`` on its own thread into a one-frame slot guarded by ``cond`` (shared by all feeds).

    A live source's frame replaces one that was not taken yet (counted in ``dropped``: the camera
    is served less often than it delivers); a file's reader waits until its frame was taken, so
    files lose nothing. The source itself reopens with backoff after a failure; ``error`` is set
    only when it gives up (``source.max_reopens``). ``done`` says the thread has finished.
    """

    def __init__(self, source: Source, cond: threading.Condition) -> None:
        self.source = source
        self.name = source.name
        self.live = source.live
        self.dropped = 0                   # frames replaced in the slot before they were taken
        self.taken = 0                     # frames handed to the pipeline
        self.error: BaseException | None = None
        self.done = False
        self.last_taken = time.monotonic() # when a frame of this camera last went to the pipeline
        self._failures_seen = 0
        self._slot: Frame | None = None
        self._cond = cond
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)

    def start(self) -> CameraFeed:
        """Start the reader thread; returns self."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for frame in dated(self.source, self.live):    # a file's media time becomes real dates
                with self._cond:
                    while not self.live and self._slot is not None and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = frame
                    self._cond.notify_all()
        except Exception as exc:           # the source gave up (max_reopens): this camera alone stops
            log.error("camera %s failed: %s", self.name, exc)
            self.error = exc
        finally:
            with self._cond:
                self.done = True
                self._cond.notify_all()

    def ready(self) -> bool:
        """A frame waits in the slot (call under ``cond``)."""
        return self._slot is not None

    def take(self) -> Frame | None:
        """The waiting frame, or None (call under ``cond``); wakes a file reader waiting for room."""
        frame, self._slot = self._slot, None
        if frame is not None:
            self.taken += 1
            self.last_taken = time.monotonic()
            self._cond.notify_all()
        return frame

    def progressing(self, now: float, stall_timeout_s: float) -> bool:
        """True while this camera delivers frames, ended, or is in a counted outage (reopening with backoff)."""
        stats = self.source.stats
        if self.done:
            return self.error is None
        if stats.failures != self._failures_seen:     # a failed (re)open attempt is progress of a kind
            self._failures_seen = stats.failures
            self.last_taken = now
        if stats.state == "reopening":
            return True
        allowed = stall_timeout_s + (self.source.cfg.stall_timeout_s if self.live else 0.0)
        return now - self.last_taken < allowed

    def stop(self) -> None:
        """Close the source and end the thread (it may still be inside a read; it is a daemon)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self.source.close()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the thread to end (at once when it never started)."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
