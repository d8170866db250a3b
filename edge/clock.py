"""Media time -> real dates: a file's frames carry media time, but published events need dates.

Shared by ``fer-edge run`` (edge/service/) and ``fer-edge recognize``, so an event from a file has
the same kind of timestamp whichever command produced it.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from edge.types import Frame


class MediaClock:
    """Maps a file's media time to epoch seconds: the wall clock at the first frame plus media time.

    Keeps time increasing when a looping file starts again at media time 0.
    """

    def __init__(self) -> None:
        self._offset: float | None = None
        self._last = float("-inf")

    def epoch(self, media_ts: float) -> float:
        """Epoch seconds of the frame at ``media_ts`` seconds into the file."""
        if self._offset is None:
            self._offset = time.time() - media_ts
        ts = self._offset + media_ts
        if ts <= self._last:          # the file started again (loop): continue from the last frame
            self._offset = self._last + 0.04 - media_ts
            ts = self._offset + media_ts
        self._last = ts
        return ts


def dated(frames: Iterable[Frame], live: bool) -> Iterator[Frame]:
    """The frames with epoch timestamps: a live source's already are; a file's media time is mapped."""
    clock = None if live else MediaClock()
    for frame in frames:
        if clock is not None:
            frame.timestamp = clock.epoch(frame.timestamp)
        yield frame
