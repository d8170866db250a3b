"""The pipeline thread: frames of one source, each handed to the service, on a thread of its own.

It stays apart from the main thread so that a stuck camera read or a hung model call can neither
block shutdown nor fake liveness (see :mod:`edge.service.supervisor`).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from edge.clock import dated
from edge.sources import Source
from edge.types import Frame

log = logging.getLogger("edge.service")


class PipelineThread:
    """Iterates ``source`` and calls ``on_frame(frame)`` for each frame until it returns False.

    File frames get real dates (their media time mapped by :func:`edge.clock.dated`).
    ``error`` holds what made it fail, ``ended`` says the source ran out; either way ``wake`` is set.
    """

    def __init__(self, source: Source, on_frame: Callable[[Frame], bool], wake: threading.Event) -> None:
        self.source = source
        self.error: BaseException | None = None
        self.ended = False
        self._on_frame = on_frame
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)

    def start(self) -> "PipelineThread":
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            # files carry media time; published events need real dates
            for frame in dated(self.source, self.source.live):
                if self._stop.is_set():
                    return
                if not self._on_frame(frame):
                    return
            if not self._stop.is_set():
                self.ended = True
        except Exception as exc:     # the supervisor decides what happens next; keep the traceback
            log.exception("pipeline failed: %s", exc)
            self.error = exc
        finally:
            self._wake.set()

    def stop(self, timeout: float) -> bool:
        """Stop the thread and close its source; False when it did not finish within ``timeout``."""
        self._stop.set()
        self.source.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the pipeline thread did not stop within %.1f s (stuck in a call); leaving it", timeout)
            return False
        return True
