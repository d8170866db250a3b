"""MQTT against a real mosquitto on loopback: round trip, status and last will, stats, state, start-up outage."""
from __future__ import annotations

import io
import json
import logging
import signal
import time

import pytest

from conftest_mqtt import (VALIDATORS, assert_complete_and_ordered, broker, count_events, demo_config,  # noqa: F401
                           event_payloads, needs_mosquitto, open_sink, start_demo, wait_until)
from tests.helpers.broker import Broker

from edge.events import Event
from edge.config.events import EventsConfig
from edge.publish import build_sink
from tests.helpers.publish_demo import demo_event
from edge.config.mqtt import MqttConfig
from edge.config.queue import QueueConfig
from edge.publish.queue import EventQueue

pytestmark = needs_mosquitto


def test_round_trip_events_in_order_with_status_state_and_stats(broker, tmp_path):
    sub = broker.subscribe_collect("fer-edge/#")
    sink = open_sink(broker, tmp_path / "q.db", cameras=["cam0"])
    for start in range(0, 300, 30):                      # the pipeline hands over a frame's events at a time
        sink.publish_all(demo_event(k) for k in range(start, start + 30))
    assert sub.wait_for(count_events(n=300), 15), f"{len(event_payloads(sub))} of 300 arrived"
    assert assert_complete_and_ordered(event_payloads(sub), 300) == 0
    assert {p["type"] for p in event_payloads(sub)} == {"face_appeared", "emotion_changed", "face_left", "summary"}

    status = sub.on("fer-edge/dev1/status")
    assert status[0].json()["state"] == "online"
    VALIDATORS["status"].validate(status[0].json())
    assert sub.wait_for(lambda m: any(x.topic == "fer-edge/dev1/state/cam0" for x in m), 5)
    for m in sub.on("fer-edge/dev1/state/cam0"):
        VALIDATORS["state"].validate(m.json())

    assert wait_until(lambda: sink.queue.depth == 0)
    # What the service hands over: the frame processor's own counters (edge/frame_processor.py) plus its figures.
    from edge.frame_processor import ProcessorStats
    counters = ProcessorStats(frames=90, dropped=3, classified=40, faces_confirmed=4, face_frames=120,
                              first_t=0.0, last_t=6.0)
    for _ in range(18):
        counters.stages.add_ms("detect", 50.0)
    for _ in range(40):
        counters.stages.add_ms("classify", 4.0)
    stats = sink.publish_stats({**counters.snapshot(), "frames_total": 90, "faces_in_view": 1,
                                "config_version": None, "cpu_temp_c": 51.5})
    VALIDATORS["stats"].validate(stats)
    assert sub.wait_for(lambda m: any(x.topic == "fer-edge/dev1/stats" for x in m), 5)
    wire = sub.on("fer-edge/dev1/stats")[0].json()
    VALIDATORS["stats"].validate(wire)
    assert wire["fps"] == {"detect": 20.0, "classify": 250.0}          # 1000 / mean ms per call
    assert wire["inference_ms"] == 4.0 and wire["dropped_frames"] == 3 and wire["faces_per_minute"] == 40.0
    assert wire["queue"]["depth"] == 0 and wire["mqtt"]["connected"] is True and wire["version"]

    sink.close()
    assert sub.wait_for(lambda m: m[-1].topic.endswith("/status") and m[-1].json()["state"] == "stopped", 5)
    VALIDATORS["status"].validate(sub.on("fer-edge/dev1/status")[-1].json())
    # A dashboard that subscribes later gets the retained status, state and stats at once.
    late = broker.subscribe_collect("fer-edge/dev1/+", persistent=False)
    assert late.wait_for(lambda m: {x.topic for x in m} >= {"fer-edge/dev1/status", "fer-edge/dev1/stats"}, 5)
    assert all(x.retain for x in late.messages)
    assert late.on("fer-edge/dev1/status")[-1].json()["state"] == "stopped"


