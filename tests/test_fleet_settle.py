"""`fer-edge fleet` reads the fleet's retained state before it acts: live stats must not keep it waiting.

A fleet's devices publish stats every few seconds (not retained). The operator waits for the retained
snapshot to stop arriving; live messages used to count too, so with a busy fleet every command waited
its full cap (15 s) before it listed or pushed anything.
"""
from __future__ import annotations

import json
import threading
import time

import pytest

from tests.helpers.broker import Broker, mosquitto_available
from edge.ops.fleet.operator import Broker as FleetBroker
from edge.ops.fleet.operator import Connection, Fleet

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto")


def test_settle_returns_once_the_retained_snapshot_is_in_while_live_stats_keep_coming():
    with Broker() as broker:
        pub = broker.client()
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        for dev in ("d1", "d2"):
            state = {"device": dev, "groups": ["shop"], "version": 1, "ts": "2026-12-01T00:00:00Z"}
            pub.publish(f"fer-edge/{dev}/config/state", json.dumps(state), qos=1, retain=True).wait_for_publish(5)
        stop = threading.Event()

        def stats() -> None:          # a busy fleet: a stats message every 0.1 s, never a quiet 0.5 s
            while not stop.is_set():
                pub.publish("fer-edge/d1/stats", json.dumps({"device": "d1", "fps": 5.0}), qos=0)
                time.sleep(0.1)

        thread = threading.Thread(target=stats, daemon=True)
        thread.start()
        try:
            with Connection(FleetBroker(port=broker.port)) as conn:
                fleet = Fleet(conn)
                start = time.monotonic()
                fleet.settle(longest=30.0)
                waited = time.monotonic() - start
                assert fleet.members("shop") == ["d1", "d2"]
                assert waited < 10.0, f"settle waited {waited:.1f} s: live stats were taken for the retained snapshot"
        finally:
            stop.set()
            thread.join(2)
            pub.loop_stop()
            pub.disconnect()
