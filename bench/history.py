"""The dashboard's history store under a simulated fleet: insert rate, size on disk and query times, in one run.

    nice -n 10 python bench/history.py                      # 200 devices, 30 days, a summary a minute each
    nice -n 10 python bench/history.py --devices 20 --days 3 --stores sqlite

For each store (SQLite in a temporary file; PostgreSQL on a throw-away server from Debian's `postgresql`,
tests/helpers/postgres.py) it feeds a month of one-camera summaries of ``--devices`` devices (every
``--interval`` s, the default `events.summary_interval_s`, with a day-and-night pattern) through the same
:class:`edge.ops.dashboard.store.Store` the dashboard uses, flushing every ``--flush-every`` simulated seconds
(the dashboard flushes every 2 s of wall time; a flush here carries the same kind of rows, more of them),
then times the views the page asks for: the whole fleet over 30 days, one group (a tenth of the devices)
over 30 days, one camera over 30 days and over 7 days. Each query is run 3 times; the median is printed.
A live fleet of N devices needs N / interval summaries per second: the "headroom" column divides the
measured rate by that.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.postgres import PostgresServer, postgres_problem  # noqa: E402
from edge.ops.dashboard import history  # noqa: E402
from edge.ops.dashboard.store import DAY, Store  # noqa: E402

# a small pool of emotion mixes (face-seconds per minute-long summary), cycled: cheap to generate, varied enough
POOL = [{"happiness": 20.0 + k, "neutral": 30.0 - k, "surprise": 2.0, "sadness": 1.0 + k % 3, "anger": k % 2}
        for k in range(17)]


def feed(store: Store, devices: int, days: float, interval: float, flush_every: float, now: float) -> tuple[int, float]:
    """Add the simulated summaries; (summaries, seconds taken, flushes included)."""
    names = [f"dev-{k:04d}" for k in range(devices)]
    for k, name in enumerate(names):
        store.set_device(name, f"Device {k}", f"site-{k % 7}", [f"group-{k % 10}"], now)
    t = now - days * DAY
    n = 0
    next_flush = t + flush_every
    started = time.perf_counter()
    while t < now:
        hour = (t % DAY) / 3600
        busy = 2 if 8 <= hour < 20 else 0
        for k, name in enumerate(names):
            seconds = POOL[(k + n) % len(POOL)] if busy else {}
            store.add_summary(name, "cam0", t, interval, busy * 2, seconds)
        n += devices
        t += interval
        if t >= next_flush:
            store.flush()
            next_flush += flush_every
    store.flush()
    return n, time.perf_counter() - started


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_store(kind: str, url: str, args: argparse.Namespace, now: float) -> dict:
    store = Store(url, hourly_days=35, retention_days=730)
    n, took = feed(store, args.devices, args.days, args.interval, args.flush_every, now)
    rows = store.query("SELECT COUNT(*) FROM fer_buckets")[0][0]
    if not store.postgres:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")      # the size of the file alone, WAL folded in
    size = store.size_bytes()
    one = f"dev-{min(42, args.devices - 1):04d}"
    queries = {
        "fleet 30 d": lambda: history.view(store, history.Scope(), "30d", now=now),
        "group 30 d": lambda: history.view(store, history.Scope(group="group-3"), "30d", now=now),
        "camera 30 d": lambda: history.view(store, history.Scope(one, "cam0"), "30d", now=now),
        "camera 7 d": lambda: history.view(store, history.Scope(one, "cam0"), "7d", now=now),
    }
    check = queries["camera 30 d"]()
    assert check["totals"]["faces_in_view"], "the simulated month is not in the store"
    result = {"store": kind, "summaries": n, "seconds": took, "rate": n / took, "rows": rows, "size": size,
              **{name: timed(q) for name, q in queries.items()}}
    store.close()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=60.0, help="seconds between a device's summaries (default 60)")
    p.add_argument("--flush-every", type=float, default=300.0, help="simulated seconds between flushes (default 300)")
    p.add_argument("--stores", default="sqlite,postgresql")
    args = p.parse_args(argv)
    now = time.time()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            if kind == "sqlite":
                results.append(run_store(kind, f"{tmp}/history.sqlite", args, now))
            elif kind == "postgresql":
                if (why := postgres_problem()):
                    print(f"postgresql: skipped ({why})")
                    continue
                with PostgresServer() as pg:
                    results.append(run_store(kind, pg.url, args, now))
            else:
                p.error(f"--stores: sqlite or postgresql, not {kind}")
    need = args.devices / args.interval
    print(f"{args.devices} devices x {args.days:g} days, a summary every {args.interval:g} s each "
          f"(a live fleet sends {need:.1f} summaries/s); flush every {args.flush_every:g} simulated s")
    head = ("store", "summaries", "insert s", "summaries/s", "headroom", "rows", "size MB", "fleet 30 d ms",
            "group 30 d ms", "camera 30 d ms", "camera 7 d ms")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        print(f"| {r['store']} | {r['summaries']:,} | {r['seconds']:.1f} | {r['rate']:,.0f} | {r['rate'] / need:,.0f}x | "
              f"{r['rows']:,} | {r['size'] / 1e6:.1f} | {r['fleet 30 d'] * 1000:.0f} | {r['group 30 d'] * 1000:.0f} | "
              f"{r['camera 30 d'] * 1000:.0f} | {r['camera 7 d'] * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
