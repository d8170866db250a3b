"""The broker goes away for 10 s in the middle of a run of 1,400 events: every event arrives, in order."""
from __future__ import annotations

import pytest

import threading
import time

from conftest_mqtt import (assert_complete_and_ordered, broker, count_events, event_payloads,  # noqa: F401
                           needs_mosquitto, open_sink, wait_until)

from tests.helpers.publish_demo import demo_event

pytestmark = needs_mosquitto

N, RATE = 1400, 100.0          # 14 s of events at 100/s; the broker is down from t=2 s to t=12 s


@pytest.mark.slow
def test_broker_outage_of_ten_seconds_loses_nothing(broker, tmp_path):
    sub = broker.subscribe_collect("fer-edge/dev1/events")     # persistent session: it misses nothing either
    sink = open_sink(broker, tmp_path / "q.db", reconnect_min_s=0.2, reconnect_max_s=0.5)
    slowest = [0.0]

    def produce() -> None:
        t0 = time.monotonic()
        for k in range(N):
            t = time.monotonic()
            sink.publish(demo_event(k))
            slowest[0] = max(slowest[0], time.monotonic() - t)
            time.sleep(max(0.0, t0 + (k + 1) / RATE - time.monotonic()))

    producer = threading.Thread(target=produce)
    producer.start()
    assert sub.wait_for(count_events(n=150), 10), "nothing flowed before the outage"
    broker.stop()
    during_stop = len(event_payloads(sub))
    assert wait_until(lambda: not sink.connected, 5)
    time.sleep(10.0)
    queued = sink.queue.depth
    broker.start()
    producer.join(30)
    assert sub.wait_for(count_events(n=N), 30), f"{len({p['seq'] for p in event_payloads(sub)})} of {N} arrived"
    dupes = assert_complete_and_ordered(event_payloads(sub), N)
    assert wait_until(lambda: sink.queue.depth == 0)
    stats = sink.stats()
    sink.close()
    print(f"\ndelivered before stop: {during_stop}; queued during the outage: {queued}; duplicates: {dupes}; "
          f"reconnects: {stats['mqtt']['reconnects']}; slowest publish(): {slowest[0] * 1000:.1f} ms")
    assert queued >= 800, "the outage did not happen in the middle of the run"
    assert stats["mqtt"]["reconnects"] >= 1 and stats["queue"]["dropped"] == 0
