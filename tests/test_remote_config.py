"""Remote config over a real mosquitto: `fer-edge run` as a process, messages on config/set, outcome on config/state.

One service (signatures required) runs for the whole module; each test sends messages and reads
the retained config/state answers. Before every test the device's remote layer is reset (a signed
``# mode: replace`` of an empty layer), so no test depends on another's. The local file is never
written: remote changes live in the state directory (edge/control/layers.py). After every rejection
the service must still run the previous version.

Probation, replays, camera ids and security defaults: tests/test_remote_hardening.py.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import require_shared  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402
from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402

from edge.config import load_file  # noqa: E402
from edge.events import load_schema  # noqa: E402
from edge.control.signing import device_target, new_serial, sign_message  # noqa: E402

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto")
SECRET = "test-secret-0123456789"
DEVICE = "rc1"
STATE = f"fer-edge/{DEVICE}/config/state"
SET = f"fer-edge/{DEVICE}/config/set"
STATE_SCHEMA = jsonschema.Draft202012Validator(load_schema("config_state"))
STATS_SCHEMA = jsonschema.Draft202012Validator(load_schema("stats"))


def sign(body: bytes, device: str = DEVICE) -> bytes:
    """A replay-safe signed message for ``device`` with a fresh serial."""
    return sign_message(body, SECRET.encode(), device_target(device), serial=new_serial(), signer="tests")


class Rig:
    """The broker, the service, a config/state collector and a publisher."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.broker = Broker().start()
        self.path = write_config(tmp / "config.yaml", {
            "device": {"id": DEVICE},
            "source": {"uri": str(require_shared("video", "single_face.mp4")), "loop": True, "pace": True},
            "detector": {"type": "haar"},
            "mqtt": self.broker.mqtt_config(),
            "queue": {"path": str(tmp / "queue.db")},
            "service": {"remote_config": {"enabled": True, "require_signature": True}},
            "stats": {"interval_s": 1.0},
        })
        self.file_bytes = self.path.read_bytes()
        self.service = ServiceProcess(self.path, env={"FER_EDGE_CONFIG_SECRET": SECRET,
                                                      "STATE_DIRECTORY": str(self.state_dir)})
        self.service.wait_ready()
        self.states = self.broker.subscribe_collect(STATE)
        self.stats = self.broker.subscribe_collect(f"fer-edge/{DEVICE}/stats")
        self.pub = self.broker.client()
        self.pub.connect("127.0.0.1", self.broker.port)
        self.pub.loop_start()
        # 30 s: on a loaded 2-core machine the first retained state once took longer than 10 s after READY
        assert self.states.wait_for(1, timeout=30), "no retained config/state after start"

    def send(self, payload: bytes, signed: bool = True, timeout: float = 20.0) -> dict:
        """Publish on config/set; return the next final config/state payload (past 'probation'; schema-checked)."""
        before = len(self.states.on(STATE))
        body = sign(payload) if signed else payload
        self.pub.publish(SET, body, qos=1).wait_for_publish(5)
        final = lambda m: any(x.json().get("status") != "probation" for x in m[before:])  # noqa: E731
        assert self.states.wait_for(final, timeout), "no config/state answer:\n" + self.service.stderr()[-3000:]
        state = next(x for x in self.states.json(STATE)[before:] if x.get("status") != "probation")
        STATE_SCHEMA.validate(state)
        return state

    def layer(self) -> dict:
        """The device's remote layer as saved in the state directory."""
        path = self.state_dir / "fleet-layers.json"
        return json.loads(path.read_text())["layers"].get("device", {}) if path.exists() else {}

    def frames_total(self) -> int:
        msgs = self.stats.json(f"fer-edge/{DEVICE}/stats")
        if not msgs:
            return 0
        STATS_SCHEMA.validate(msgs[-1])
        return msgs[-1]["frames_total"]

    def assert_still_running(self, version: str, file_bytes: bytes) -> None:
        """The service is alive, processing frames, on ``version``; the file is byte for byte as before."""
        assert self.service.alive(), self.service.stderr()[-3000:]
        assert self.path.read_bytes() == file_bytes == self.file_bytes      # the local file is never written
        frames = self.frames_total()
        assert self.stats.wait_for(lambda m: m and m[-1].json()["frames_total"] > frames, timeout=10), \
            "frames stopped flowing"
        assert self.stats.json(f"fer-edge/{DEVICE}/stats")[-1]["config_version"] == version

    def close(self) -> None:
        self.pub.loop_stop()
        self.pub.disconnect()
        self.service.close()
        self.broker.close()


