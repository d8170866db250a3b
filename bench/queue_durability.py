"""Benchmark: what durability costs the queue, and what a held event costs while the file cannot be written.

    nice -n 10 python bench/queue_durability.py [--events 3000]

Rows (one event per commit, the pipeline's pattern, each into a fresh file in the same folder):
  before issue 25 (baseline)   synchronous=NORMAL, SQLite's default 1000-page WAL, no high-water mark
  shipped                      synchronous=NORMAL, 256-page WAL, seq high-water mark beside the queue
  synchronous=FULL             the shipped settings plus an fsync of the WAL at every commit: what a
                               queue that loses nothing on a power cut would cost
The ratio column compares each row with the baseline measured in the same run. Then, under a real
file size limit (every write fails), the cost of one more event with 10 and with 10,000 events
already held in memory.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.publish_demo import demo_event  # noqa: E402
from edge.publish import queue as queue_module  # noqa: E402
from edge.publish.queue import EventQueue  # noqa: E402
from edge.publish.seqmark import SeqMark  # noqa: E402


def append_rate(path: Path, n: int, synchronous: str = "NORMAL", wal_pages: int | None = None,
                mark: bool = True) -> float:
    """Events per second appended one per commit."""
    saved = (queue_module.WAL_PAGES, SeqMark.committed, SeqMark.reserve)
    if wal_pages is not None:
        queue_module.WAL_PAGES = wal_pages
    if not mark:
        SeqMark.committed = SeqMark.reserve = lambda *a, **k: None     # type: ignore[method-assign]
    try:
        q = EventQueue(path, max_events=10 * n)
        q._db.execute(f"PRAGMA synchronous={synchronous}")
        events = [demo_event(k) for k in range(n)]
        t0 = time.perf_counter()
        for ev in events:
            q.append([ev], "bench")
        elapsed = time.perf_counter() - t0
        q.close()
    finally:
        queue_module.WAL_PAGES, SeqMark.committed, SeqMark.reserve = saved
    return n / elapsed


def held_cost_us(path: Path, held: int, probe: int = 200) -> float:
    """Microseconds per appended event while ``held`` events already wait in memory (writes all fail)."""
    q = EventQueue(path, max_held=held + probe + 10, log_interval_s=3600)
    q.append([demo_event(0)], "bench")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
    try:
        for k in range(held):
            q.append([demo_event(k)], "bench")
        t0 = time.perf_counter()
        for k in range(probe):
            q.append([demo_event(k)], "bench")
        elapsed = time.perf_counter() - t0
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    q.close()
    return elapsed / probe * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=3000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:     # the repository's disk, not a tmpfs
        folder = Path(tmp)
        rows = [("before issue 25 (baseline)", append_rate(folder / "a.db", args.events, wal_pages=1000, mark=False)),
                ("shipped", append_rate(folder / "b.db", args.events)),
                ("synchronous=FULL", append_rate(folder / "c.db", args.events, synchronous="FULL"))]
        base = rows[0][1]
        print(f"{'queue, 1 event per commit':32} {'events/s':>10} {'ratio':>7}")
        for name, rate in rows:
            print(f"{name:32} {rate:10.0f} {rate / base:7.2f}")
        print()
        print(f"{'file not writable, held already':32} {'us/event':>10}")
        for held in (10, 10_000):
            print(f"{held:<32} {held_cost_us(folder / f'h{held}.db', held):10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
