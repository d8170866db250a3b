"""Issue 25.1, 25.2 and 25.7 (queue): a damaged or shortened queue file, and a queue that cannot be written.

Real processes filling a real queue file while the real broker is down, SIGKILL, then the file is
damaged the way a disk or a person damages it (cut in half, 8 KiB of garbage in the middle, the
``-wal`` emptied, both files emptied) and the publisher starts again against a real mosquitto:
it must run, move a damaged file aside under a findable name, salvage what can be read, say so,
and continue seq above every value used before, so that whatever was lost shows as a gap.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest_mqtt import ROOT, broker, demo_config, event_payloads, needs_mosquitto, start_demo  # noqa: F401

N = 1500


def _counter(db: Path) -> int:
    con = None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        return int(con.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
    except sqlite3.Error:
        return -1
    finally:
        if con is not None:
            con.close()     # an open reader would keep its lock on the -shm


def fill_then_kill(broker, tmp_path: Path) -> Path:
    """Queue N events with the broker down, SIGKILL the publisher; return the config file."""
    cfg = demo_config(broker, tmp_path)
    broker.stop()
    proc = start_demo(cfg, "--count", str(N), "--hold")
    deadline = time.monotonic() + 60
    while _counter(tmp_path / "q.db") < N:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    broker.start()
    return cfg


def damage(db: Path, how: str) -> None:
    wal = db.with_name(db.name + "-wal")
    if how == "cut in half":
        os.truncate(db, db.stat().st_size // 2)
    elif how == "garbage in the middle":
        with open(db, "r+b") as fh:
            fh.seek(db.stat().st_size // 2)
            fh.write(os.urandom(8192))
    elif how == "wal emptied":
        os.truncate(wal, 0)
    elif how == "both emptied":
        os.truncate(wal, 0)
        os.truncate(db, 0)


def restart_and_send(cfg: Path, extra: int = 200) -> tuple[dict, str]:
    proc = start_demo(cfg, "--count", str(N + extra))
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


def check_seqs(sub, extra: int = 200) -> dict[int, str]:
    """No seq carries two ids; the new events are all above N (every seq used before)."""
    assert sub.wait_for(lambda m: len({x.json()["seq"] for x in m}) and
                        max(x.json()["seq"] for x in m) >= N + extra, 30)
    by_seq: dict[int, str] = {}
    for p in event_payloads(sub):
        assert by_seq.setdefault(p["seq"], p["id"]) == p["id"], f"seq {p['seq']} used twice"
    new = [s for s in by_seq if s > N]
    assert sorted(new) == list(range(N + 1, N + extra + 1)), "the events after the restart must continue above N"
    return by_seq


@needs_mosquitto
@pytest.mark.parametrize("how", ["cut in half", "garbage in the middle"])
def test_damaged_queue_is_moved_aside_salvaged_and_seq_continues(broker, tmp_path, how):
    sub = broker.subscribe_collect("fer-edge/dev1/events")
    cfg = fill_then_kill(broker, tmp_path)
    damage(tmp_path / "q.db", how)
    report, err = restart_and_send(cfg)
    aside = sorted(tmp_path.glob("q.db.damaged-*"))
    assert aside and aside[0].name.startswith("q.db.damaged-2"), sorted(p.name for p in tmp_path.iterdir())
    line = next(ln for ln in err.splitlines() if "was damaged" in ln)
    salvaged = int(line.split(" events salvaged")[0].rsplit(" ", 1)[1])
    lost = int(line.split(" lost;")[0].rsplit(" ", 1)[1])
    assert aside[0].name in line and f"seq continues at {N + 1}" in line
    assert 0 < salvaged < N and salvaged + lost == N, line
    assert report["resumed_at"] == N and report["drained"]
    by_seq = check_seqs(sub)
    old = [s for s in by_seq if s <= N]
    assert len(old) == salvaged, "every salvaged event is sent"
    print(f"\n{how}: {salvaged} of {N} salvaged, {lost} lost; moved to {aside[0].name}")


@needs_mosquitto
@pytest.mark.parametrize("how", ["wal emptied", "both emptied"])
def test_queue_that_came_back_shorter_is_reported_and_seq_never_repeats(broker, tmp_path, how):
    sub = broker.subscribe_collect("fer-edge/dev1/events")
    cfg = fill_then_kill(broker, tmp_path)
    damage(tmp_path / "q.db", how)
    _report, err = restart_and_send(cfg)
    line = next((ln for ln in err.splitlines() if "came back shorter" in ln), None)
    assert line is not None, err[-3000:]
    assert f"instead of {N}" in line and f"seq continues at {N + 1}" in line
    by_seq = check_seqs(sub)
    old = len([s for s in by_seq if s <= N])
    assert f"lost with the file's last writes: {N - old} events" in line, line
    print(f"\n{how}: {old} of {N} still queued, {N - old} lost and reported")


def test_the_wal_stays_small_under_a_file_size_limit(tmp_path):
    """25.7: one-event commits under a 1.5 MiB file size limit: all 1000 stored (SQLite's default WAL stops at ~150)."""
    script = (
        "import json, resource, sys\n"
        "from edge.events import Event\n"
        "from edge.publish.queue import EventQueue\n"
        "q = EventQueue(sys.argv[1], log_interval_s=3600)\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 19, hard))\n"
        "for k in range(1000):\n"
        "    q.append([Event('summary', 'cam0', 1.7e9 + k)], 'd')\n"
        "print(json.dumps({'depth': q.depth, 'held': q.held, 'errors': q.store_errors}))\n"
        "q.close()\n")
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path / "q.db")], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.splitlines()[-1]) == {"depth": 1000, "held": 0, "errors": 0}, res.stderr[-2000:]