@pytest.fixture(scope="module")
def module_rig(tmp_path_factory):
    r = Rig(tmp_path_factory.mktemp("remote-config"))
    yield r
    r.close()


@pytest.fixture
def rig(module_rig):
    """The module's service with an empty remote layer: it runs the local file alone."""
    state = module_rig.send(b"# mode: replace\n{}\n")
    assert state["ok"] is True and state["version"] == load_file(module_rig.path).version, state
    return module_rig


def _rejected(rig: Rig, payload: bytes, signed: bool = True) -> str:
    """Send a bad message; check nothing changed; return the error text."""
    version = rig.states.json(STATE)[-1]["version"]
    before = rig.path.read_bytes()
    state = rig.send(payload, signed)
    assert state["ok"] is False and state["error"], state
    assert state["version"] == version, "the running version must stay the previous one"
    rig.assert_still_running(version, before)
    return state["error"]


@pytest.mark.slow
def test_startup_publishes_the_running_version(module_rig):
    state = module_rig.states.json(STATE)[0]
    STATE_SCHEMA.validate(state)
    assert state == {**state, "ok": True, "error": None, "status": "startup",
                     "version": load_file(module_rig.path).version}


def test_malformed_yaml_is_rejected(rig):
    error = _rejected(rig, b"tracking:\n  ema_half_life_s: [0.5\n")
    assert error.startswith("config/set message:") and "YAML" in error


def test_unknown_key_is_rejected(rig):
    error = _rejected(rig, b"tracking:\n  smoothness: 0.5\n")
    assert "config/set message:2: tracking.smoothness: unknown key" in error


def test_wrong_type_is_rejected(rig):
    error = _rejected(rig, b"schedule:\n  detect_every: sometimes\n")
    assert "schedule.detect_every: Input should be a valid integer" in error


def test_out_of_range_is_rejected(rig):
    error = _rejected(rig, b"schedule:\n  detect_every: 0\n")
    assert "schedule.detect_every: Input should be greater than or equal to 1" in error


def test_huge_payload_is_rejected_unread(rig):
    payload = b"device:\n  name: '" + b"x" * 70_000 + b"'\n"
    error = _rejected(rig, payload)
    assert "message too large: 70" in error and "max_payload_bytes (65536); not read" in error


def test_wrong_signature_is_rejected(rig):
    body = b"schedule:\n  detect_every: 3\n"
    forged = sign_message(body, b"not-the-secret", device_target(DEVICE), serial=new_serial())
    error = _rejected(rig, forged, signed=False)
    assert "signature does not match" in error


def test_tampered_body_is_rejected(rig):
    signed = sign(b"schedule:\n  detect_every: 3\n")
    error = _rejected(rig, signed.replace(b"3", b"4"), signed=False)
    assert "signature does not match" in error


def test_unsigned_message_is_rejected(rig):
    error = _rejected(rig, b"schedule:\n  detect_every: 3\n", signed=False)
    assert "unsigned message rejected" in error


def test_a_change_that_cannot_be_applied_rolls_back(rig):
    # Valid by the schema, but the model file does not exist: the old pipeline keeps running.
    error = _rejected(rig, b"model:\n  path: /nonexistent/model.tflite\n")
    assert error.startswith("not applied: cannot load the models")


def test_valid_change_is_applied_live_and_persisted(rig):
    file_version = load_file(rig.path).version
    state = rig.send(b"tracking:\n  ema_half_life_s: 0.8\nschedule:\n  detect_every: 3\n")
    assert state["ok"] is True and state["error"] is None and state["status"] == "applied"
    assert state["version"] != file_version
    # saved in the state directory as the device's layer, never in the local file
    assert rig.layer() == {"tracking": {"ema_half_life_s": 0.8}, "schedule": {"detect_every": 3}}
    rig.assert_still_running(state["version"], rig.file_bytes)
    assert "processor reconfigured live" in rig.service.stderr()