def test_state_follows_faces_in_view(broker, tmp_path):
    sub = broker.subscribe_collect("fer-edge/dev1/state/+")
    sink = open_sink(broker, tmp_path / "q.db")
    scores = {"happiness": 0.9, "neutral": 0.1}
    sink.publish_all([Event("face_appeared", "door", track_id=1, label="happiness", score=0.9, scores=scores),
                      Event("face_appeared", "door", track_id=2, label="happiness", score=0.7, scores=scores),
                      Event("face_appeared", "door", track_id=3, label="neutral", score=0.8, scores=scores)])
    assert sub.wait_for(lambda m: m and m[-1].json()["faces"] == 3, 5)
    last = sub.on("fer-edge/dev1/state/door")[-1].json()
    assert last["dominant"] == "happiness" and last["counts"] == {"happiness": 2, "neutral": 1}
    assert last["mix"] == {"happiness": pytest.approx(0.6667, abs=1e-3), "neutral": pytest.approx(0.3333, abs=1e-3)}
    sink.publish_all([Event("face_left", "door", track_id=1, label="happiness", duration_s=2.0),
                      Event("face_left", "door", track_id=2, label="happiness", duration_s=2.0)])
    assert sub.wait_for(lambda m: m[-1].json()["faces"] == 1 and m[-1].json()["dominant"] == "neutral", 5)
    for m in sub.messages:
        VALIDATORS["state"].validate(m.json())
    sink.close()


def test_aggregate_only_sends_no_per_face_events(broker, tmp_path):
    sub = broker.subscribe_collect("fer-edge/dev1/#")
    sink = open_sink(broker, tmp_path / "q.db", events=EventsConfig(aggregate_only=True))
    sink.publish(demo_event(0))                                   # a face appears
    assert sub.wait_for(lambda m: any(x.json().get("faces") == 1 for x in m if "/state/" in x.topic), 5)
    sink.publish_all(demo_event(k) for k in range(1, 100))       # 2 of them are summaries
    assert sub.wait_for(lambda m: len([x for x in m if x.topic.endswith("/events")]) >= 2, 5)
    sink.close()
    assert [p["type"] for p in event_payloads(sub)] == ["summary", "summary"]
    assert [p["seq"] for p in event_payloads(sub)] == [1, 2]


@pytest.mark.parametrize("qos,protocol", [(0, "3.1.1"), (2, "3.1.1"), (1, "5"), (2, "5")])
def test_other_qos_levels_and_mqtt5_round_trip(broker, tmp_path, qos, protocol):
    sub = broker.subscribe_collect("fer-edge/dev1/events", qos=2)
    sink = open_sink(broker, tmp_path / "q.db", qos=qos, protocol=protocol)
    sink.publish_all(demo_event(k) for k in range(200))
    assert sub.wait_for(count_events(n=200), 10)
    assert sub.messages[0].qos == qos
    assert_complete_and_ordered(event_payloads(sub), 200)
    sink.close()
    assert sink.queue.depth == 0


@pytest.mark.slow
def test_last_will_offline_on_sigkill_and_stopped_on_sigterm(broker, tmp_path):
    sub = broker.subscribe_collect("fer-edge/dev1/status")
    cfg = demo_config(broker, tmp_path)
    proc = start_demo(cfg, "--count", "10", "--hold")
    try:
        assert sub.wait_for(lambda m: m and m[-1].json()["state"] == "online", 15), proc.stderr.read() if proc.poll() else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        assert sub.wait_for(lambda m: m[-1].json()["state"] == "offline", 10), "broker did not publish the last will"
        will = sub.messages[-1]
        VALIDATORS["status"].validate(will.json())
        proc = start_demo(cfg, "--count", "10", "--hold")
        assert sub.wait_for(lambda m: m[-1].json()["state"] == "online", 15)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert sub.wait_for(lambda m: m[-1].json()["state"] == "stopped", 5)
        time.sleep(0.3)
        assert [m.json()["state"] for m in sub.messages][-1] == "stopped"    # no will after a clean stop
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_unreachable_broker_at_startup_queues_and_reports_once_per_interval(tmp_path, caplog):
    b = Broker()
    try:
        sub = b.start().subscribe_collect("fer-edge/dev1/events")   # a dashboard's persistent session...
        b.stop()                                                    # ...then nothing listens on the port
        with caplog.at_level(logging.INFO, logger="edge.publish.mqtt"):
            sink = open_sink(b, tmp_path / "q.db", reconnect_min_s=0.1, reconnect_max_s=0.1, log_interval_s=1.0)
            t0 = time.monotonic()
            for k in range(50):
                sink.publish(demo_event(k))
            assert time.monotonic() - t0 < 2.0, "publish() waited for the network"
            time.sleep(3.2)
            attempts = sink.connect_attempts
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            stats = sink.publish_stats({})
        VALIDATORS["stats"].validate(stats)
        assert attempts >= 10, attempts
        assert 3 <= len(warnings) <= 5, [r.getMessage() for r in warnings]     # ~1 per second, not 1 per attempt
        assert f"cannot reach broker 127.0.0.1:{b.port}" in warnings[0].getMessage()
        assert "Connection refused" in warnings[0].getMessage()
        assert "50 events queued" in warnings[-1].getMessage()
        assert "more since last report" in warnings[-1].getMessage()
        assert stats["queue"]["depth"] == 50 and stats["mqtt"]["connected"] is False
        assert "Connection refused" in stats["mqtt"]["last_error"]

        b.start()
        assert sub.wait_for(count_events(n=50), 10)
        assert_complete_and_ordered(event_payloads(sub), 50)
        assert wait_until(lambda: sink.queue.depth == 0), "acknowledged events were not removed from the queue"
        sink.close()
    finally:
        b.close()


