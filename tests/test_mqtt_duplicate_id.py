"""Issue 12.6: two devices configured with the same device id, on one real mosquitto.

With one client id per device id the broker disconnects one whenever the other connects, and
their `seq` streams interleave. Each process must notice the other (log and the retained
`<prefix>/<device>/duplicate` topic), stop the ping-pong, and stamp its events with its own
`instance`, so that (`device`, `instance`, `seq`) - and `id` - stay unique across the two.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import REPO  # noqa: E402

from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402
from edge.publish.duplicate import DuplicateWatch  # noqa: E402

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto")
DEVICE = "twin"
COUNT = 60


def start_demo(broker: Broker, tmp: Path, name: str) -> subprocess.Popen:
    config = tmp / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"device": {"id": DEVICE}, "mqtt": broker.mqtt_config(log_interval_s=2.0),
                                      "queue": {"path": str(tmp / f"{name}.db")}}))
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.publish_demo", "--config", str(config),
                             "--count", str(COUNT), "--rate", "10", "--hold"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_with_one_device_id_are_detected_and_stop_kicking_each_other(tmp_path):
    with Broker() as broker:
        events = broker.subscribe_collect(f"fer-edge/{DEVICE}/events")
        status = broker.subscribe_collect(f"fer-edge/{DEVICE}/status")
        alarm = broker.subscribe_collect(f"fer-edge/{DEVICE}/duplicate")
        procs = [start_demo(broker, tmp_path, "a"), start_demo(broker, tmp_path, "b")]
        try:
            assert alarm.wait_for(1, timeout=30), "no message on the duplicate topic: " + broker.log_text()[-1500:]
            assert events.wait_for(lambda m: len({x.json()["id"] for x in m}) >= 2 * COUNT, timeout=40), \
                f"{len(events.messages)} events; status toggled {len(status.messages)} times"
            time.sleep(1.0)
            settled = len(status.messages)
            time.sleep(5.0)
            toggles = len(status.messages) - settled
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            logs = [p.communicate(timeout=30)[1] for p in procs]
        assert toggles <= 1, f"status still toggles after the duplicate was noticed: {toggles} in 5 s"
        payload = alarm.json()[-1]
        assert payload["device"] == DEVICE and len(set(payload["instances"])) == 2
        assert any("same device id" in log for log in logs), logs[0][-2000:]
        # each went on with a client id of its own (a new paho client: paho's id cannot be changed)
        broker_log = broker.log_text()
        renamed = {line.split(" as ")[1].split()[0] for line in broker_log.splitlines()
                   if "New client connected" in line and f" as fer-edge-{DEVICE}-" in line}
        assert len(renamed) == 2, f"client ids after the duplicate: {renamed}"
        assert not any("Traceback" in log for log in logs)
        got = events.json()
        by_id = {p["id"]: p for p in got}
        instances = Counter(p["instance"] for p in by_id.values())
        assert len(instances) == 2 and set(instances.values()) == {COUNT}, instances
        keys = {(p["device"], p["instance"], p["seq"]) for p in by_id.values()}
        assert len(keys) == 2 * COUNT, "(device, instance, seq) must identify an event across both processes"
        assert len({(p["device"], p["seq"]) for p in by_id.values()}) == COUNT, "device+seq alone collides here"
        for inst in instances:
            assert sorted(p["seq"] for p in by_id.values() if p["instance"] == inst) == list(range(1, COUNT + 1))


@pytest.mark.slow
def test_a_restart_under_the_same_id_is_not_a_duplicate(tmp_path):
    # The killed process's retained status and last will are an earlier run of this device, not a twin.
    with Broker() as broker:
        alarm = broker.subscribe_collect(f"fer-edge/{DEVICE}/duplicate")
        status = broker.subscribe_collect(f"fer-edge/{DEVICE}/status")
        first = start_demo(broker, tmp_path, "a")
        assert status.wait_for(lambda m: any(x.json()["state"] == "online" for x in m), timeout=30)
        first.kill()
        first.communicate(timeout=10)
        second = start_demo(broker, tmp_path, "a")           # same queue file: the same device restarted
        try:
            assert status.wait_for(lambda m: len({x.json().get("instance") for x in m
                                                  if x.json()["state"] == "online"}) == 2, timeout=30)
            time.sleep(3.0)
        finally:
            second.send_signal(signal.SIGTERM)
            log = second.communicate(timeout=30)[1]
        assert alarm.messages == [] and "same device id" not in log, log[-2000:]


def test_the_retained_status_found_on_the_first_connection_never_counts():
    # A Pi without a real-time clock may start with its clock behind the previous run's last status.
    watch = DuplicateWatch(DEVICE, "mine", started_epoch=1000.0)
    later = b'{"state": "offline", "instance": "old", "epoch": 2000.0}'
    assert watch.check(later, retained=True, first_connection=True) is None
    assert watch.check(b'{"state": "offline", "instance": "old", "epoch": 900.0}', retained=True) is None
    assert watch.check(later, retained=True) == ("old", "offline")               # found on a reconnection
    assert watch.check(b'{"state": "online", "instance": "twin", "epoch": 5.0}') == ("twin", "online")   # live
    assert watch.check(b'{"state": "online", "instance": "mine", "epoch": 2000.0}') is None
    assert watch.check(b"not json") is None and sorted(watch.others) == ["old", "twin"]
