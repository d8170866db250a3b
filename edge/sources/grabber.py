"""The grab thread of live sources: keep only the newest frame."""
from __future__ import annotations

import threading
import time

import numpy as np

from edge.sources.base import Backend, SourceError, SourceStats, Stalled


class LatestFrameGrabber:
    """Reads a live backend on its own thread, keeping only the newest frame.

    The thread owns the backend and releases it when it stops, so a consumer that gives up on a
    stalled read never has to touch a capture another thread is blocked in.
    """

    def __init__(self, backend: Backend, stats: SourceStats) -> None:
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
                    raise Stalled(f"no frame for {timeout:g} s (stalled)")
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
