"""Issue 25.5 and 25.7 (model updates): the device's own bar, names that stay in <state>/models/, signed only.

A real mosquitto and the device side of test_fleet_ota (a real MqttSink and ModelUpdater); the
manifests are written here, as a hostile operator would, signed with the fleet's secret: the
device must keep its self-test floor whatever the manifest says, refuse card names that are not
plain names (nothing written outside ``<state>/models/``), and refuse any unsigned model update
- on a device that accepts unsigned config too - answering on model/state as a model message.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_fleet_ota import DEVICE, SECRET, broken_model, new_version, rig  # noqa: E402,F401

from edge.config import RemoteConfigConfig  # noqa: E402
from edge.control.signing import device_target, sign_message  # noqa: E402
from edge.ops.fleet.model_push import blob_topic  # noqa: E402

pytestmark = pytest.mark.slow


def send_manifest(broker, model: Path, faces_file: Path, serial: int | None, **changes) -> None:
    """Publish the model and faces as one retained chunk each, then the manifest (signed when serial is given)."""
    import hashlib
    data, faces = model.read_bytes(), faces_file.read_bytes()
    card = json.loads(model.with_suffix(".json").read_text())
    card.update(changes.pop("card", {}))
    entries = []
    c = broker.client()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    for blob in (data, faces):
        sha = hashlib.sha256(blob).hexdigest()
        c.publish(blob_topic("fer-edge", sha, 0), blob, qos=1, retain=True).wait_for_publish(10)
        entries.append({"sha256": sha, "size": len(blob), "chunks": 1})
    body = (json.dumps({"v": 1, "card": card, "model": entries[0], "selftest": entries[1], **changes}) + "\n").encode()
    payload = body if serial is None else sign_message(body, SECRET.encode(), device_target(DEVICE), serial=serial,
                                                       signer="ops")
    # retained: the device may still be subscribing (a busy machine); it gets the manifest either way
    c.publish(f"fer-edge/{DEVICE}/model/set", payload, qos=1, retain=True).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


def final_state(states, before: int, timeout: float = 90.0) -> dict:
    done = ("applied", "rejected", "rolled_back", "duplicate")
    assert states.wait_for(lambda m: any(x.json()["status"] in done for x in m[before:]), timeout), states.json()[-3:]
    return next(x for x in states.json()[before:] if x["status"] in done)


def files_outside_models(root: Path) -> list[str]:
    models = root / "state" / "models"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                  and p.suffix in (".tflite", ".json") and models not in p.parents
                  and p.parent != root)          # the test's own new.tflite/broken.tflite live at the root


def test_a_manifest_cannot_lower_the_devices_self_test_floor(rig, tmp_path):
    broker, device, _faces, faces_file, states = rig
    before_model, n = device.current, len(states.messages)
    send_manifest(broker, broken_model(tmp_path), faces_file, serial=100, min_agreement=0)
    state = final_state(states, n)
    assert state["status"] == "rolled_back" and "needs 80%" in state["error"], state
    assert device.current == before_model and device.switches == []
    n = len(states.messages)
    send_manifest(broker, broken_model(tmp_path), faces_file, serial=101, min_agreement=-1)
    state = final_state(states, n)
    assert state["status"] == "rejected" and "min_agreement" in state["error"], state


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", "x" * 65, ""])
def test_a_card_name_that_is_not_a_plain_name_is_refused_and_nothing_is_written_outside_models(rig, tmp_path, name):
    broker, device, _faces, faces_file, states = rig
    n = len(states.messages)
    send_manifest(broker, new_version(tmp_path), faces_file, serial=200, card={"name": name})
    state = final_state(states, n)
    assert state["status"] == "rejected" and "not a plain name" in state["error"], state
    assert device.switches == []
    assert files_outside_models(tmp_path) == [], files_outside_models(tmp_path)
    assert not list(tmp_path.parent.glob("escape*")) and not list((tmp_path / "state").glob("escape*"))


def test_an_unsigned_model_update_is_refused_even_where_unsigned_config_is_accepted(rig, tmp_path):
    broker, device, _faces, faces_file, states = rig
    device.updater.settings = RemoteConfigConfig(enabled=True, require_signature=False)
    n = len(states.messages)
    send_manifest(broker, new_version(tmp_path), faces_file, serial=None)
    state = final_state(states, n)
    assert state["status"] == "rejected" and state["error"].startswith("model/set message: unsigned model update"), state
    assert state.get("model"), "model/state says which model keeps running"
    assert device.switches == []
