"""Replay-safe signing (edge/control/signing.py): header, target binding, serials per signer and target, the JSON record.

The service-level checks (the same message sent twice over a real broker is applied once, an old
one is rejected) are in tests/test_remote_hardening.py.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from edge.control.signing import (ReplayError, ReplayGuard, SignatureError, device_target, group_target, has_signature,
                          new_serial, sign_message, verify_message)

KEY = b"test-secret-0123456789"
CAM = device_target("cam1")
BODY = b"schedule:\n  detect_every: 3\n"


def test_round_trip_returns_signer_serial_target_and_the_signed_bytes():
    msg = sign_message(BODY, KEY, CAM, serial=42, signer="ops")
    assert msg.splitlines()[1:4] == [b"# signer: ops", b"# serial: 42", b"# target: device/cam1"]
    assert has_signature(msg) and not has_signature(BODY)
    s = verify_message(msg, KEY, CAM)
    assert (s.signer, s.serial, s.target) == ("ops", 42, "device/cam1")
    assert s.body == BODY                        # the document as written: its line numbers are the file's


def test_resigning_replaces_the_old_header():
    first = sign_message(BODY, KEY, CAM, serial=1)
    again = sign_message(first, KEY, CAM, serial=2)
    assert again.count(b"# signature:") == 1 and again.count(b"# serial:") == 1
    assert verify_message(again, KEY, CAM).serial == 2


@pytest.mark.parametrize("change,match", [
    (lambda m: m.replace(b"# serial: 42", b"# serial: 43"), "signature does not match"),
    (lambda m: m.replace(b"device/cam1", b"device/cam2"), "signature does not match"),
    (lambda m: m.replace(b"detect_every: 3", b"detect_every: 4"), "signature does not match"),
    (lambda m: m.partition(b"\n")[2], "not signed"),
])
def test_any_changed_byte_is_rejected(change, match):
    with pytest.raises(SignatureError, match=match):
        verify_message(change(sign_message(BODY, KEY, CAM, serial=42)), KEY, CAM)


def test_a_message_for_another_target_is_rejected():
    msg = sign_message(BODY, KEY, group_target("lobby"), serial=7)
    with pytest.raises(SignatureError, match="signed for group/lobby, but it arrived on the topic of device/cam1"):
        verify_message(msg, KEY, CAM)
    assert verify_message(msg, KEY, "group/lobby").serial == 7


def test_a_signature_without_serial_is_rejected_as_replayable():
    # the format before replay protection: signature line + body
    import hashlib
    import hmac
    legacy = b"# signature: sha256=" + hmac.new(KEY, BODY, hashlib.sha256).hexdigest().encode() + b"\n" + BODY
    with pytest.raises(SignatureError, match="without '# signer:', '# serial:', '# target:' line: it could be replayed"):
        verify_message(legacy, KEY, CAM)


@pytest.mark.parametrize("kwargs,match", [
    ({"serial": 0}, "serial 0 must be"), ({"serial": 1 << 63}, "must be a whole number"),
    ({"signer": "a b"}, "signer 'a b'"), ({"target": "cam1"}, "must be device/<id> or group/<name>"),
    ({"target": "device/a/b"}, "must be device/<id>"),
])
def test_bad_arguments_say_which(kwargs, match):
    args = {"target": CAM, **kwargs}
    with pytest.raises(SignatureError, match=match):
        sign_message(BODY, KEY, **args)
    with pytest.raises(SignatureError, match="no signing key"):
        sign_message(BODY, b"", CAM)


def test_default_serials_are_the_time_in_ms_and_always_grow():
    import time
    serials = [new_serial() for _ in range(1000)]
    assert serials == sorted(set(serials))
    assert abs(serials[0] - time.time() * 1000) < 60_000


def test_replay_guard_new_duplicate_replay_and_reuse(tmp_path):
    path = tmp_path / "state" / "config-serials.json"
    guard = ReplayGuard(path)
    m5 = verify_message(sign_message(BODY, KEY, CAM, serial=5, signer="ops"), KEY, CAM)
    assert guard.check(m5) == "new"
    guard.record(m5)
    assert guard.check(m5) == "duplicate"                       # retained / group message again
    m4 = verify_message(sign_message(BODY, KEY, CAM, serial=4, signer="ops"), KEY, CAM)
    with pytest.raises(ReplayError, match=r"replay rejected: serial 4 .* older than the last one applied \(5\)"):
        guard.check(m4)
    other = verify_message(sign_message(b"stats: {interval_s: 5}\n", KEY, CAM, serial=5, signer="ops"), KEY, CAM)
    with pytest.raises(ReplayError, match="already used by another message"):
        guard.check(other)
    # serials are counted per signer and per target
    assert guard.check(verify_message(sign_message(BODY, KEY, CAM, serial=1, signer="fleet"), KEY, CAM)) == "new"
    grp = verify_message(sign_message(BODY, KEY, "group/lobby", serial=1, signer="ops"), KEY, "group/lobby")
    assert guard.check(grp) == "new"
    # the record is a file: a new process (a new guard) knows it
    again = ReplayGuard(path)
    assert again.check(m5) == "duplicate" and again.last(m5).serial == 5
    with pytest.raises(ReplayError):
        again.check(m4)


def test_a_damaged_record_refuses_rather_than_accepting_replays(tmp_path):
    path = tmp_path / "config-serials.json"
    path.write_text("{not json")
    m = verify_message(sign_message(BODY, KEY, CAM, serial=5), KEY, CAM)
    with pytest.raises(SignatureError, match="is damaged"):
        ReplayGuard(path).check(m)


def test_outcome_is_kept(tmp_path):
    guard = ReplayGuard(tmp_path / "s.json")
    m = verify_message(sign_message(BODY, KEY, CAM, serial=9), KEY, CAM)
    guard.record(m, "rolled back: broker not connected within 10 s")
    assert guard.last(m).outcome.startswith("rolled back")


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_the_openssl_recipe_of_docs_config_md(tmp_path):
    # the exact shell lines of docs/config.md, "Signing messages", for signing without fer-edge
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    start = doc.index("secret='the shared secret'\n")
    script = doc[start:doc.index("mosquitto_pub", start)]
    (tmp_path / "patch.yaml").write_bytes(BODY)
    subprocess.run(["bash", "-c", script.replace("lobby-cam-1", "cam1")], cwd=tmp_path, check=True)
    s = verify_message((tmp_path / "signed.yaml").read_bytes(), b"the shared secret", CAM)
    assert s.signer == "ops" and s.body == BODY
    import time
    assert abs(s.serial - time.time() * 1000) < 60_000           # the time in ms


def test_a_change_left_on_probation_is_found_again(tmp_path):
    # the service records "probation" when it applies; a restart before the verdict finds it
    guard = ReplayGuard(tmp_path / "s.json")
    m = verify_message(sign_message(BODY, KEY, CAM, serial=11, signer="ops"), KEY, CAM)
    guard.record(m, "probation")
    again = ReplayGuard(tmp_path / "s.json")
    assert again.pending() == [m.stream]
    again.set_outcome(m.stream, "rolled back: the service stopped before the change proved itself")
    assert again.pending() == [] and again.check(m) == "duplicate"      # the serial stays used
