"""The durable queue: ordered, bounded, sequence numbers that survive restarts and SIGKILL."""
from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.publish_demo import demo_event
from edge.publish.queue import EventQueue, QueueError, default_queue_path
from edge.config.queue import QueueConfig

ROOT = Path(__file__).resolve().parents[1]


def test_events_come_back_in_order_with_device_seq_and_id(tmp_path):
    q = EventQueue(tmp_path / "q.db")
    stamped = q.append([demo_event(k) for k in range(5)], "dev")
    rows = q.peek(0, 10)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5] == [e.seq for e in stamped]
    assert [json.loads(r.payload)["id"] for r in rows] == [e.id for e in stamped] == [r.id for r in rows]
    assert all(json.loads(r.payload)["device"] == "dev" for r in rows)
    assert [r.seq for r in q.peek(3, 10)] == [4, 5]
    assert q.remove([1, 3]) == 2 and q.depth == 3
    assert [r.seq for r in q.peek(0, 10)] == [2, 4, 5]
    q.close()


def test_sequence_continues_after_reopen_even_when_emptied(tmp_path):
    q = EventQueue(tmp_path / "q.db")
    q.append([demo_event(0), demo_event(1)], "dev")
    q.remove([1, 2])
    q.close()
    q = EventQueue(tmp_path / "q.db")
    assert q.depth == 0 and q.last_seq == 2
    assert q.append([demo_event(2)], "dev")[0].seq == 3
    q.close()


def test_full_queue_drops_oldest_counts_and_logs_once_per_interval(tmp_path, caplog):
    q = EventQueue(tmp_path / "q.db", max_events=10, log_interval_s=3600)
    with caplog.at_level(logging.WARNING, logger="edge.publish.queue"):
        for k in range(25):
            q.append([demo_event(k)], "dev")
    assert q.depth == 10 and q.dropped == 15
    assert [r.seq for r in q.peek(0, 100)] == list(range(16, 26))       # the newest ten, in order
    lines = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(lines) == 1 and "max_events" in lines[0].getMessage()
    q.close()


@pytest.mark.slow
def test_one_process_per_queue_file(tmp_path):
    q = EventQueue(tmp_path / "q.db")
    code = (f"from edge.publish.queue import EventQueue, QueueError\n"
            f"try:\n    EventQueue({str(tmp_path / 'q.db')!r})\nexcept QueueError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    assert "in use by another fer-edge process" in out
    q.close()
    EventQueue(tmp_path / "q.db").close()      # free again once closed


def test_unwritable_or_newer_files_give_one_clear_error_and_corrupt_ones_are_moved_aside(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(QueueError, match="cannot create it.*set queue.path"):
        EventQueue(blocker / "sub" / "q.db")
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(QueueError, match="queue format 99.*use the fer-edge version that wrote it"):
        EventQueue(newer)
    EventQueue(tmp_path / "fresh.db").close()    # the failed open released its lock file
    # Not a queue at all (issue 25.1): kept under a findable name, a fresh queue takes its place.
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    q = EventQueue(bad)
    assert q.recovery is not None and q.recovery.kind == "damaged" and q.depth == 0
    assert [p.read_bytes() for p in tmp_path.glob("bad.db.damaged-*")] == [b"this is not sqlite" * 100]
    q.close()


@pytest.mark.slow
def test_commits_survive_sigkill(tmp_path):
    """Rows committed by a process killed with SIGKILL are there when the next process opens the file."""
    path = tmp_path / "q.db"
    code = (f"import os, signal\nfrom edge.publish.queue import EventQueue\n"
            "from tests.helpers.publish_demo import demo_event\n"
            f"q = EventQueue({str(path)!r})\nfor k in range(300): q.append([demo_event(k)], 'dev')\n"
            f"q.remove([1, 2, 3])\nos.kill(os.getpid(), signal.SIGKILL)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    assert r.returncode == -signal.SIGKILL
    q = EventQueue(path)
    assert q.last_seq == 300 and q.depth == 297 and q.peek(0, 1)[0].seq == 4
    q.close()


def test_default_path_follows_systemd_state_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    assert default_queue_path() == tmp_path / "queue.db"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_queue_path() == tmp_path / "xdg" / "fer-edge" / "queue.db"
    q = EventQueue.from_config(QueueConfig())
    assert q.path == tmp_path / "xdg" / "fer-edge" / "queue.db" and os.path.exists(q.path)
    q.close()
