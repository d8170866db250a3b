"""Config layers of a fleet device: local file < groups < device, order-independence, rollback, signatures."""
from __future__ import annotations

import itertools

import pytest

from edge.config import ConfigError, Document, RemoteConfigConfig, validate_document
from edge.control.messages import Duplicate, FleetConfig
from edge.control.layers import LayerState, LayerStore, effective
from edge.control.signing import ReplayGuard, sign_message

SECRET = "layer-test-secret"
ENV = {"FER_EDGE_CONFIG_SECRET": SECRET}
STRICT = RemoteConfigConfig(enabled=True, require_signature=True)
LOOSE = RemoteConfigConfig(enabled=True)


def base(groups=("shop", "eu")):
    doc = {"device": {"id": "d1", "groups": list(groups)}, "schedule": {"detect_every": 2},
           "tracking": {"ema_half_life_s": 0.5}}
    return validate_document(Document(doc, {}, "config.yaml"), ENV)


def fleet(tmp_path, guard=True):
    return FleetConfig(tmp_path / "config.yaml", LayerStore(tmp_path / "layers.json"), "d1",
                       ReplayGuard(tmp_path / "serials.json") if guard else None)


def signed(body: bytes, target: str, serial: int) -> bytes:
    return sign_message(body, SECRET.encode(), target, serial)


def apply(fc, layer, payload, b, settings=STRICT):
    p = fc.prepare(layer, payload, b, settings, ENV)
    fc.commit(p)
    return p.loaded


def test_device_beats_group_beats_file_in_either_order(tmp_path):
    b = base()
    group_msg = (b"schedule:\n  detect_every: 4\ntracking:\n  ema_half_life_s: 0.9\n", "group:shop", "group/shop")
    device_msg = (b"schedule:\n  detect_every: 6\n", "device", "device/d1")
    results = []
    for k, order in enumerate(itertools.permutations([group_msg, device_msg])):
        fc = fleet(tmp_path / str(k))
        for n, (body, layer, target) in enumerate(order, start=1):
            loaded = apply(fc, layer, signed(body, target, n), b)
        results.append(loaded)
        assert loaded.config.schedule.detect_every == 6          # the device's own value wins
        assert loaded.config.tracking.ema_half_life_s == 0.9     # the group's value beats the file
    assert results[0].version == results[1].version              # same result whatever the order


def test_later_group_in_device_groups_wins(tmp_path):
    fc = fleet(tmp_path)
    apply(fc, "group:eu", signed(b"schedule:\n  detect_every: 5\n", "group/eu", 1), base())
    loaded = apply(fc, "group:shop", signed(b"schedule:\n  detect_every: 3\n", "group/shop", 1), base())
    assert loaded.config.schedule.detect_every == 5              # groups: [shop, eu]: eu is higher


def test_null_in_a_layer_lets_the_lower_value_show(tmp_path):
    fc = fleet(tmp_path)
    apply(fc, "group:shop", signed(b"schedule:\n  detect_every: 3\n", "group/shop", 1), base())
    loaded = apply(fc, "group:shop", signed(b"schedule:\n  detect_every: null\n", "group/shop", 2), base())
    assert loaded.config.schedule.detect_every == 2              # the file's value again


def test_message_for_a_group_the_device_is_not_in_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="not in group:lobby"):
        fleet(tmp_path).prepare("group:lobby", signed(b"schedule: {detect_every: 3}\n", "group/lobby", 1),
                                base(), STRICT, ENV)


def test_group_cannot_change_membership(tmp_path):
    with pytest.raises(ConfigError, match="cannot set device.id or device.groups"):
        fleet(tmp_path).prepare("group:shop", signed(b"device:\n  groups: [x]\n", "group/shop", 1),
                                base(), STRICT, ENV)


def test_rollback_of_a_group_restores_only_that_group(tmp_path):
    fc = fleet(tmp_path)
    b = base()
    apply(fc, "group:shop", signed(b"schedule: {detect_every: 3}\n", "group/shop", 1), b)
    apply(fc, "device", signed(b"tracking: {ema_half_life_s: 0.7}\n", "device/d1", 1), b)
    apply(fc, "group:shop", signed(b"schedule: {detect_every: 9}\n", "group/shop", 2), b)
    loaded = apply(fc, "group:shop", signed(b"# action: rollback\n", "group/shop", 3), b)
    assert loaded.config.schedule.detect_every == 3 and loaded.config.tracking.ema_half_life_s == 0.7
    loaded = apply(fc, "device", signed(b"# action: rollback\n", "device/d1", 2), b)
    assert loaded.config.tracking.ema_half_life_s == 0.5         # the device's change undone


def test_rollback_with_nothing_recorded_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="nothing to roll back"):
        fleet(tmp_path).prepare("device", signed(b"# action: rollback\n", "device/d1", 1), base(), STRICT, ENV)


def test_layers_survive_a_restart(tmp_path):
    fc = fleet(tmp_path)
    apply(fc, "group:shop", signed(b"schedule: {detect_every: 7}\n", "group/shop", 1), base())
    again = fleet(tmp_path)
    assert again.running(base(), ENV).config.schedule.detect_every == 7


def test_same_serial_again_is_a_duplicate_and_older_is_a_replay(tmp_path):
    fc = fleet(tmp_path)
    msg = signed(b"schedule: {detect_every: 3}\n", "group/shop", 10)
    apply(fc, "group:shop", msg, base())
    with pytest.raises(Duplicate):
        fc.prepare("group:shop", msg, base(), STRICT, ENV)
    with pytest.raises(ConfigError, match="replay rejected"):
        fc.prepare("group:shop", signed(b"schedule: {detect_every: 4}\n", "group/shop", 9), base(), STRICT, ENV)


def test_group_message_replayed_on_device_topic_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="signed for group/shop"):
        fleet(tmp_path).prepare("device", signed(b"schedule: {detect_every: 3}\n", "group/shop", 1),
                                base(), STRICT, ENV)


def test_unsigned_rejected_when_required_and_accepted_otherwise(tmp_path):
    with pytest.raises(ConfigError, match="unsigned message rejected"):
        fleet(tmp_path).prepare("group:shop", b"schedule: {detect_every: 3}\n", base(), STRICT, ENV)
    loaded = fleet(tmp_path, guard=False).prepare("group:shop", b"schedule: {detect_every: 3}\n", base(), LOOSE,
                                                  ENV).loaded
    assert loaded.config.schedule.detect_every == 3


def test_invalid_value_names_the_key_and_keeps_the_serial(tmp_path):
    with pytest.raises(ConfigError) as info:
        fleet(tmp_path).prepare("group:shop", signed(b"schedule:\n  detect_every: 0\n", "group/shop", 5),
                                base(), STRICT, ENV)
    assert "schedule.detect_every" in str(info.value) and info.value.serial == 5


def test_effective_ignores_layers_of_other_groups():
    doc = effective({"a": 1}, {"group:x": {"a": 2}, "group:y": {"a": 3}}, ["x"])
    assert doc == {"a": 2}


def test_history_is_bounded():
    state = LayerState()
    for k in range(30):
        state = state.changed("device", {"n": k})
    assert len(state.history) == 10 and state.layers["device"] == {"n": 29}
