"""Model updates over the air against a real mosquitto: `fer-edge fleet push-model` -> chunks -> self-test -> commit/roll back.

The device side is edge.control.ota.ModelUpdater on a real MqttSink (retained model/state, the
manifest topics), with the service's part played by a small host: it keeps the running ModelConfig,
switches it when the updater's tick() hands over a model that passed (as the service's main loop
does), and classifies with whatever runs. The operator side is the real command in its own process.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require_shared  # noqa: E402

from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402
from edge.classify import EmotionModel  # noqa: E402
from edge.config import RemoteConfigConfig  # noqa: E402
from edge.config.model import SHIPPED_MODEL, ModelConfig  # noqa: E402
from edge.config.mqtt import MqttConfig  # noqa: E402
from edge.events import load_schema  # noqa: E402
from edge.control.messages import state_payload  # noqa: E402
from edge.control.ota import ModelUpdater  # noqa: E402
from edge.control.selftest import Faces  # noqa: E402
from edge.interpreter import open_interpreter  # noqa: E402
from edge.publish.mqtt import MqttSink  # noqa: E402
from edge.publish.queue import EventQueue  # noqa: E402
from edge.control.signing import ReplayGuard  # noqa: E402

pytestmark = [pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto"),
              pytest.mark.slow]
SHIPPED_VERSION = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())["version"]
UPDATE_VERSION = SHIPPED_VERSION + "-update"    # what new_version() pushes
SECRET = "ota-test-secret"
DEVICE = "ota1"


def selftest_faces() -> Faces:
    """40 FER+ test faces that at least 9 of 10 annotators gave one label (8 each of 5 emotions)."""
    d = np.load(require_shared("ferplus", "ferplus_eval.npz"))
    cols = [str(c) for c in d["vote_columns"]]
    test = d["split"] == "test"
    images, votes = d["images"][test], d["votes"][test]
    picked, labels = [], []
    for label in ("happiness", "neutral", "surprise", "sadness", "anger"):
        idx = np.where(votes[:, cols.index(label)] >= 9)[0][:8]
        picked += list(idx)
        labels += [label] * len(idx)
    return Faces(images[picked], tuple(labels))


def new_version(folder: Path) -> Path:
    """The shipped model as version UPDATE_VERSION: a valid update (same latency, so the self-test's ratio holds)."""
    path = folder / "new.tflite"
    path.write_bytes(SHIPPED_MODEL.read_bytes())
    card = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())
    card["version"] = UPDATE_VERSION
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def broken_model(folder: Path) -> Path:
    """The shipped model with its largest weight tensor overwritten by noise, and a card that matches it.

    It loads and has the right shape, classes and sha256: only the self-test can tell it is wrong.
    """
    data = bytearray(SHIPPED_MODEL.read_bytes())
    it = open_interpreter(SHIPPED_MODEL)
    weights = max((it.get_tensor(t["index"]).tobytes() for t in it.get_tensor_details()
                   if t["name"].endswith("convolution")), key=len)
    pos = data.find(weights)
    assert pos > 0 and data.find(weights, pos + 1) < 0
    data[pos:pos + len(weights)] = np.random.default_rng(0).integers(-128, 127, len(weights), dtype=np.int8).tobytes()
    path = folder / "broken.tflite"
    path.write_bytes(bytes(data))
    card = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())
    card.update(version="9.9.9-broken", sha256=hashlib.sha256(data).hexdigest())
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


