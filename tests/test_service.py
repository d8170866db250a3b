"""`fer-edge run` as a process: clean stop on SIGTERM with the queue on disk, and start-up with a bad config."""
from __future__ import annotations

import pytest

import json
import sqlite3
import time
from pathlib import Path

from conftest import require_shared  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402
from tests.helpers.broker import free_port  # noqa: E402

from edge.config import load_file  # noqa: E402
from edge.control.storage import backup_path  # noqa: E402


def _config(tmp_path: Path, **extra) -> dict:
    return {"device": {"id": "svc1"},
            "source": {"uri": str(require_shared("video", "single_face.mp4")), "loop": True, "pace": True},
            "detector": {"type": "haar"},
            # a broker that is down: events can only go to the queue file
            "mqtt": {"host": "127.0.0.1", "port": free_port(), "reconnect_max_s": 1.0},
            "queue": {"path": str(tmp_path / "queue.db")},
            "stats": {"interval_s": 1.0}, **extra}


@pytest.mark.slow
def test_sigterm_stops_capture_flushes_the_queue_and_exits_quickly(tmp_path):
    svc = ServiceProcess(write_config(tmp_path / "config.yaml", _config(tmp_path)))
    try:
        svc.wait_ready()
        time.sleep(3.0)                       # the face appears at 0.4 s of the video
        assert svc.alive(), svc.stderr()[-2000:]
        code, took = svc.stop()
    finally:
        svc.close()
    assert code == 0, svc.stderr()[-2000:]
    assert took < 5.0, f"took {took:.1f} s to stop"
    assert svc.notify.times("STOPPING")
    with sqlite3.connect(tmp_path / "queue.db") as db:
        payloads = [json.loads(p) for (p,) in db.execute("SELECT payload FROM events ORDER BY seq")]
    kinds = [p["type"] for p in payloads]
    # a video file plays in media time, but its events carry the real date and time
    assert all(abs(p["epoch"] - time.time()) < 600 for p in payloads), [p["ts"] for p in payloads]
    # face_appeared while running; face_left and the last summary emitted by the clean stop
    assert kinds[0] == "face_appeared" and "face_left" in kinds and kinds[-1] == "summary", kinds
    print(f"\nSIGTERM: exited in {took:.2f} s; {len(kinds)} events on disk for the broker: {kinds}")


@pytest.mark.slow
def test_an_invalid_config_at_start_falls_back_to_the_previous_one(tmp_path):
    path = write_config(tmp_path / "config.yaml", _config(tmp_path))
    good = path.read_text()
    backup_path(path, 1).write_text(good)
    path.write_text(good + "stats:\n  interval_s: soon\n")          # a duplicate key and a bad value
    svc = ServiceProcess(path)
    try:
        ready = svc.wait_ready()
        assert svc.alive()
        err = svc.stderr()
        assert "config.yaml is invalid" in err and "running the previous config" in err and "config.yaml.1 (version" in err
        assert ready.fields["STATUS"].endswith(load_file(backup_path(path, 1)).version[:12])
    finally:
        svc.stop()
        svc.close()


def test_no_usable_config_exits_2_with_the_reason(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("stats:\n  interval_s: soon\n")
    svc = ServiceProcess(path)
    try:
        code = svc.proc.wait(30)
    finally:
        svc.close()
    assert code == 2
    assert f"{path}:2: stats.interval_s: Input should be a valid number" in svc.stderr()
    assert any(s.startswith("config error:") for s in svc.notify.statuses())


@pytest.mark.slow
def test_mjpeg_preview_serves_annotated_frames(tmp_path):
    import re
    import urllib.error
    import urllib.request

    cfg = _config(tmp_path, preview={"mjpeg": {"enabled": True, "port": 0}})
    svc = ServiceProcess(write_config(tmp_path / "config.yaml", cfg))
    try:
        svc.wait_ready()
        match = re.search(r"MJPEG preview at (http://127\.0\.0\.1:\d+/)", svc.stderr())
        assert match, svc.stderr()[-2000:]
        body = b""
        for _ in range(20):              # 503 until the first frame went through the pipeline
            try:
                with urllib.request.urlopen(match.group(1) + "snapshot.jpg", timeout=10) as resp:
                    body = resp.read()
                break
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                time.sleep(0.5)
        assert body[:2] == b"\xff\xd8", body[:40]     # a JPEG
    finally:
        svc.stop()
        svc.close()
