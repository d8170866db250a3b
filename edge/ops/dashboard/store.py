"""The dashboard's history store: every summary and status change, kept across restarts (docs/dashboard.md).

SQLite by default (one file beside the dashboard), PostgreSQL when given a ``postgresql://`` URL; the
same schema and the same SQL for both (only the placeholder differs: ``?`` vs ``%s``).

Summaries are added to **hourly buckets** per camera (``size`` 3600): seconds covered, distinct faces
counted by the summaries, face-seconds in all and per emotion. A summary that spans an hour boundary
is split in proportion. Buckets older than ``hourly_days`` are rolled up into daily buckets (``size``
86400, UTC days) and daily buckets older than ``retention_days`` are deleted, so the store is bounded:
about 24 * hourly_days + retention_days rows per camera.

Writes are buffered: :meth:`Store.add_summary` adds to buckets in memory and :meth:`Store.flush` adds
them to the tables in one transaction (``INSERT .. ON CONFLICT DO UPDATE`` adds to what is there), so a
busy fleet costs one small transaction per flush, not one per message. The dashboard flushes from its
own writer thread (:class:`Recorder`), never from the MQTT thread.
"""
from __future__ import annotations

import logging
import math
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

log = logging.getLogger(__name__)

# emotions with a column of their own (the model's classes, and "unknown": a face not read yet);
# a label a future model adds is counted in other_s, so nothing is lost from the totals
EMOTIONS = ("happiness", "neutral", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown")
HOUR, DAY = 3600, 86400

SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS fer_buckets (
        device TEXT NOT NULL, camera TEXT NOT NULL, size INTEGER NOT NULL, start BIGINT NOT NULL,
        covered_s DOUBLE PRECISION NOT NULL, faces DOUBLE PRECISION NOT NULL, summaries INTEGER NOT NULL,
        face_s DOUBLE PRECISION NOT NULL, {", ".join(f"{e}_s DOUBLE PRECISION NOT NULL" for e in EMOTIONS)},
        other_s DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (device, camera, size, start))""",
    "CREATE INDEX IF NOT EXISTS fer_buckets_time ON fer_buckets (size, start)",
    """CREATE TABLE IF NOT EXISTS fer_status (
        device TEXT NOT NULL, epoch DOUBLE PRECISION NOT NULL, state TEXT NOT NULL,
        PRIMARY KEY (device, epoch, state))""",
    """CREATE TABLE IF NOT EXISTS fer_devices (
        device TEXT PRIMARY KEY, name TEXT NOT NULL, location TEXT NOT NULL, groups TEXT NOT NULL,
        updated DOUBLE PRECISION NOT NULL)""",
]
VALUE_COLUMNS = ("covered_s", "faces", "summaries", "face_s", *(f"{e}_s" for e in EMOTIONS), "other_s")
KEY_COLUMNS = ("device", "camera", "size", "start")
UPSERT = (f"INSERT INTO fer_buckets ({', '.join(KEY_COLUMNS + VALUE_COLUMNS)}) "
          f"VALUES ({', '.join('?' for _ in KEY_COLUMNS + VALUE_COLUMNS)}) "
          f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET "
          + ", ".join(f"{c} = fer_buckets.{c} + excluded.{c}" for c in VALUE_COLUMNS))
ROLLUP = (f"INSERT INTO fer_buckets ({', '.join(KEY_COLUMNS + VALUE_COLUMNS)}) "
          f"SELECT device, camera, {DAY}, start - (start % {DAY}), {', '.join(f'SUM({c})' for c in VALUE_COLUMNS)} "
          f"FROM fer_buckets WHERE size = {HOUR} AND start < ? GROUP BY device, camera, start - (start % {DAY}) "
          f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET "
          + ", ".join(f"{c} = fer_buckets.{c} + excluded.{c}" for c in VALUE_COLUMNS))


@dataclass
class Bucket:
    """The sums of one camera over one bucket (what a row of fer_buckets holds)."""

    covered_s: float = 0.0
    faces: float = 0.0
    summaries: int = 0
    face_s: float = 0.0
    emotions: dict[str, float] = field(default_factory=dict)

    def row(self) -> tuple:
        known = tuple(self.emotions.get(e, 0.0) for e in EMOTIONS)
        other = sum(v for k, v in self.emotions.items() if k not in EMOTIONS)
        return (self.covered_s, self.faces, self.summaries, self.face_s, *known, other)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def shown(url: str) -> str:
    """The store's address for logs and errors: a PostgreSQL URL without its password."""
    if not is_postgres(url):
        return url
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    return f"{scheme}://{creds.split(':', 1)[0] + '@' if at else ''}{host}"


class Store:
    """One history store (SQLite file or PostgreSQL database); not thread-safe: one writer thread uses it.

    Raises ValueError with one line (the store cannot be opened or created: which and why).
    """

    def __init__(self, url: str, hourly_days: float = 35.0, retention_days: float = 730.0) -> None:
        self.url, self.hourly_days, self.retention_days = url, hourly_days, retention_days
        self.postgres = is_postgres(url)
        self.pending: dict[tuple[str, str, int], Bucket] = {}
        self.pending_status: list[tuple[str, float, str]] = []
        self.pending_devices: dict[str, tuple[str, str, str, float]] = {}
        self.conn = self.connect()
        try:
            for statement in SCHEMA:
                self._execute(self.conn, statement)
            self.conn.commit()
        except Exception as exc:                       # noqa: BLE001 - either driver's errors: one line
            raise ValueError(f"history store {shown(url)}: cannot create its tables: {exc}".splitlines()[0]) from None

    # ---- connections ----

    def connect(self) -> Any:
        """A new connection to the store (one per thread: the writer's, and one per query)."""
        if self.postgres:
            try:
                import psycopg
            except ImportError:
                raise ValueError("--store postgresql://... needs the PostgreSQL driver: "
                                 "pip install 'fer-edge[dashboard-pg]' (psycopg)") from None
            try:
                return psycopg.connect(self.url, connect_timeout=10)
            except psycopg.Error as exc:
                raise ValueError(f"history store {shown(self.url)}: {str(exc).strip().splitlines()[0]}") from None
        path = Path(self.url.removeprefix("sqlite://"))
        if not path.parent.is_dir():
            raise ValueError(f"history store {path}: folder {path.parent} does not exist (create it or give --store)")
        try:
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")     # queries read while the writer writes
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        except sqlite3.Error as exc:
            raise ValueError(f"history store {path}: {exc}") from None

    def reconnect(self) -> None:
        """A fresh writer connection after a failure (a restarted PostgreSQL server); quiet if it fails again."""
        try:
            old, self.conn = self.conn, self.connect()
            old.close()
        except Exception:                              # noqa: BLE001 - the next flush says why
            pass

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def _execute(self, conn: Any, text: str, args: Sequence = ()) -> Any:
        cur = conn.cursor()
        cur.execute(self._sql(text), tuple(args))
        return cur

    def query(self, text: str, args: Sequence = ()) -> list[tuple]:
        """Rows of one read-only query on a connection of its own (safe from any thread)."""
        conn = self.connect()
        try:
            rows = self._execute(conn, text, args).fetchall()
            conn.rollback() if self.postgres else None
            return rows
        finally:
            conn.close()

    # ---- writes (buffered) ----

    def add_summary(self, device: str, camera: str, end: float, interval_s: float, faces: float,
                    seconds: dict[str, float]) -> None:
        """Add one summary (it covered ``end - interval_s`` .. ``end``) to its hourly bucket(s)."""
        interval_s = max(float(interval_s), 1e-6)
        start = end - interval_s
        hour = math.floor(start / HOUR) * HOUR
        total = sum(v for v in seconds.values() if v > 0)
        first = True
        while hour < end:
            part = (min(end, hour + HOUR) - max(start, hour)) / interval_s
            bucket = self.pending.get((device, camera, hour))
            if bucket is None:
                bucket = self.pending[(device, camera, hour)] = Bucket()
            bucket.covered_s += part * interval_s
            bucket.faces += part * faces
            bucket.summaries += 1 if first else 0
            bucket.face_s += part * total
            for label, value in seconds.items():
                if value > 0:
                    bucket.emotions[label] = bucket.emotions.get(label, 0.0) + part * value
            first = False
            hour += HOUR

    def add_status(self, device: str, state: str, epoch: float) -> None:
        self.pending_status.append((device, float(epoch), state))

    def set_device(self, device: str, name: str, location: str, groups: Iterable[str], now: float) -> None:
        """Remember a device's name, location and groups (for views per group and location)."""
        self.pending_devices[device] = (name, location, ",".join(groups), now)

    def flush(self) -> int:
        """Write everything buffered in one transaction; the number of bucket rows written."""
        if not (self.pending or self.pending_status or self.pending_devices):
            return 0
        rows = [(d, c, HOUR, s, *b.row()) for (d, c, s), b in self.pending.items()]
        cur = self.conn.cursor()
        try:
            if rows:
                cur.executemany(self._sql(UPSERT), rows)
            if self.pending_status:
                cur.executemany(self._sql("INSERT INTO fer_status (device, epoch, state) VALUES (?, ?, ?) "
                                          "ON CONFLICT (device, epoch, state) DO NOTHING"), self.pending_status)
            if self.pending_devices:
                cur.executemany(self._sql(
                    "INSERT INTO fer_devices (device, name, location, groups, updated) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (device) DO UPDATE SET name = excluded.name, location = excluded.location, "
                    "groups = excluded.groups, updated = excluded.updated"),
                    [(d, *v) for d, v in self.pending_devices.items()])
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        self.pending.clear()
        self.pending_status.clear()
        self.pending_devices.clear()
        return len(rows)

    def roll_up(self, now: float) -> None:
        """Hourly buckets older than hourly_days -> daily ones; daily ones older than retention_days: deleted."""
        cutoff = int(now - self.hourly_days * DAY) // DAY * DAY         # whole UTC days only
        cur = self.conn.cursor()
        try:
            cur.execute(self._sql(ROLLUP.replace("start < ?", f"start < {cutoff}")))
            cur.execute(self._sql("DELETE FROM fer_buckets WHERE size = ? AND start < ?"), (HOUR, cutoff))
            cur.execute(self._sql("DELETE FROM fer_buckets WHERE size = ? AND start < ?"),
                        (DAY, int(now - self.retention_days * DAY)))
            cur.execute(self._sql("DELETE FROM fer_status WHERE epoch < ?"), (now - self.retention_days * DAY,))
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise

    def size_bytes(self) -> int:
        """Bytes on disk: the SQLite file (with its WAL) or the PostgreSQL tables with their indexes."""
        if self.postgres:
            return int(self.query("SELECT pg_total_relation_size('fer_buckets') + pg_total_relation_size('fer_status')"
                                  " + pg_total_relation_size('fer_devices')")[0][0])
        path = Path(self.url.removeprefix("sqlite://"))
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.conn.close()


class Recorder:
    """The writer thread: takes what the MQTT thread hands over (without waiting) and flushes every ``flush_s``.

    A store that fails (disk full, the PostgreSQL server gone) is logged once per minute and retried; the
    buffered buckets stay in memory meanwhile (bounded: one per camera and hour).
    """

    def __init__(self, store: Store, flush_s: float = 2.0, rollup_s: float = 3600.0) -> None:
        self.store, self.flush_s, self.rollup_s = store, flush_s, rollup_s
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.error: str | None = None
        self._stop = threading.Event()
        self._last_error_log = 0.0
        self._thread = threading.Thread(target=self._run, name="dashboard-history", daemon=True)

    def start(self) -> "Recorder":
        self._thread.start()
        return self

    def put(self, kind: str, *args: Any) -> None:
        """Queue one write (``summary``, ``status`` or ``device`` with Store's arguments); never blocks."""
        self.inbox.put((kind, args))

    def _drain(self) -> None:
        while True:
            try:
                kind, args = self.inbox.get_nowait()
            except queue.Empty:
                return
            {"summary": self.store.add_summary, "status": self.store.add_status,
             "device": self.store.set_device}[kind](*args)

    def _run(self) -> None:
        next_rollup = time.monotonic()
        while not self._stop.wait(self.flush_s):
            self._step(next_rollup)
            if time.monotonic() >= next_rollup:
                next_rollup = time.monotonic() + self.rollup_s
        self._step(float("inf"))

    def _step(self, next_rollup: float) -> None:
        self._drain()
        try:
            self.store.flush()
            if time.monotonic() >= next_rollup:
                self.store.roll_up(time.time())
            self.error = None
        except Exception as exc:                       # noqa: BLE001 - keep recording; say why once a minute
            self.error = f"history store {shown(self.store.url)}: {str(exc).strip().splitlines()[0]}"
            if time.monotonic() - self._last_error_log > 60:
                self._last_error_log = time.monotonic()
                log.warning("%s (kept in memory, retrying)", self.error)
            self.store.reconnect()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.store.close()