def test_null_resets_a_key(rig):
    rig.send(b"tracking:\n  ema_half_life_s: 0.8\nschedule:\n  detect_every: 3\n")
    state = rig.send(b"tracking:\n  ema_half_life_s: null\n")
    assert state["ok"] is True
    assert rig.layer() == {"tracking": {}, "schedule": {"detect_every": 3}} or \
        rig.layer() == {"schedule": {"detect_every": 3}}          # the key is gone from the layer


@pytest.mark.slow
def test_source_change_restarts_the_pipeline(rig):
    crowd = require_shared("video", "crowd_street_test.mp4")
    state = rig.send(f"source:\n  uri: {crowd}\n".encode())
    assert state["ok"] is True and state["status"] == "applied", state     # after its probation
    assert rig.layer() == {"source": {"uri": str(crowd)}}
    rig.assert_still_running(state["version"], rig.file_bytes)
    assert "pipeline restarted (source)" in rig.service.stderr()


def test_sending_the_running_config_again_changes_nothing(rig):
    first = rig.send(b"schedule:\n  detect_every: 3\n")
    state = rig.send(b"# mode: merge\nschedule:\n  detect_every: 3\n")
    assert state["ok"] is True and state["version"] == first["version"]


def test_sighup_reloads_the_file_and_rejects_a_broken_one(rig):
    original = rig.path.read_text()
    doc = yaml.safe_load(original)
    doc["schedule"] = {"classify_hz": 2.5}
    rig.path.write_text(yaml.safe_dump(doc))
    new_version = load_file(rig.path).version
    try:
        before = len(rig.states.on(STATE))
        rig.service.signal(signal.SIGHUP)
        assert rig.states.wait_for(lambda m: len(m) > before, 10)
        state = rig.states.json(STATE)[-1]
        assert state["ok"] is True and state["version"] == new_version

        rig.path.write_text(rig.path.read_text() + "bogus_section: 1\n")     # an admin's typo
        broken = rig.path.read_bytes()
        before = len(rig.states.on(STATE))
        rig.service.signal(signal.SIGHUP)
        assert rig.states.wait_for(lambda m: len(m) > before, 10)
        state = rig.states.json(STATE)[-1]
        assert state["ok"] is False and "bogus_section: unknown key" in state["error"]
        assert state["version"] == new_version
        rig.file_bytes = broken                   # the admin's file is left for them to fix
        rig.assert_still_running(new_version, broken)
    finally:
        rig.path.write_text(original)
        rig.file_bytes = rig.path.read_bytes()
        before = len(rig.states.on(STATE))
        rig.service.signal(signal.SIGHUP)
        rig.states.wait_for(lambda m: len(m) > before, 10)


def test_replace_mode_replaces_the_device_layer(rig):
    rig.send(b"schedule:\n  detect_every: 3\ntracking:\n  ema_half_life_s: 0.8\n")
    state = rig.send(b"# mode: replace\n# the device's whole layer from the fleet manager\nschedule:\n  classify_hz: 2.0\n")
    assert state["ok"] is True
    assert rig.layer() == {"schedule": {"classify_hz": 2.0}}              # the rest of the layer is gone


@pytest.mark.slow
def test_topic_change_moves_the_device_live(tmp_path):
    # its own service: afterwards the device answers on other topics
    rig = Rig(tmp_path)
    try:
        new_states = rig.broker.subscribe_collect(f"fleet2/{DEVICE}/config/state")
        new_stats = rig.broker.subscribe_collect(f"fleet2/{DEVICE}/stats")
        pid = rig.service.proc.pid
        rig.pub.publish(SET, sign(b"mqtt:\n  prefix: fleet2\n"), qos=1).wait_for_publish(5)
        assert new_states.wait_for(lambda m: any(x.json()["status"] == "applied" for x in m), 30), \
            rig.service.stderr()[-3000:]
        assert rig.layer() == {"mqtt": {"prefix": "fleet2"}}
        assert new_stats.wait_for(1, 10), "no stats on the new prefix"
        assert rig.service.alive() and rig.service.proc.pid == pid          # same process: applied live
        assert "sink reopened" in rig.service.stderr()
    finally:
        rig.close()
