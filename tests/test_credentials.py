"""Issue 25.8: secrets through systemd's LoadCredential= ($CREDENTIALS_DIRECTORY), not an environment file.

The real `fer-edge run` process against a real mosquitto that requires a password: the password
exists only as a credential file, the service logs in with it, and it appears nowhere in the log.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO  # noqa: E402
from conftest_service import write_config  # noqa: E402
from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402

from edge.service.credentials import import_credentials  # noqa: E402

PASSWORD = "cred-only-pw-5be1c0"


def test_import_credentials_sets_only_unset_names_and_skips_what_is_not_a_secret(tmp_path):
    (tmp_path / "FER_EDGE_MQTT_PASSWORD").write_text(PASSWORD + "\n")
    (tmp_path / "FER_EDGE_CONFIG_SECRET").write_text("")             # empty: not set
    (tmp_path / "ALREADY").write_text("from-credential")
    (tmp_path / "lower-case").write_text("x")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "ALREADY": "from-env"}
    assert import_credentials(env) == ["FER_EDGE_MQTT_PASSWORD"]
    assert env["FER_EDGE_MQTT_PASSWORD"] == PASSWORD and env["ALREADY"] == "from-env"
    assert "FER_EDGE_CONFIG_SECRET" not in env and "lower-case" not in env
    assert import_credentials({}) == []


@pytest.mark.slow
@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed (apt install mosquitto)")
def test_service_logs_in_with_a_password_that_exists_only_as_a_credential(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "FER_EDGE_MQTT_PASSWORD").write_text(PASSWORD)
    with Broker(users={"dev": PASSWORD}) as broker:
        events = broker.subscribe_collect("fer-edge/cred1/events")
        mqtt = broker.mqtt_config()
        mqtt.pop("password", None)
        config = write_config(tmp_path / "config.yaml", {
            "device": {"id": "cred1"}, "mqtt": {**mqtt, "username": "dev"},
            "queue": {"path": str(tmp_path / "q.db")}, "events": {"summary_interval_s": 1.0}})
        env = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
        env.update(PYTHONPATH=str(REPO), CREDENTIALS_DIRECTORY=str(creds))
        res = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--demo", "--config", str(config)], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
        assert events.wait_for(1, timeout=20), res.stderr[-3000:]
    assert "credentials from systemd: FER_EDGE_MQTT_PASSWORD" in res.stderr
    assert PASSWORD not in res.stderr + res.stdout
