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
"""
from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from edge.config.queue import QueueConfig
from edge.events import Event, new_event_id
from edge.publish.ratelimit import LogEvery

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1     # PRAGMA user_version of the file layout below


class QueueError(RuntimeError):
    """The queue file cannot be used: unwritable, corrupt, or in use by another process."""


@dataclass(frozen=True)
class QueuedEvent:
    """One stored event: its sequence number and the exact JSON to publish."""

    seq: int
    id: str
    payload: str
    created: float


def default_queue_path() -> Path:
    """Where the queue lives when `queue.path` is empty (systemd's StateDirectory, else XDG state)."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state) / "queue.db"
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "fer-edge" / "queue.db"


class EventQueue:
    """A bounded, ordered, crash-safe FIFO of events for one device, in one SQLite file.

    Thread-safe: the pipeline's thread appends while the sender thread peeks and removes.
    """

    def __init__(self, path: str | Path, max_events: int = 100_000, log_interval_s: float = 60.0) -> None:
        self.path = Path(path)
        self.max_events = int(max_events)
        self.dropped = 0                      # since this process opened the queue
        self._lock = threading.Lock()
        self._log_full = LogEvery(log, log_interval_s)
        self._lockfile = self._take_lock()
        try:
            self._db = self._open()
            self.last_seq = int(self._db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
            self.depth = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        except sqlite3.Error as exc:
            self._release_lock()
            raise QueueError(f"queue.path {self.path}: not a usable fer-edge queue ({exc}); "
                             f"move the file away or set queue.path to a new file") from None

    @classmethod
    def from_config(cls, cfg: QueueConfig) -> "EventQueue":
        """Open the queue a config section names."""
        return cls(Path(cfg.path) if cfg.path else default_queue_path(), cfg.max_events, cfg.log_interval_s)

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
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")    # WAL+NORMAL: durable against process crashes, fast commits
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _FORMAT_VERSION):
            raise sqlite3.DatabaseError(f"queue format {version}, this fer-edge reads {_FORMAT_VERSION}")
        db.executescript(f"""
            BEGIN;
            CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,
                                               payload TEXT NOT NULL, created REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT OR IGNORE INTO meta(key, value) VALUES ('seq', 0);
            PRAGMA user_version = {_FORMAT_VERSION};
            COMMIT;""")
        return db

    def append(self, events: Iterable[Event], device: str) -> list[Event]:
        """Stamp events with device, seq and id and commit them in one transaction; return the stamped events."""
        stamped: list[Event] = []
        now = time.time()
        with self._lock:
            seq = self.last_seq
            rows = []
            for ev in events:
                seq += 1
                ev = ev.stamped(device, seq, new_event_id())
                stamped.append(ev)
                rows.append((seq, ev.id, ev.to_json(), now))
            if not rows:
                return stamped
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO events(seq, id, payload, created) VALUES (?, ?, ?, ?)", rows)
                db.execute("UPDATE meta SET value=? WHERE key='seq'", (seq,))   # same transaction: no seq reused
                excess = self.depth + len(rows) - self.max_events
                if excess > 0:
                    db.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)",
                               (excess,))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise QueueError(f"queue {self.path}: cannot store events ({exc}); disk full or file damaged?") from None
            self.last_seq = seq
            self.depth += len(rows)
            if excess > 0:
                self.depth -= excess
                self.dropped += excess
        if excess > 0:
            self._log_full("event queue full (%d events, queue.max_events): dropped the oldest; %d dropped since start",
                           self.max_events, self.dropped)
        return stamped

    def peek(self, after_seq: int = 0, limit: int = 100) -> list[QueuedEvent]:
        """The oldest queued events with seq > ``after_seq``, in order."""
        with self._lock:
            rows = self._db.execute("SELECT seq, id, payload, created FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after_seq, limit)).fetchall()
        return [QueuedEvent(*r) for r in rows]

    def remove(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged events; return how many were still queued."""
        if not seqs:
            return 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            cur = db.executemany("DELETE FROM events WHERE seq=?", [(s,) for s in seqs])
            db.execute("COMMIT")
            self.depth -= cur.rowcount
            return cur.rowcount

    def oldest_age_s(self) -> float | None:
        """Seconds the oldest queued event has waited, None when the queue is empty."""
        with self._lock:
            row = self._db.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else max(0.0, time.time() - row[0])

    def close(self) -> None:
        """Close the file (a checkpoint folds the WAL back) and release the process lock."""
        with self._lock:
            if self._db is not None:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass
                self._db.close()
                self._db = None
            self._release_lock()
