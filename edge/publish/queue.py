"""The durable event queue between the pipeline and the MQTT client (SQLite in WAL mode).

Every event is committed here before it is sent and deleted only after the broker acknowledged
it, so a broker outage, a restart or a SIGKILL loses nothing that was queued. In the same
transaction as the insert, the event gets the next sequence number of the device (the counter
lives in the same file) and a unique id; both are part of the stored JSON, so a re-sent event
is byte-for-byte the one sent before.

Exactly once into the queue, at least once on the wire: an event the broker acknowledged but
whose deletion a crash prevented is sent again after the restart, with the same id and seq.

When the queue holds ``max_events``, each new event pushes out the oldest one (drop oldest);
drops are counted (:attr:`EventQueue.dropped`, in stats) and logged once per interval.

When the file cannot be written (disk full, ``ulimit -f``, I/O error), events still get their
seq and wait in a bounded memory buffer (``queue.max_held``) and are stored, in order, as soon as
a write succeeds again; nothing is lost unless that buffer overflows, and what it pushes out is
counted in :attr:`EventQueue.lost` and shows as a seq gap. Failures are counted, kept as
:attr:`EventQueue.last_error` and logged once per interval, never raised at the caller. While
events wait, a new one only joins them (constant cost); :meth:`EventQueue.retry` stores them.

seq also has a high-water mark outside the file (edge/publish/seqmark.py): it never repeats when the
file loses its last writes or is replaced; a damaged file is moved aside and salvaged at start
(edge/publish/recovery.py; docs/mqtt.md, "Power cuts and damaged files").
"""
from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from edge.config.queue import QueueConfig
from edge.events import Event, new_event_id
from edge.publish.ratelimit import LogEvery
from edge.publish.recovery import Recovery, came_back_shorter, damaged, move_aside_and_salvage
from edge.publish.seqmark import SeqMark
from edge.state_dir import state_dir

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1     # PRAGMA user_version of the file layout below
WAL_PAGES = 256                 # PRAGMA wal_autocheckpoint: pages (4 KiB) in the WAL before it is folded back (1 MiB)
WAL_LIMIT = 1 << 20             # PRAGMA journal_size_limit: bytes the WAL file keeps after a checkpoint


class QueueError(RuntimeError):
    """The queue file cannot be used: unwritable, in use by another process, or a newer format."""


class _NewerFormat(Exception):
    """The file is a queue of a newer fer-edge: not damaged, not to be moved aside."""


@dataclass(frozen=True)
class QueuedEvent:
    """One stored event: its sequence number and the exact JSON to publish."""

    seq: int
    id: str
    payload: str
    created: float


def default_queue_path() -> Path:
    """Where the queue lives when `queue.path` is empty (systemd's StateDirectory, else XDG state)."""
    return state_dir() / "queue.db"


