"""Two services on one host never share a state directory by accident: the second refuses, in one line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.service.state_lock import StateDirectoryBusy, hold_state_directory

ROOT = Path(__file__).resolve().parent.parent


def test_second_holder_is_told_who_has_it(tmp_path: Path) -> None:
    first = hold_state_directory("lobby", tmp_path)
    with pytest.raises(StateDirectoryBusy) as err:
        hold_state_directory("kiosk", tmp_path)
    assert f"device lobby, pid {os.getpid()}" in str(err.value)
    assert "StateDirectory=fer-edge-kiosk" in str(err.value)
    first.close()                                   # released: the next one gets it
    hold_state_directory("kiosk", tmp_path).close()


@pytest.mark.slow
def test_a_second_service_on_the_same_state_directory_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("device: {id: one}\nmqtt: {host: ''}\nstats: {interval_s: 0}\ndetector: {type: haar}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), STATE_DIRECTORY=str(tmp_path / "state"))
    cmd = [sys.executable, "-m", "edge.cli", "run", "--demo", "--config", str(config)]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stderr:                     # wait until it runs
            if "running:" in line:
                break
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        errors = [line for line in second.stderr.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1 and "is in use by another fer-edge service (device one, pid" in errors[0], errors
        # its own state directory: it runs beside the first
        env_own = dict(env, STATE_DIRECTORY=str(tmp_path / "state-two"))
        third = subprocess.Popen(cmd, env=env_own, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert any("running:" in line for line in third.stderr), "the service with its own state did not start"
        finally:
            third.terminate()
            third.wait(timeout=30)
    finally:
        first.terminate()
        first.wait(timeout=30)