class Device:
    """A device's publishing side plus the model updater, and the running model as the service holds it."""

    def __init__(self, broker: Broker, tmp: Path) -> None:
        self.current = ModelConfig()
        self.switches: list[str] = []
        mqtt = MqttConfig(**broker.mqtt_config(prefix="fer-edge"))
        self.sink = MqttSink(DEVICE, mqtt, EventQueue(tmp / "queue.db"))
        settings = RemoteConfigConfig(enabled=True, require_signature=True)
        self.sink.publish_retained("config/state", state_payload("0" * 64, None, require_signature=True))
        self.updater = ModelUpdater(DEVICE, mqtt, tmp / "state", settings, lambda: self.current, self._apply,
                                    lambda p: self.sink.publish_retained("model/state", p),
                                    ReplayGuard(tmp / "state" / "config-serials.json"),
                                    env={"FER_EDGE_CONFIG_SECRET": SECRET}, chunk_timeout_s=20)
        for topic, target in self.updater.topics([]).items():
            self.sink.subscribe_topic(topic, lambda p, target=target: self.updater.on_message(target, p))
        self.updater.publish_running()
        self._stop = threading.Event()
        threading.Thread(target=self._main_loop, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self.sink.connected and time.monotonic() < deadline:
            time.sleep(0.05)

    def _apply(self, patch: dict, origin: str) -> None:
        new = ModelConfig(**patch["model"])
        EmotionModel.from_config(new)           # the service rebuilds its analyzer: it must load
        self.current = new
        self.switches.append(str(new.path))

    def _main_loop(self) -> None:
        while not self._stop.wait(0.1):
            self.updater.tick()

    def classify(self, faces: Faces) -> float:
        """Agreement of the running model on ``faces``."""
        model = EmotionModel.from_config(self.current)
        return float(np.mean([model.classify([f])[0].label == want for f, want in zip(faces.images, faces.labels)]))

    def close(self) -> None:
        self._stop.set()
        self.sink.close(1.0)


def check_states(states) -> None:
    """Every model/state payload received so far matches edge/schemas/model_state.schema.json."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema("model_state"))
    for payload in states.json():
        validator.validate(payload)


@pytest.fixture()
def rig(tmp_path):
    faces = selftest_faces()   # first: without shared data it skips before a device (and its MQTT client) is opened
    with Broker(persistence=False) as broker:
        device = Device(broker, tmp_path)
        faces_file = tmp_path / "faces.npz"
        faces_file.write_bytes(faces.to_bytes())
        states = broker.subscribe_collect(f"fer-edge/{DEVICE}/model/state")
        yield broker, device, faces, faces_file, states
        check_states(states)
        device.close()


def push_model(broker: Broker, model: Path, *extra: str, secret: str | None = SECRET) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FER_EDGE_CONFIG_SECRET", None)
    if secret:
        env["FER_EDGE_CONFIG_SECRET"] = secret
    return subprocess.run([sys.executable, "-m", "edge.ops.fleet.command", "--port", str(broker.port), "push-model",
                           str(model), "--device", DEVICE, "--timeout", "60", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_a_model_that_passes_its_self_test_is_committed(rig, tmp_path):
    broker, device, faces, faces_file, states = rig
    out = push_model(broker, new_version(tmp_path), "--selftest", str(faces_file))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{DEVICE}: applied" in out.stdout
    assert device.switches and Path(device.switches[-1]).parent == device.updater.dir   # written beside, not over
    assert device.current.path != SHIPPED_MODEL and SHIPPED_MODEL.exists()
    final = states.json()[-1]
    assert final["status"] == "applied" and final["previous"].startswith(f"fer-edge-emotion-{SHIPPED_VERSION}")
    assert final["selftest"]["agreed"] >= 32 and final["selftest"]["baseline_ms"] > 0
    assert device.current.path.name.startswith(f"fer-edge-emotion-{UPDATE_VERSION}-") and device.classify(faces) >= 0.8
    statuses = [s["status"] for s in states.json()]
    assert statuses.index("downloading") < statuses.index("testing") < statuses.index("applied")
    # the chunks are cleared from the broker afterwards
    leftover = broker.subscribe_collect("fer-edge/model/blob/#", persistent=False)
    assert not leftover.wait_for(1, timeout=1.0)


def test_a_model_that_fails_its_self_test_is_rolled_back_and_the_old_one_keeps_classifying(rig, tmp_path):
    broker, device, faces, faces_file, states = rig
    before = device.current
    out = push_model(broker, broken_model(tmp_path), "--selftest", str(faces_file))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"{DEVICE}: rolled back" in out.stdout and "self-test" in out.stdout
    final = states.json()[-1]
    assert final["status"] == "rolled_back" and final["ok"] is False
    assert final["model"].startswith(f"fer-edge-emotion-{SHIPPED_VERSION}@")             # still the model it had
    assert device.current == before and not device.switches
    assert not list(device.updater.dir.glob("*9.9.9-broken*"))           # the candidate is gone
    assert device.classify(faces) >= 0.8                                  # and the device still classifies


def test_the_kept_self_test_is_used_when_an_update_brings_none(rig, tmp_path):
    broker, device, faces, faces_file, states = rig
    out = push_model(broker, broken_model(tmp_path))
    assert out.returncode == 1 and "no self-test faces" in out.stdout, out.stdout + out.stderr
    assert push_model(broker, new_version(tmp_path), "--selftest", str(faces_file)).returncode == 0
    out = push_model(broker, broken_model(tmp_path))          # no --selftest: the device's kept set decides
    assert out.returncode == 1 and "rolled back" in out.stdout and "self-test" in out.stdout


def test_unsigned_push_to_a_device_that_requires_signatures_is_refused(rig, tmp_path):
    broker, device, *_ = rig
    out = push_model(broker, new_version(tmp_path), secret=None)
    assert out.returncode == 2
    assert "require signed messages" in out.stderr and "FER_EDGE_CONFIG_SECRET" in out.stderr


def test_a_model_whose_card_does_not_match_is_refused_before_sending(rig, tmp_path):
    broker, *_ = rig
    model = tmp_path / "m.tflite"
    model.write_bytes(SHIPPED_MODEL.read_bytes() + b"x")
    model.with_suffix(".json").write_text(SHIPPED_MODEL.with_suffix(".json").read_text())
    out = push_model(broker, model)
    assert out.returncode == 2 and "is not its card's" in out.stderr


def test_a_model_with_other_classes_is_rejected_by_the_device(rig, tmp_path):
    broker, device, faces, faces_file, states = rig
    model = tmp_path / "seven.tflite"
    model.write_bytes(SHIPPED_MODEL.read_bytes())
    card = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())
    card["classes"] = card["classes"][:7]
    model.with_suffix(".json").write_text(json.dumps(card))
    out = push_model(broker, model, "--selftest", str(faces_file))
    assert out.returncode == 1 and f"{DEVICE}: rejected" in out.stdout and "classes" in out.stdout
    assert device.current.path == SHIPPED_MODEL


def test_pushing_the_model_that_runs_again_leaves_it_alone(rig, tmp_path):
    broker, device, faces, faces_file, states = rig
    assert push_model(broker, new_version(tmp_path), "--selftest", str(faces_file)).returncode == 0
    running = device.current.path
    out = push_model(broker, new_version(tmp_path), "--selftest", str(faces_file))
    assert out.returncode == 1 and "is the model running already" in out.stdout, out.stdout + out.stderr
    assert device.current.path == running and running.exists()
