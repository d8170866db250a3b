"""The publisher is killed with SIGKILL mid-run and started again: every event arrives at least once,
re-sent events carry their original id, and no event is queued twice."""
from __future__ import annotations

import pytest

import json
import signal

from conftest_mqtt import (assert_complete_and_ordered, broker, count_events, demo_config,  # noqa: F401
                           event_payloads, needs_mosquitto, start_demo)

pytestmark = needs_mosquitto

N = 3000


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_delivers_everything(broker, tmp_path):
    sub = broker.subscribe_collect("fer-edge/dev1/events")
    cfg = demo_config(broker, tmp_path)
    first = start_demo(cfg, "--count", str(N), "--rate", "1500")
    second = None
    try:
        assert sub.wait_for(count_events(n=500), 20), first.stderr.read() if first.poll() is not None else "slow"
        first.send_signal(signal.SIGKILL)
        assert first.wait(5) == -signal.SIGKILL
        before = {p["seq"] for p in event_payloads(sub)}
        assert len(before) < N, "the run finished before the kill"

        second = start_demo(cfg, "--count", str(N))
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err[-2000:]
        report = json.loads(out.strip().splitlines()[-1])
        assert report["drained"] and report["left_in_queue"] == 0
        assert report["resumed_at"] >= len(before)        # it continued the stream, it did not start it again
        assert sub.wait_for(count_events(n=N), 20)
        dupes = assert_complete_and_ordered(event_payloads(sub), N)
        print(f"\nkilled after {len(before)} delivered; second run resumed at event {report['resumed_at']}; "
              f"{dupes} re-sent duplicate(s), all with their original id")
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
