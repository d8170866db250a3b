"""The cameras of one service as one frame source: rounds of one frame per ready camera."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edge.cameras.feed import CameraFeed
from edge.config.source import SourceConfig
from edge.sources import Source, SourceStats

WAIT_S = 0.5       # longest wait for a frame before the set looks again at closed/ended


@dataclass
class FrameBatch:
    """One round: the newest frame of each camera that had one ready, and whether it is live."""

    frames: list[tuple[object, bool]] = field(default_factory=list)    # (Frame, live)

    @property
    def image(self) -> np.ndarray:
        """The first camera's picture (what a single-camera preview would show)."""
        return self.frames[0][0].image


class CameraSet:
    """Iterates rounds (:class:`FrameBatch`) over several cameras, each read by its own :class:`CameraFeed`.

    A round takes the frame of every camera that has one, so each camera gets one frame per round
    however busy another is: a crowd camera makes rounds longer, it does not take a quiet camera's
    turns. Iteration ends when every camera has ended (files) or ``close()`` is called. Quacks like a
    :class:`~edge.sources.Source` where the service needs one: ``live``, ``stats`` (summed), ``cfg``
    (the longest timeouts), ``describe()``, ``close()``.
    """

    live = True     # feeds date their own frames; the pipeline thread passes rounds through as they are

    def __init__(self, sources: list[Source]) -> None:
        self._cond = threading.Condition()
        self.feeds = [CameraFeed(src, self._cond) for src in sources]
        self.name = ",".join(f.name for f in self.feeds)
        self.rounds = 0
        self._closed = False
        self._started = False
        self.cfg = SourceConfig(name=self.feeds[0].name if self.feeds else "cam0",
                                stall_timeout_s=max(s.cfg.stall_timeout_s for s in sources),
                                reopen_max_delay_s=max(s.cfg.reopen_max_delay_s for s in sources))

    def describe(self) -> str:
        """The cameras for log lines (stream passwords hidden)."""
        return f"{len(self.feeds)} cameras: " + ", ".join(f"{f.name} {f.source.describe()}" for f in self.feeds)

    def start(self) -> CameraSet:
        """Start the cameras' reader threads (iteration does it when not done yet); returns self."""
        if not self._started:
            self._started = True
            for feed in self.feeds:
                feed.start()
        return self

    def __iter__(self) -> Iterator[FrameBatch]:
        self.start()
        while True:
            with self._cond:
                while not self._closed and not any(f.ready() for f in self.feeds) \
                        and not all(f.done for f in self.feeds):
                    self._cond.wait(WAIT_S)
                if self._closed:
                    return
                batch = FrameBatch([(frame, feed.live) for feed in self.feeds if (frame := feed.take()) is not None])
            if not batch.frames:          # every camera ended and nothing is left
                return
            self.rounds += 1
            yield batch

    @property
    def stats(self) -> SourceStats:
        """All cameras' source figures summed; ``state`` is the worst camera's."""
        total = SourceStats()
        order = ("failed", "reopening", "new", "open", "ended", "closed")
        states = [f.source.stats.state for f in self.feeds]
        for feed in self.feeds:
            s = feed.source.stats
            total.frames += s.frames
            total.dropped += s.dropped + feed.dropped
            total.skipped += s.skipped
            total.failures += s.failures
            total.reopens += s.reopens
            total.outages += s.outages
            total.outage_s += s.outage_s
            total.last_error = f"camera {feed.name}: {s.last_error}" if s.last_error else total.last_error
        total.state = min(states, key=lambda st: order.index(st) if st in order else len(order)) if states else "new"
        return total

    def camera_stats(self) -> dict[str, dict]:
        """Each camera's source figures, by camera id (the stats message's ``cameras.<id>.source``)."""
        out = {}
        for feed in self.feeds:
            s = feed.source.stats
            out[feed.name] = {"state": "failed" if feed.error is not None else s.state, "frames": s.frames,
                              "dropped": s.dropped + feed.dropped, "failures": s.failures, "reopens": s.reopens,
                              "outages": s.outages, "outage_s": round(s.outage_s, 1),
                              "last_error": s.last_error or None}
        return out

    def fewest_frames(self) -> int:
        """Frames taken from the camera that has delivered the fewest (0 until every camera has delivered one)."""
        return min((feed.taken for feed in self.feeds), default=0)

    def stuck(self, now: float | None = None, stall_timeout_s: float = 20.0) -> list[str]:
        """The cameras that neither progress nor are in a counted outage (the watchdog's rule)."""
        now = time.monotonic() if now is None else now
        return [f.name for f in self.feeds if not f.progressing(now, stall_timeout_s)]

    def close(self, timeout: float = 2.0) -> None:
        """Stop every camera (from any thread); iteration ends at its next look.

        Waits up to ``timeout`` seconds in all for the reader threads to release their captures (a
        thread stuck in a read is a daemon and is left behind).
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for feed in self.feeds:
            feed.stop()
        deadline = time.monotonic() + timeout
        for feed in self.feeds:
            feed.join(max(0.0, deadline - time.monotonic()))