def test_events_cost_the_same_however_many_wait_in_memory(tmp_path):
    """25.7: while the file refuses writes, appending does not re-offer the whole backlog to SQLite each time.

    Counted, not timed: SQLite's own trace of the INSERT statements it runs (one per row offered).
    """
    script = (
        "import json, resource, sys\n"
        "from edge.events import Event\n"
        "from edge.publish.queue import EventQueue\n"
        "q = EventQueue(sys.argv[1], log_interval_s=3600, max_held=100000)\n"
        "q.append([Event('summary', 'cam0', 1.7e9)], 'd')\n"
        "rows = []\n"
        "q._db.set_trace_callback(lambda sql: rows.append(sql) if sql.startswith('INSERT INTO events') else None)\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))\n"
        "offered = []\n"
        "for k in range(2000):\n"
        "    before = len(rows)\n"
        "    q.append([Event('summary', 'cam0', 1.7e9 + k)], 'd')\n"
        "    offered.append(len(rows) - before)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))\n"
        "ok = q.retry()\n"
        "print(json.dumps({'held_then': 2000, 'offered_last_100': sum(offered[-100:]), 'ok': ok,\n"
        "                  'depth': q.depth, 'lost': q.lost}))\n"
        "q.close()\n")
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path / "q.db")], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.splitlines()[-1])
    assert out["offered_last_100"] <= 100, f"each event re-offered the backlog: {out}"
    assert out["ok"] and out["depth"] == 2001 and out["lost"] == 0, out
    _ = resource   # the limit is set inside the child: the test process keeps its own


FILL = ("import os, signal, sys\n"
        "from tests.helpers.publish_demo import demo_event\n"
        "from edge.publish.queue import EventQueue\n"
        "q = EventQueue(sys.argv[1])\n"
        "for k in range(int(sys.argv[2])):\n"
        "    q.append([demo_event(k)], sys.argv[3])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")


