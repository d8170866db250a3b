"""Issue 25.3 and 25.4: what an unsigned remote message can never do, on a device with require_signature: false.

A real mosquitto, a real `fer-edge run` with secrets in its environment, and a subscriber on every
topic (`#`): no environment value may appear in any message or in the log, `${VAR}` in a remote
message is never expanded, and nothing that decides who may change the device or what leaves it
(remote config, MQTT destination/credentials/TLS, device id and groups, snapshots, preview binding,
model) can be changed unsigned - so the secret_env trick that once let a $HOME-signed message turn
snapshots on fails at its first step, and no image leaves the device.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from conftest import REPO  # noqa: E402
from conftest_service import write_config  # noqa: E402
from test_remote_hardening import DEVICE, SECRET, Rig, needs_mosquitto  # noqa: E402

from edge.control.signing import device_target, sign_message  # noqa: E402

PASSWORD = f"pw-{uuid.uuid4().hex[:12]}"          # FER_EDGE_MQTT_PASSWORD: the broker does not even need it
OTHER = f"other-{uuid.uuid4().hex[:12]}"          # a variable nobody refers to


class SecretRig(Rig):
    """Rig whose service also has FER_EDGE_MQTT_PASSWORD and another secret in its environment."""

    def service_env(self) -> dict[str, str]:
        return super().service_env() | {"FER_EDGE_MQTT_PASSWORD": PASSWORD, "SOME_TOKEN": OTHER}

    def start(self) -> None:
        self.everything = getattr(self, "everything", None) or self.broker.subscribe_collect("#")
        super().start()

    def leaked(self) -> list[str]:
        secrets = (PASSWORD, OTHER, SECRET, os.environ.get("HOME", "/root"))
        found = [f"{m.topic}: {s}" for m in self.everything.messages for s in secrets[:3] if s.encode() in m.payload]
        found += [f"log: {s}" for s in secrets[:3] if s in self.service.stderr()]
        return found


@pytest.mark.slow
@needs_mosquitto
def test_unsigned_messages_never_expand_environment_variables(tmp_path):
    r = SecretRig(tmp_path, require_signature=False)
    try:
        state = r.send(b'schedule:\n  detect_every: "${FER_EDGE_MQTT_PASSWORD}"\n')
        assert state["ok"] is False and "schedule.detect_every" in state["error"], state
        assert "${FER_EDGE_MQTT_PASSWORD}" in state["error"], "the text as sent, not its value"
        # a free-text value that would have been accepted, and published in stats
        assert r.send(b'device:\n  name: "${SOME_TOKEN} and ${FER_EDGE_MQTT_PASSWORD:-x}"\n')["ok"] is True
        assert r.stats.wait_for(lambda m: any(str(x.json().get("name", "")).startswith("${SOME")
                                              for x in m), 15), r.stats.json()[-1:]
        state = r.send(b'mqtt:\n  prefix: "${SOME_TOKEN}"\n')
        assert state["ok"] is False and "refused unsigned" in state["error"]
        assert r.leaked() == [], r.leaked()
    finally:
        r.close()


@needs_mosquitto
def test_a_local_file_value_from_the_environment_is_never_shown_in_an_error(tmp_path):
    config = write_config(tmp_path / "config.yaml", {"device": {"id": "env1"},
                                                     "schedule": {"detect_every": "${FER_EDGE_MQTT_PASSWORD}"}})
    res = subprocess.run([sys.executable, "-m", "edge.cli", "config", "validate", str(config)], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO), "FER_EDGE_MQTT_PASSWORD": PASSWORD},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "schedule.detect_every" in res.stderr, res.stderr
    assert PASSWORD not in res.stdout + res.stderr and "environment variable, not shown" in res.stderr, res.stderr


@pytest.mark.slow
@needs_mosquitto
def test_unsigned_messages_cannot_change_who_may_change_the_device_or_what_leaves_it(tmp_path):
    r = SecretRig(tmp_path, require_signature=False)
    try:
        version = r.running_version()
        events = r.broker.subscribe_collect(f"fer-edge/{DEVICE}/events")
        # the audit's sequence: unsigned secret_env -> HOME, then a patch signed with $HOME's value
        state = r.send(b"service:\n  remote_config:\n    secret_env: HOME\n")
        assert state["ok"] is False and "service.remote_config.secret_env" in state["error"], state
        assert "refused unsigned" in state["error"] and "signed" in state["error"]
        home = os.environ.get("HOME", "/root").encode()
        state = r.send(sign_message(b"events:\n  snapshots:\n    enabled: true\n", home, device_target(DEVICE),
                                    serial=5, signer="ops"))
        assert state["ok"] is False, state
        for body, key in ((b"service:\n  remote_config:\n    require_signature: true\n",
                           "service.remote_config.require_signature"),
                          (b"mqtt:\n  tls:\n    enabled: true\n", "mqtt.tls.enabled"),
                          (b"mqtt:\n  username: someone\n", "mqtt.username"),
                          (b"mqtt:\n  host: 203.0.113.9\n", "mqtt.host"),
                          (b"device:\n  groups: [everyone]\n", "device.groups"),
                          (b"events:\n  snapshots:\n    enabled: true\n", "events.snapshots.enabled"),
                          (b"preview:\n  mjpeg:\n    host: 0.0.0.0\n", "preview.mjpeg.host"),
                          (b"model:\n  path: /tmp/other.tflite\n", "model.path")):
            state = r.send(body)
            assert state["ok"] is False and key in state["error"] and "refused unsigned" in state["error"], state
        assert r.running_version() == version
        assert r.send(b"schedule:\n  detect_every: 2\n")["ok"] is True        # harmless ones still work
        assert events.wait_for(3, timeout=30)
        assert not [e for e in events.json() if "snapshot" in e], "an image left the device"
        assert r.leaked() == [], r.leaked()
        # signed with the real secret, the same change is accepted
        assert r.send(sign_message(b"mqtt:\n  keepalive_s: 40\n  username: someone\n", SECRET.encode(),
                                   device_target(DEVICE), serial=10, signer="ops"))["ok"] is True
    finally:
        r.close()
