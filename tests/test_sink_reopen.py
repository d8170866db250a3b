"""Issue 12.7: reopening the MQTT sink - a bad TLS file rolls back cleanly, a reopen does not flicker, no paho race.

Real mosquitto, real queue files, the real service process (SIGHUP reload of an edited file).
"""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import require_shared  # noqa: E402
from conftest_mqtt import open_sink, wait_until  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402

from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402
from edge.config.mqtt import MqttConfig  # noqa: E402
from edge.config.queue import QueueConfig  # noqa: E402
from edge.publish.queue import EventQueue  # noqa: E402
from edge.publish.sink import build_sink  # noqa: E402

needs_mosquitto = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto")
DEVICE = "ro1"


def test_a_bad_tls_file_leaves_the_queue_free(tmp_path):
    queue = QueueConfig(path=str(tmp_path / "q.db"))
    bad = MqttConfig(host="127.0.0.1", tls={"enabled": True, "ca_file": str(tmp_path / "missing.pem")})
    with pytest.raises(ValueError, match=r"mqtt.tls.ca_file: .*missing.pem not found") as failed:
        build_sink("d", mqtt=bad, queue=queue)
    # `failed` keeps the traceback alive, as the service's rollback does: the queue must not be held by it
    assert failed.value is not None
    EventQueue(tmp_path / "q.db").close()


@pytest.fixture
def service(tmp_path):
    broker = Broker().start()
    data = {"device": {"id": DEVICE},
            "source": {"uri": str(require_shared("video", "single_face.mp4")), "loop": True, "pace": True},
            "detector": {"type": "haar"}, "events": {"summary_interval_s": 1.0},
            "mqtt": broker.mqtt_config(), "queue": {"path": str(tmp_path / "queue.db")}}
    path = write_config(tmp_path / "config.yaml", data)
    svc = ServiceProcess(path)
    try:
        svc.wait_ready(60)
        yield broker, svc, path, data
    finally:
        svc.stop()
        svc.close()
        broker.close()


def _reload(svc: ServiceProcess, path: Path, data: dict, states) -> dict:
    before = len(states.messages)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    svc.signal(signal.SIGHUP)
    assert states.wait_for(before + 1, timeout=20), svc.stderr()[-3000:]
    return states.json()[-1]


@pytest.mark.slow
@needs_mosquitto
def test_bad_tls_file_on_reload_rolls_back_and_events_keep_flowing(service, tmp_path):
    broker, svc, path, data = service
    events = broker.subscribe_collect(f"fer-edge/{DEVICE}/events")
    states = broker.subscribe_collect(f"fer-edge/{DEVICE}/config/state")
    assert events.wait_for(1, timeout=30) and states.wait_for(1, timeout=10)
    bad = {**data, "mqtt": {**data["mqtt"], "tls": {"enabled": True, "ca_file": str(tmp_path / "missing.pem")}}}
    state = _reload(svc, path, bad, states)
    assert state["ok"] is False and "mqtt.tls.ca_file" in state["error"], state
    seen = max(p["seq"] for p in events.json())
    assert events.wait_for(lambda m: max(x.json()["seq"] for x in m) >= seen + 2, timeout=20), \
        "no events after the rollback: " + svc.stderr()[-3000:]
    assert svc.alive() and "in use by another fer-edge process" not in svc.stderr()


@pytest.mark.slow
@needs_mosquitto
def test_sink_reopen_does_not_flicker_stopped_online(service):
    broker, svc, path, data = service
    status = broker.subscribe_collect(f"fer-edge/{DEVICE}/status")
    states = broker.subscribe_collect(f"fer-edge/{DEVICE}/config/state")
    assert states.wait_for(1, timeout=10) and status.wait_for(1, timeout=10)
    start = len(status.messages)
    state = _reload(svc, path, {**data, "queue": {**data["queue"], "max_events": 5000}}, states)
    assert state["ok"] is True, state
    time.sleep(1.0)
    after = [m.json()["state"] for m in status.messages[start:]]
    assert "stopped" not in after and "offline" not in after, after
    assert status.json()[-1]["state"] == "online"


@pytest.mark.slow
@needs_mosquitto
def test_retained_topics_added_while_reconnecting_do_not_kill_the_client(tmp_path):
    # _on_connect (paho's thread) walks the retained topics while the main thread adds more.
    with Broker() as broker:
        sink = open_sink(broker, tmp_path / "q.db")
        stop = threading.Event()

        def add() -> None:
            for i in range(8000):       # new keys (a new key changes the dict's size), about one per ms
                if stop.is_set():
                    return
                sink.publish_retained(f"extra/{i}", {"i": i})
                time.sleep(0.001)
        try:
            assert wait_until(lambda: sink.connected, 10)
            for i in range(800):
                sink.publish_retained(f"base/{i}", {"i": i})
            adder = threading.Thread(target=add, daemon=True)
            adder.start()
            for _ in range(4):
                broker.restart()
                assert wait_until(lambda: sink.connected, 15), "the MQTT client did not reconnect (its thread died?)"
        finally:
            stop.set()
            sink.close(1.0)
