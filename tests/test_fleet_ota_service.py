"""Model updates on a real `fer-edge run` service: a passing model is switched in, a failing one rolled back.

The service reads a paced folder of two labelled photographs (faces in view all the time), so it
classifies all along; after each update its summaries must keep counting classified faces, from
the model that the retained model/state names.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require_shared  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402
from test_fleet_ota import SHIPPED_VERSION, UPDATE_VERSION, broken_model, new_version, selftest_faces  # noqa: E402

from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402

pytestmark = [pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto"),
              pytest.mark.slow]
SECRET = "ota-service-secret"
DEVICE = "ota-svc"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ota-service")
    photos = tmp / "photos"
    photos.mkdir()
    for name in ("0111b01.jpg", "0111b02.jpg"):
        shutil.copy(require_shared("faces", "taiwanese_fed", "happy", name), photos / name)
    (tmp / "state").mkdir()
    broker = Broker().start()
    path = write_config(tmp / "config.yaml", {
        "device": {"id": DEVICE},
        "source": {"uri": str(photos), "loop": True, "pace": True, "fps": 4},
        "detector": {"type": "haar"},
        "mqtt": broker.mqtt_config(),
        "queue": {"path": str(tmp / "queue.db")},
        "service": {"remote_config": {"enabled": True, "require_signature": True}},
        "stats": {"interval_s": 1.0},
        "events": {"summary_interval_s": 2.0},     # a summary counts the faces per emotion every 2 s
    })
    service = None
    try:     # a rig that fails to come up leaves no service or broker running after it
        service = ServiceProcess(path, env={"FER_EDGE_CONFIG_SECRET": SECRET, "STATE_DIRECTORY": str(tmp / "state")})
        service.wait_ready(60)
        faces_file = tmp / "faces.npz"
        faces_file.write_bytes(selftest_faces().to_bytes())
        events = broker.subscribe_collect(f"fer-edge/{DEVICE}/events")
        states = broker.subscribe_collect(f"fer-edge/{DEVICE}/model/state")
        assert states.wait_for(1, timeout=20), "no retained model/state at start:\n" + service.stderr()[-2000:]
        yield broker, service, tmp, faces_file, events, states
    finally:
        if service is not None:
            service.close()
        broker.close()


def push(broker: Broker, model: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FER_EDGE_CONFIG_SECRET": SECRET}
    return subprocess.run([sys.executable, "-m", "edge.cli", "fleet", "--port", str(broker.port), "push-model",
                           str(model), "--device", DEVICE, "--timeout", "90", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=150)


def labelled_events_after(events, count: int, timeout: float = 30.0) -> bool:
    """True once ``count`` more summaries counting a classified face arrived."""
    def labelled(msgs):
        return sum(1 for m in msgs if (json.loads(m.payload).get("summary") or {}).get("counts"))
    start = labelled(events.messages)
    return events.wait_for(lambda m: labelled(m) >= start + count, timeout)


def test_startup_reports_the_running_model(rig):
    _, _, _, _, events, states = rig
    first = states.json()[0]
    assert first["status"] == "running" and first["model"].startswith(f"fer-edge-emotion-{SHIPPED_VERSION}@")
    assert labelled_events_after(events, 2), "the service does not classify the photographs"


def test_a_failing_model_is_rolled_back_and_the_service_keeps_classifying(rig):
    broker, service, tmp, faces_file, events, states = rig
    out = push(broker, broken_model(tmp), "--selftest", str(faces_file))
    assert out.returncode == 1 and f"{DEVICE}: rolled back" in out.stdout, out.stdout + out.stderr + service.stderr()[-2000:]
    assert states.json()[-1]["model"].startswith(f"fer-edge-emotion-{SHIPPED_VERSION}@")
    assert service.alive() and labelled_events_after(events, 2)
    assert "pipeline restarted" not in service.stderr().split("model update")[-1]


def test_a_passing_model_is_switched_in_and_classifies(rig):
    broker, service, tmp, faces_file, events, states = rig
    out = push(broker, new_version(tmp), "--selftest", str(faces_file))
    assert out.returncode == 0 and f"{DEVICE}: applied" in out.stdout, out.stdout + out.stderr + service.stderr()[-2000:]
    final = states.json()[-1]
    assert final["model"].startswith(f"fer-edge-emotion-{UPDATE_VERSION}@") and final["previous"].startswith(f"fer-edge-emotion-{SHIPPED_VERSION}@")
    assert "pipeline restarted" in service.stderr()
    assert service.alive() and labelled_events_after(events, 2)
    layers = json.loads((tmp / "state" / "fleet-layers.json").read_text())["layers"]
    assert Path(layers["device"]["model"]["path"]).parent == tmp / "state" / "models"   # beside, in the state dir
