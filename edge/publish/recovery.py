"""What the queue does at start when its file is damaged or came back shorter than it was left.

Used by :class:`edge.publish.queue.EventQueue` when it opens its file: a damaged file is moved
aside under a findable name and its readable events salvaged (edge/publish/salvage.py); a file
with fewer events or a lower seq counter than the high-water mark (edge/publish/seqmark.py)
recorded is reported. Each case is one log line and a :class:`Recovery` (stats, STATUS).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge.publish.salvage import Salvaged, salvage
from edge.publish.seqmark import Mark

log = logging.getLogger("edge.publish.queue")


@dataclass(frozen=True)
class Recovery:
    """What the start found wrong with the queue file and did about it (in stats as ``queue.recovery``)."""

    kind: str                   # "damaged", "shorter", "unclean machine stop"
    reason: str
    moved_to: str | None        # where the damaged file was moved
    salvaged: int | None        # events read out of the damaged file into the fresh one
    lost: int | None            # events known lost (None: not knowable)
    seq_from: int               # the first seq used after the start

    def as_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "moved_to": self.moved_to, "salvaged": self.salvaged,
                "lost": self.lost, "seq_from": self.seq_from}

    def line(self) -> str:
        """One line for systemd's STATUS."""
        if self.kind == "damaged":
            lost = "unknown" if self.lost is None else self.lost
            return (f"queue was damaged: moved to {Path(self.moved_to or '').name}, {self.salvaged} events "
                    f"salvaged, {lost} lost")
        if self.kind == "shorter":
            return f"queue came back shorter: {'unknown' if self.lost is None else self.lost} events lost"
        return f"queue not closed before the machine stopped: seq continues at {self.seq_from}"


def move_aside_and_salvage(path: Path) -> tuple[Path, Salvaged]:
    """Read what can be read from a damaged queue, then move it (and its -wal, -shm) to ``<path>.damaged-<UTC>``."""
    found = salvage(path)
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            os.replace(src, aside.with_name(aside.name + suffix))
    return aside, found


def damaged(path: Path, exc: sqlite3.DatabaseError, aside: Path, salvaged: int, mark: Mark | None,
            seq_from: int) -> Recovery:
    """Report a damaged queue replaced by a fresh one: log line and Recovery."""
    lost = max(0, mark.depth - salvaged) if mark is not None and mark.trusted_last() else None
    log.error("queue %s was damaged (%s): moved it to %s (kept for inspection); %d events salvaged into a "
              "fresh queue, %s lost; seq continues at %d", path, exc, aside.name, salvaged,
              "unknown how many" if lost is None else lost, seq_from)
    return Recovery("damaged", str(exc), str(aside), salvaged, lost, seq_from)


def came_back_shorter(path: Path, counter: int, depth: int, last_seq: int, mark: Mark | None) -> Recovery | None:
    """Compare the file with the high-water mark: did it come back shorter than it was left? Log it if so."""
    if mark is None:
        return None
    if counter < mark.last:
        lost = max(0, mark.depth - depth) if mark.trusted_last() else None
        log.error("queue %s came back shorter than it was left: seq counter %d instead of %d, %d events "
                  "instead of %d (lost with the file's last writes: %s); seq continues at %d", path,
                  counter, mark.last, depth, mark.depth,
                  "unknown how many" if lost is None else f"{lost} events", last_seq + 1)
        return Recovery("shorter", f"seq counter {counter}, {mark.last} before", None, None, lost, last_seq + 1)
    if not mark.trusted_last() and last_seq > counter:
        log.warning("queue %s was not closed before the machine stopped (power cut?): seq continues at %d, "
                    "above every seq that may have been used; events queued in the last moments before "
                    "the stop may be lost (a seq gap)", path, last_seq + 1)
        return Recovery("unclean machine stop", "the queue was not closed before the machine stopped", None,
                        None, None, last_seq + 1)
    return None
