"""Issue 12.2: the queue file cannot be written (disk full, `ulimit -f`, I/O error) - counted, visible, never silent.

Real files with a real file size limit (RLIMIT_FSIZE: every write past it fails with EFBIG, as
`ulimit -f` does), a real mosquitto and the real service process. While the file refuses writes,
events keep their seq and wait in a bounded memory buffer (`queue.max_held`); what overflows it is
lost, counted, and shows as a seq gap; once writes succeed again the held events are stored and sent.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, require_shared  # noqa: E402
from conftest_service import NotifyListener, write_config  # noqa: E402

from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402

needs_mosquitto = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto")

QUEUE_SCRIPT = r"""
import json, resource, sys
from edge.events import Event
from edge.publish.queue import EventQueue

q = EventQueue(sys.argv[1], max_events=1000, log_interval_s=3600, max_held=5)
def ev(k): return Event("summary", "cam0", 1.7e9 + k)
q.append([ev(k) for k in range(3)], "d")                      # stored: seq 1-3
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))          # from now on every write extending a file fails
for k in range(8):
    q.append([ev(k)], "d")                                    # seq 4-11: 5 held, the 3 oldest (4-6) pushed out
during = {"last_seq": q.last_seq, "held": q.held, "lost": q.lost, "errors": q.store_errors,
          "last_error": q.last_error, "depth": q.depth, "peek": [e.seq for e in q.peek(0, 100)]}
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))       # the disk has room again
ok = q.retry()
q.remove([1, 2])
after = {"ok": ok, "held": q.held, "last_error": q.last_error, "peek": [e.seq for e in q.peek(0, 100)]}
q.close()
print(json.dumps({"during": during, "after": after}))
"""


@pytest.mark.slow
def test_queue_holds_counts_and_stores_again_under_a_real_file_size_limit(tmp_path):
    res = subprocess.run([sys.executable, "-c", QUEUE_SCRIPT, str(tmp_path / "q.db")], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    during, after = out["during"], out["after"]
    assert during["last_seq"] == 11, "seq must advance while the file refuses the events"
    assert during["held"] == 5 and during["lost"] == 3
    # one failed attempt: later events join the backlog at a constant cost, retry() tries again (issue 25.7)
    assert during["errors"] == 1 and "cannot store events" in during["last_error"]
    assert during["peek"] == [1, 2, 3] and during["depth"] == 3
    assert after == {"ok": True, "held": 0, "last_error": None, "peek": [3, 7, 8, 9, 10, 11]}   # 4-6: the gap
    assert res.stderr.count("cannot store events") == 1, "one log line per interval, not one per attempt"
    # the seq counter in the file went on as well: a restarted process does not reuse 4-11
    reopened = subprocess.run([sys.executable, "-c", "import sys; from edge.publish.queue import EventQueue; "
                               "q = EventQueue(sys.argv[1]); print(q.last_seq, q.depth); q.close()",
                               str(tmp_path / "q.db")], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True, timeout=60)
    assert reopened.stdout.split() == ["11", "6"], reopened.stderr


class Service:
    """`fer-edge run` with stderr on a pipe (a file would hit the same size limit as the queue)."""

    def __init__(self, config: Path) -> None:
        self.notify = NotifyListener()
        env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": self.notify.address}
        self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=REPO,
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stderr.readline, "")),
                                        daemon=True)
        self._reader.start()

    def limit_file_size(self, limit: int) -> None:
        _soft, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))

    def stop(self) -> int:
        self.proc.terminate()
        try:
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        self.notify.close()
        return code


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
@needs_mosquitto
def test_service_shows_a_queue_write_failure_as_counted_loss_and_a_seq_gap(tmp_path):
    video = require_shared("video", "single_face.mp4")
    with Broker() as broker:
        events = broker.subscribe_collect("fer-edge/qf1/events")
        stats = broker.subscribe_collect("fer-edge/qf1/stats")
        config = write_config(tmp_path / "config.yaml", {
            "device": {"id": "qf1"},
            "source": {"uri": str(video), "loop": True, "pace": True},
            "detector": {"type": "haar"},
            "events": {"summary_interval_s": 1.0},
            "mqtt": broker.mqtt_config(),
            "queue": {"path": str(tmp_path / "queue.db"), "max_held": 3, "log_interval_s": 3.0},
            "stats": {"interval_s": 0.5},
        })
        svc = Service(config)
        try:
            assert svc.notify.wait_for(lambda n: n.fields.get("READY") == "1", 60), "".join(svc.lines[-30:])
            assert events.wait_for(2, timeout=30), "no events before the failure"
            svc.limit_file_size(1)                 # like `ulimit -f`: the WAL cannot grow any more

            def failing(m):
                return [p for p in m if p.json().get("queue", {}).get("lost", 0) >= 2]
            assert stats.wait_for(lambda m: bool(failing(m)), timeout=30), stats.json()[-1:]
            bad = failing(stats.messages)[-1].json()
            assert bad["queue"]["store_errors"] >= 1 and bad["queue"]["held"] <= 3
            assert "cannot store events" in bad["queue"]["last_error"]
            frames_then = bad["frames_total"]
            # what systemd shows (`systemctl status`, the watchdog's view of the service)
            assert svc.notify.wait_for(lambda n: "queue" in n.fields.get("STATUS", ""), 10), svc.notify.statuses()
            time.sleep(2.0)
            svc.limit_file_size(resource.RLIM_INFINITY)     # room again

            def recovered(m):
                return [p for p in m if p.json()["frames_total"] > frames_then
                        and p.json()["queue"]["last_error"] is None and p.json()["queue"]["held"] == 0]
            assert stats.wait_for(lambda m: bool(recovered(m)), timeout=30), stats.json()[-1:]
            lost = recovered(stats.messages)[-1].json()["queue"]["lost"]
            last_seq = max(p["seq"] for p in events.json())
            assert events.wait_for(lambda m: max(x.json()["seq"] for x in m) >= last_seq + 2, timeout=20)
        finally:
            code = svc.stop()
        seqs = {p["seq"] for p in events.json()}
        top = max(seqs)
        missing = sorted(set(range(1, top + 1)) - seqs)
        assert missing and len(missing) == lost, f"the lost events must show as a seq gap: {missing} vs lost={lost}"
        assert missing == list(range(missing[0], missing[-1] + 1)), "one gap: the oldest held ones were pushed out"
        log = "".join(svc.lines)
        assert code == 0, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert "cannot store events" in log and "can be written again" in log