def test_retained_extras_and_subscriptions_for_the_service(broker, tmp_path):
    sink = open_sink(broker, tmp_path / "q.db")
    got = []
    sink.subscribe("config/set", got.append)
    state = {"ok": True, "version": "a" * 64, "error": None, "ts": "2025-01-01T00:00:00.000Z"}
    VALIDATORS["config_state"].validate(state)
    sink.publish_retained("config/state", state)          # before the connection: sent once connected
    assert wait_until(lambda: sink.connected)
    time.sleep(0.2)
    sub = broker.subscribe_collect("fer-edge/dev1/config/state")   # a later subscriber gets it retained
    assert sub.wait_for(1, 5) and sub.messages[0].json() == state and sub.messages[0].retain
    c = broker.client()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        c.publish("fer-edge/dev1/config/set", b"detector: {type: haar}", qos=1).wait_for_publish(2)
        time.sleep(0.2)
    c.disconnect(); c.loop_stop()
    assert got and got[0] == b"detector: {type: haar}"
    sink.close()


def test_a_retained_message_stored_while_the_connection_comes_up_still_reaches_the_broker(broker, tmp_path, monkeypatch):
    """The service publishes config/state at start while paho's thread may be in the middle of its on_connect
    (found in CI: a device stayed online for minutes without ever publishing config/state or config/layers)."""
    import threading

    from edge.publish.state import RetainedState

    older = {"ok": True, "version": "a" * 64, "error": None, "ts": "2025-01-01T00:00:00.000Z"}
    newer = {**older, "version": "b" * 64}
    holder: dict = {}
    ready = threading.Event()
    original = RetainedState.connected

    def connected(self, *args, **kwargs):
        # paho's thread, after on_connect re-sent the retained messages and before the sink calls itself
        # connected: the main thread stores a newer config/state in that window
        ready.wait(5)
        holder["sink"].publish_retained("config/state", newer)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RetainedState, "connected", connected)
    sink = open_sink(broker, tmp_path / "q.db")
    holder["sink"] = sink
    sink.publish_retained("config/state", older)
    ready.set()
    assert wait_until(lambda: sink.connected)
    sub = broker.subscribe_collect("fer-edge/dev1/config/state")
    assert sub.wait_for(lambda m: m and m[-1].json() == newer, 5), "the newer config/state never reached the broker"
    later = broker.subscribe_collect("fer-edge/dev1/config/state")    # what the broker keeps: the newer one
    assert later.wait_for(1, 5) and later.messages[0].json() == newer and later.messages[0].retain
    sink.close()


def test_bad_settings_give_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="prefix"):
        MqttConfig(host="h", prefix="fer-edge/#")
    with pytest.raises(ValueError, match="device id 'a/b' cannot be used in MQTT topics"):
        build_sink("a/b", mqtt=MqttConfig(host="127.0.0.1"))
    with pytest.raises(ValueError, match=r"mqtt.tls.ca_file: .*missing.pem not found"):
        build_sink("d", mqtt=MqttConfig(host="127.0.0.1", tls={"enabled": True, "ca_file": str(tmp_path / "missing.pem")}),
                   queue=QueueConfig(path=str(tmp_path / "q.db")))
    EventQueue(tmp_path / "q.db").close()       # the failed sink left its queue file free (issue 12.7)
    with pytest.raises(ValueError, match="qos"):
        MqttConfig(qos=3)


def test_stdout_sink_without_a_broker_writes_schema_valid_json_lines():
    out = io.StringIO()
    from edge.publish.sink import StdoutSink
    assert isinstance(build_sink("d", mqtt=MqttConfig()), StdoutSink)     # no host: stdout
    sink = StdoutSink("d", stream=out)
    sink.publish_all(demo_event(k) for k in range(60))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [p["seq"] for p in lines] == list(range(1, 61))
    for p in lines:
        VALIDATORS["event"].validate(p)