@pytest.mark.slow
@needs_mosquitto
def test_service_starts_on_a_damaged_queue_and_says_so_in_log_stats_and_status(broker, tmp_path):
    """25.1 with `fer-edge run`: it runs, salvages, reports in the log, in stats and in systemd's STATUS."""
    from conftest import require_shared
    from conftest_service import write_config
    from test_queue_store_failure import Service
    video = require_shared("video", "single_face.mp4")
    queue = tmp_path / "queue.db"
    fill = subprocess.run([sys.executable, "-c", FILL, str(queue), str(N), "qd1"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert fill.returncode == -signal.SIGKILL
    damage(queue, "garbage in the middle")
    events = broker.subscribe_collect("fer-edge/qd1/events")
    stats = broker.subscribe_collect("fer-edge/qd1/stats")
    config = write_config(tmp_path / "config.yaml", {
        "device": {"id": "qd1"}, "source": {"uri": str(video), "loop": True, "pace": True},
        "detector": {"type": "haar"}, "events": {"summary_interval_s": 1.0}, "mqtt": broker.mqtt_config(),
        "queue": {"path": str(queue)}, "stats": {"interval_s": 0.5}})
    svc = Service(config)
    try:
        assert svc.notify.wait_for(lambda n: n.fields.get("READY") == "1", 60), "".join(svc.lines[-30:])
        assert stats.wait_for(lambda m: any(p.json()["queue"].get("recovery") for p in m), 30), stats.json()[-1:]
        recovery = next(p.json()["queue"]["recovery"] for p in stats.messages if p.json()["queue"].get("recovery"))
        status = svc.notify.wait_for(lambda n: "queue was damaged" in n.fields.get("STATUS", ""), 10)
        assert status is not None, svc.notify.statuses()[-3:]
        assert events.wait_for(lambda m: any(x.json()["seq"] > N for x in m), 60)
    finally:
        code = svc.stop()
    log = "".join(svc.lines)
    assert code == 0 and "Traceback" not in log, log[-3000:]
    assert recovery["kind"] == "damaged" and recovery["seq_from"] == N + 1
    assert 0 < recovery["salvaged"] < N and recovery["salvaged"] + recovery["lost"] == N, recovery
    assert Path(recovery["moved_to"]).exists() and Path(recovery["moved_to"]).name in status.fields["STATUS"]
    assert f"{recovery['salvaged']} events salvaged" in log
    by_seq: dict[int, str] = {}
    for p in events.json():
        assert by_seq.setdefault(p["seq"], p["id"]) == p["id"], f"seq {p['seq']} used twice"
    assert min(s for s in by_seq if s > N) == N + 1
    print(f"\n`fer-edge run` on a damaged queue: {recovery}; STATUS {status.fields['STATUS']!r}")


def test_after_a_machine_stop_seq_continues_above_the_reserved_mark(tmp_path):
    """25.2: a power cut (another boot id in the .seq file, no clean close): seq jumps above every seq reserved."""
    from edge.publish.seqmark import BLOCK, Mark
    queue = tmp_path / "q.db"
    fill = subprocess.run([sys.executable, "-c", FILL, str(queue), "1500", "d"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert fill.returncode == -signal.SIGKILL
    mark_file = queue.with_name("q.db.seq")
    raw = mark_file.read_bytes()
    newest = max((m for m in (Mark.decode(raw[i:i + 64]) for i in (0, 64)) if m), key=lambda m: m.counter)
    assert not newest.clean and newest.last == 1500 and newest.reserved >= 1500
    rebooted = Mark(newest.counter + 1, newest.reserved, newest.last, newest.depth, False, "another-boot")
    mark_file.write_bytes(rebooted.encode() + rebooted.encode())       # as if written before the power cut
    script = ("import json, sys\nfrom tests.helpers.publish_demo import demo_event\n"
              "from edge.publish.queue import EventQueue\n"
              "q = EventQueue(sys.argv[1])\nev = q.append([demo_event(0)], 'd')[0]\n"
              "print(json.dumps({'seq': ev.seq, 'kind': q.recovery.kind if q.recovery else None}))\nq.close()\n")
    res = subprocess.run([sys.executable, "-c", script, str(queue)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert out == {"seq": newest.reserved + 1, "kind": "unclean machine stop"}, (out, res.stderr)
    assert newest.reserved <= 1500 + BLOCK and "not closed before the machine stopped" in res.stderr