class EventQueue:
    """A bounded, ordered, crash-safe FIFO of events for one device, in one SQLite file.

    Thread-safe: the pipeline's thread appends while the sender thread peeks and removes.
    """

    def __init__(self, path: str | Path, max_events: int = 100_000, log_interval_s: float = 60.0,
                 max_held: int = 10_000) -> None:
        self.path = Path(path)
        self.max_events = int(max_events)
        self.max_held = int(max_held)
        self.dropped = 0                      # since this process opened the queue
        self.lost = 0                         # pushed out of the full memory buffer: never sent
        self.store_errors = 0                 # failed writes (stores and deletions) since start
        self.last_error: str | None = None    # the last failed write; None once a write succeeded
        self._held: deque[tuple[int, str, str, float]] = deque()   # stamped, not yet in the file
        self._unremoved: list[int] = []       # acknowledged, but their deletion failed; retried
        self._lock = threading.Lock()
        self._log_full = LogEvery(log, log_interval_s)
        self._log_store = LogEvery(log, log_interval_s, logging.ERROR)
        self._db: sqlite3.Connection | None = None
        self._lockfile = self._take_lock()
        self.mark = SeqMark(self.path)
        self.recovery: Recovery | None = None     # what the start found wrong with the file, None when nothing
        try:
            try:
                counter = self._open_existing()
            except _NewerFormat as exc:
                raise QueueError(f"queue.path {self.path}: {exc}; use the fer-edge version that wrote it "
                                 f"or set queue.path to a new file") from None
            except sqlite3.DatabaseError as exc:
                counter = self._replace_damaged(exc)
            self.last_seq = max(counter, self.mark.found.floor() if self.mark.found else 0)
            if self.recovery is None:
                self.recovery = came_back_shorter(self.path, counter, self.depth, self.last_seq, self.mark.found)
            self.mark.reserve(self.last_seq + 1, self.last_seq, self.depth)
        except (sqlite3.Error, OSError) as exc:
            self._close_db()
            self.mark.release()
            self._release_lock()
            raise QueueError(f"queue.path {self.path}: not a usable fer-edge queue "
                             f"({getattr(exc, 'strerror', None) or exc}); "
                             f"move the file away or set queue.path to a new file") from None
        except QueueError:
            self._close_db()
            self.mark.release()
            self._release_lock()
            raise

    def _open_existing(self) -> int:
        """Open the file and read its state; return its seq counter.

        The ``-shm`` index is derived from the WAL and may describe frames the WAL no longer holds
        (an emptied or replaced ``-wal``): SQLite then reports a disk I/O error. The process lock is
        ours, so no other fer-edge has the file open: the stale index is removed and the file opened
        once more before it is called damaged.
        """
        shm = self.path.with_name(self.path.name + "-shm")
        try:
            self._db = self._open()
            counter, self.depth = self._read_state()
            return counter
        except sqlite3.OperationalError:
            if not shm.exists():
                raise
        self._close_db()
        shm.unlink()
        self._db = self._open()
        counter, self.depth = self._read_state()
        return counter

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()            # sqlite3's close() does not raise for a damaged file
            self._db = None

    def _read_state(self) -> tuple[int, int]:
        """The file's seq counter and number of events; a damaged b-tree raises sqlite3.DatabaseError here."""
        counter = int(self._db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
        depth = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        return counter, depth

    def _replace_damaged(self, exc: sqlite3.DatabaseError) -> int:
        """Move the damaged file aside, salvage its events into a fresh queue; return the seq counter to go on from."""
        self._close_db()
        floor = self.mark.found.floor() if self.mark.found else 0
        aside, found = move_aside_and_salvage(self.path)
        self._db = self._open()
        rows = [(seq, *found.events[seq]) for seq in sorted(found.events)][-self.max_events:]
        counter = max(found.max_seq, floor)
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT INTO events(seq, id, payload, created) VALUES (?, ?, ?, ?)", rows)
        self._db.execute("UPDATE meta SET value=? WHERE key='seq'", (counter,))
        self._db.execute("COMMIT")
        self.depth = len(rows)
        self.recovery = damaged(self.path, exc, aside, len(rows), self.mark.found, counter + 1)
        return counter

    @property
    def held(self) -> int:
        """Events with a seq that wait in memory because the file could not take them."""
        return len(self._held)

    @classmethod
    def from_config(cls, cfg: QueueConfig) -> "EventQueue":
        """Open the queue a config section names."""
        return cls(Path(cfg.path) if cfg.path else default_queue_path(), cfg.max_events, cfg.log_interval_s,
                   cfg.max_held)

    def _take_lock(self):
        # Two processes sending from one queue would interleave and duplicate: refuse the second.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path.with_name(self.path.name + ".lock"), "a+")
        except OSError as exc:
            raise QueueError(f"queue.path {self.path}: cannot create it ({exc.strerror}); "
                             f"set queue.path to a file in a writable directory") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise QueueError(f"queue.path {self.path} is in use by another fer-edge process; "
                             f"give each process its own queue.path") from None
        return fh

    def _release_lock(self) -> None:
        if self._lockfile is not None:
            self._lockfile.close()      # closing releases the flock (as does the process dying)
            self._lockfile = None

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db = db               # closed by the caller when what follows fails
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")    # WAL+NORMAL: durable against process crashes, fast commits
        # Fold the WAL back every WAL_PAGES pages (SQLite's default, 1000 pages, lets it reach 4 MB, which a
        # small file size limit or a nearly full disk cannot take) and truncate it to WAL_LIMIT after that.
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _FORMAT_VERSION):
            raise _NewerFormat(f"queue format {version}, this fer-edge reads {_FORMAT_VERSION}")
        db.executescript(f"""
            BEGIN;
            CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,
                                               payload TEXT NOT NULL, created REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT OR IGNORE INTO meta(key, value) VALUES ('seq', 0);
            PRAGMA user_version = {_FORMAT_VERSION};
            COMMIT;""")
        return db

    def append(self, events: Iterable[Event], device: str, instance: str | None = None) -> list[Event]:
        """Stamp events with device, seq, id (and instance) and commit them in one transaction; return them.

        Never raises for a write failure: the events wait in memory (see the module docstring).
        """
        stamped: list[Event] = []
        now = time.time()
        with self._lock:
            backlog = bool(self._held)    # a store failed: retry() tries again, each event costs the same
            seq = self.last_seq
            for ev in events:
                seq += 1
                ev = ev.stamped(device, seq, new_event_id(), instance)
                stamped.append(ev)
                self._held.append((seq, ev.id, ev.to_json(), now))
            if not stamped:
                return stamped
            self.last_seq = seq     # even if the file refuses them: what is lost later shows as a gap
            self.mark.reserve(seq, self.last_seq, self.depth)
            if backlog:
                self._trim_held()
                return stamped
            excess = self._store()
        if excess > 0:
            self._log_full("event queue full (%d events, queue.max_events): dropped the oldest; %d dropped since start",
                           self.max_events, self.dropped)
        return stamped

    def retry(self) -> bool:
        """Try again to store held events and delete acknowledged ones; True when nothing waits any more."""
        with self._lock:
            if self._held or self._unremoved:
                self._store()
            return not self._held and not self._unremoved

    def _store(self) -> int:
        """Write the held events (and pending deletions) in one transaction; return how many were dropped.

        Called with the lock held. On failure everything stays for the next attempt, except what
        overflows the memory buffer.
        """
        rows = list(self._held)
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            if self._unremoved:
                db.executemany("DELETE FROM events WHERE seq=?", [(s,) for s in self._unremoved])
            db.executemany("INSERT INTO events(seq, id, payload, created) VALUES (?, ?, ?, ?)", rows)
            db.execute("UPDATE meta SET value=? WHERE key='seq'", (self.last_seq,))   # same transaction: no seq reused
            excess = self.depth + len(rows) - self.max_events
            if excess > 0:
                db.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)",
                           (excess,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._trim_held()
            self._failed(exc, "store events")
            self._checkpoint()
            return 0
        self._held.clear()
        self._unremoved.clear()
        self.depth += len(rows) - max(0, excess)
        self.dropped += max(0, excess)
        self.mark.committed(self.last_seq, self.depth)
        self._recovered(len(rows))
        return excess

    def _trim_held(self) -> None:
        """Push the oldest held events out beyond queue.max_held: lost, counted, a seq gap."""
        overflow = len(self._held) - self.max_held
        for _ in range(max(0, overflow)):
            self._held.popleft()            # the oldest go first, as in the file
        self.lost += max(0, overflow)

    def _checkpoint(self) -> None:
        """After a failed write: fold the WAL back and truncate it, which may give the next attempt room."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _failed(self, exc: sqlite3.Error, what: str) -> None:
        self.store_errors += 1
        first = self.last_error is None
        self.last_error = f"queue {self.path}: cannot {what} ({exc}); disk full, file size limit or I/O error?"
        if first:
            self._log_store.reset()             # a new episode is reported at once
        self._log_store("%s %d events held in memory (queue.max_held %d), %d lost since start; retrying",
                        self.last_error, len(self._held), self.max_held, self.lost)

    def _recovered(self, stored: int) -> None:
        if self.last_error is not None:
            log.warning("queue %s can be written again: %d held events stored; %d lost while it could not "
                        "(%d failed writes)", self.path, stored, self.lost, self.store_errors)
            self.last_error = None

    def peek(self, after_seq: int = 0, limit: int = 100) -> list[QueuedEvent]:
        """The oldest stored events with seq > ``after_seq``, in order ([] while the file cannot be read)."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT seq, id, payload, created FROM events WHERE seq > ? "
                                        "ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
            except sqlite3.Error as exc:
                self._failed(exc, "read events")
                return []
        return [QueuedEvent(*r) for r in rows]

    def remove(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged events; return how many were still queued (a failed deletion is retried later)."""
        if not seqs:
            return 0
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                cur = db.executemany("DELETE FROM events WHERE seq=?", [(s,) for s in [*self._unremoved, *seqs]])
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._unremoved.extend(seqs)    # sent and acknowledged: only the deletion waits
                self.depth = max(0, self.depth - len(seqs))
                self._failed(exc, "delete sent events")
                return 0
            removed = cur.rowcount - len(self._unremoved)
            self.depth = max(0, self.depth - max(0, removed))
            self._unremoved.clear()
            self.mark.committed(self.last_seq, self.depth)
            return max(0, removed)

    def oldest_age_s(self) -> float | None:
        """Seconds the oldest queued event has waited, None when the queue is empty."""
        with self._lock:
            try:
                row = self._db.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
            except sqlite3.Error:
                return None
        return None if row is None else max(0.0, time.time() - row[0])

    def close(self) -> None:
        """Close the file (a checkpoint folds the WAL back) and release the process lock.

        Held events get a last attempt; those the file still refuses are lost (counted, logged).
        """
        with self._lock:
            if self._db is not None and (self._held or self._unremoved):
                self._store()
                if self._held:
                    self.lost += len(self._held)
                    log.error("queue %s: %d events could not be stored before closing and are lost (seq %d-%d)",
                              self.path, len(self._held), self._held[0][0], self._held[-1][0])
                    self._held.clear()
            if self._db is not None:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass
                self._db.close()
                self._db = None
                self.mark.close(self.last_seq, self.depth)
            self._release_lock()
