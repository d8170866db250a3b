"""`fer-edge fleet` telling the operator the truth (issue 27), against real `fer-edge run` services on a real mosquitto:
names first and a refused change's reason in `list`, `show` with its layers and its difference from the file, a
one-key section patch, an immediate answer for a stopped device, the rollback report, readable filtered events.

Three services (signatures required) read a paced folder of two small images, so they cost little:
  fa  "Front door" @ Lobby, groups [shop]     detector: haar in its file
  fb  groups [shop]                          no detector section in its file (the default, blazeface)
  fc  groups [shop]                          stopped (SIGTERM) before the group push
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402

from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402

pytestmark = [pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto"),
              pytest.mark.slow]
SECRET = "fleet-truth-secret"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    import cv2

    tmp = tmp_path_factory.mktemp("fleet-truth")
    broker = Broker().start()
    frames = tmp / "frames"
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"{k}.png"), np.full((120, 160, 3), 40 + 100 * k, np.uint8))
    services = {}
    try:     # a rig that fails to come up leaves no service or broker running after it
        for dev, device, detector in (("fa", {"name": "Front door", "location": "Lobby"}, {"type": "haar"}),
                                      ("fb", {}, None), ("fc", {}, {"type": "haar"})):
            folder = tmp / dev
            (folder / "state").mkdir(parents=True)
            cfg = {"device": {"id": dev, "groups": ["shop"], **device},
                   "source": {"uri": str(frames), "loop": True, "pace": True, "fps": 2},
                   "mqtt": broker.mqtt_config(), "queue": {"path": str(folder / "queue.db")},
                   "service": {"remote_config": {"enabled": True, "require_signature": True}},
                   "stats": {"interval_s": 1.0}, "events": {"summary_interval_s": 2.0}}
            if detector:
                cfg["detector"] = detector
            services[dev] = ServiceProcess(write_config(folder / "config.yaml", cfg),
                                           env={"FER_EDGE_CONFIG_SECRET": SECRET, "STATE_DIRECTORY": str(folder / "state")})
        for service in services.values():
            service.wait_ready(90)
        layers = broker.subscribe_collect("fer-edge/+/config/layers")
        assert layers.wait_for(lambda m: {x.topic.split("/")[1] for x in m} >= set(services), timeout=30)

        def fleet(*args: str) -> subprocess.CompletedProcess:
            env = {**os.environ, "PYTHONPATH": str(REPO), "FER_EDGE_CONFIG_SECRET": SECRET}
            return subprocess.run([sys.executable, "-m", "edge.cli", "fleet", "--port", str(broker.port), *args],
                                  cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

        yield {"broker": broker, "services": services, "fleet": fleet, "tmp": tmp}
    finally:
        for service in services.values():
            service.close()
        broker.close()


def patch(rig, text: str, name: str = "patch.yaml") -> str:
    path = rig["tmp"] / name
    path.write_text(text)
    return str(path)


def test_list_names_first_and_a_refused_changes_reason_until_a_later_success(rig):
    fleet = rig["fleet"]
    out = fleet("list")
    assert out.returncode == 0 and "Front door (fa)" in out.stdout and "Lobby" in out.stdout, out.stdout
    bad = fleet("push", patch(rig, "tracking:\n  ema_half_life_s: -1\n"), "--device", "fa")
    assert bad.returncode == 1 and "fa: rejected" in bad.stdout
    out = fleet("list")
    assert "REJECTED" in out.stdout and "last change REJECTED" in out.stdout and "tracking.ema_half_life_s" in out.stdout
    rows = {r["device"]: r for r in json.loads(fleet("list", "--json").stdout)}
    assert "tracking.ema_half_life_s" in rows["fa"]["config_error"] and rows["fa"]["name"] == "Front door"
    good = fleet("push", patch(rig, "tracking:\n  ema_half_life_s: 0.7\n"), "--device", "fa")
    assert good.returncode == 0, good.stdout + good.stderr
    out = fleet("list")
    assert "REJECTED" not in out.stdout, out.stdout


def test_a_one_key_section_patch_and_show_with_layers_and_the_difference_from_the_file(rig):
    fleet = rig["fleet"]
    out = fleet("push", patch(rig, "detector:\n  min_score: 0.5\n"), "--device", "fb")    # fb's file has no detector
    assert out.returncode == 0 and "fb: applied" in out.stdout, out.stdout + out.stderr
    time.sleep(0.5)
    out = fleet("show", "fb")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "layers, lowest first" in text and "group shop: (nothing)" in text
    assert "device (its own topic): detector.min_score: 0.5" in text
    assert "detector.min_score: (not set) -> 0.5   (device (its own topic))" in text
    data = json.loads(fleet("show", "fb", "--json").stdout)
    assert data["effective"]["detector"] == {"type": "blazeface", "min_score": 0.5}
    assert data["effective"]["mqtt"].get("password") in (None, "***")                   # never a secret
    listing = {r["device"]: r for r in json.loads(fleet("list", "--json").stdout)}
    assert data["version"] == listing["fb"]["config_version"]
    print("\n" + text)


def test_rollback_reports_what_it_undid_and_warns_when_a_group_splits(rig):
    fleet = rig["fleet"]
    assert fleet("push", patch(rig, "schedule:\n  detect_every: 3\n"), "--device", "fb").returncode == 0
    out = fleet("rollback", "--device", "fb")
    assert out.returncode == 0, out.stdout + out.stderr
    listing = {r["device"]: r for r in json.loads(fleet("list", "--json").stdout)}
    assert "undid schedule.detect_every: 3 -> (not set)" in out.stdout, out.stdout
    assert f"now running config {listing['fb']['config_version'][:12]}" in out.stdout
    print("\n" + out.stdout)
    # a group change, then one member rolled back alone: the report says the group now runs two configs
    group = fleet("push", patch(rig, "schedule:\n  detect_every: 4\n"), "--group", "shop")
    assert "fa: applied" in group.stdout and "fb: applied" in group.stdout, group.stdout
    out = fleet("rollback", "--device", "fa")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "undid schedule.detect_every: 4" in out.stdout
    assert "NOTE: this undid a change of group shop on fa only" in out.stdout and "fb" in out.stdout, out.stdout
    print(out.stdout)


def test_a_push_answers_at_once_for_a_stopped_device(rig):
    fleet = rig["fleet"]
    rig["services"]["fc"].stop()
    time.sleep(1.0)
    started = time.monotonic()
    out = fleet("push", patch(rig, "tracking:\n  ema_half_life_s: 0.75\n"), "--group", "shop", "--timeout", "30")
    took = time.monotonic() - started
    assert out.returncode == 1, out.stdout + out.stderr
    assert "fc: not running: stopped since" in out.stdout and "fa: applied" in out.stdout, out.stdout
    assert took < 15, f"the push waited {took:.1f} s"          # fa and fb answer in about a second; fc is not awaited
    print(f"\n{out.stdout}(took {took:.1f} s)")


def test_events_readable_and_filtered_by_type_and_group(rig):
    out = rig["fleet"]("events", "--readable", "--type", "summary", "--group", "shop", "--count", "3", "--timeout", "60")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all("summary of" in line for line in lines), lines
    assert all(("Front door (fa)" in line) or (" fb " in line) for line in lines), lines
    bad = rig["fleet"]("events", "--type", "smile")
    assert bad.returncode == 2 and "unknown event type" in bad.stderr
