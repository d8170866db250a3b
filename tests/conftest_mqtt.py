"""Shared pieces of the MQTT tests (imported by tests/test_mqtt*.py): broker fixture, sinks, checks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml


from tests.helpers.broker import Broker, Collector, mosquitto_available  # noqa: E402

from edge.events import load_schema  # noqa: E402
from edge.config.mqtt import MqttConfig  # noqa: E402
from edge.publish.mqtt import MqttSink  # noqa: E402
from edge.publish.queue import EventQueue  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
needs_mosquitto = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto")
VALIDATORS = {n: jsonschema.Draft202012Validator(load_schema(n))
              for n in ("event", "status", "stats", "state", "config_state")}


_OPENED: list[MqttSink] = []        # sinks made by open_sink(), closed by the broker fixture at the latest


@pytest.fixture
def broker():
    with Broker() as b:
        try:
            yield b
        finally:
            # A test that failed or skipped half-way must not leave its client reconnecting (and
            # logging) into the tests that follow.
            while _OPENED:
                sink = _OPENED.pop()
                if sink._thread.is_alive():
                    sink.close(0.5)


def open_sink(broker: Broker, queue_path: Path, device: str = "dev1", **mqtt: Any) -> MqttSink:
    """An MqttSink on ``broker`` with its queue at ``queue_path``; extra MqttConfig fields as keywords."""
    kw = {k: mqtt.pop(k) for k in ("events", "homeassistant", "cameras") if k in mqtt}
    sink = MqttSink(device, MqttConfig(**broker.mqtt_config(**mqtt)), EventQueue(queue_path), **kw)
    _OPENED.append(sink)
    return sink


def event_payloads(sub: Collector, device: str = "dev1") -> list[dict]:
    return sub.json(f"fer-edge/{device}/events")


def count_events(device: str = "dev1", n: int = 0):
    """Predicate for Collector.wait_for: at least ``n`` distinct event seqs received."""
    topic = f"fer-edge/{device}/events"
    return lambda msgs: len({m.json()["seq"] for m in msgs if m.topic == topic}) >= n


def assert_complete_and_ordered(payloads: list[dict], n: int) -> int:
    """Every seq 1..n arrived; duplicates carry the same id; first deliveries in order. Returns duplicates."""
    for p in payloads:
        VALIDATORS["event"].validate(p)
    by_seq: dict[int, str] = {}
    firsts = []
    for p in payloads:
        if p["seq"] in by_seq:
            assert by_seq[p["seq"]] == p["id"], f"seq {p['seq']} re-sent with another id"
        else:
            by_seq[p["seq"]] = p["id"]
            firsts.append(p["seq"])
    assert sorted(by_seq) == list(range(1, n + 1)), f"missing seqs: {sorted(set(range(1, n + 1)) - set(by_seq))[:20]}"
    assert firsts == sorted(firsts), "events arrived out of order"
    assert len(set(by_seq.values())) == n, "two events share an id"
    return len(payloads) - n


def demo_config(broker: Broker, tmp_path: Path, **mqtt: Any) -> Path:
    """A YAML file for `python -m tests.helpers.publish_demo` that reaches ``broker``."""
    path = tmp_path / "publish.yaml"
    cfg = {"device": {"id": "dev1"}, "mqtt": broker.mqtt_config(**mqtt), "queue": {"path": str(tmp_path / "q.db")}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_demo(config: Path, *args: str) -> subprocess.Popen:
    """The publisher as its own process (so that it can be killed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.publish_demo", "--config", str(config), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(predicate, timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds passed."""
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
