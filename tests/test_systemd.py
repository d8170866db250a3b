"""The systemd unit: what it must say, `systemd-analyze verify` accepts it, `security` rates it <= 3.0."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "fer-edge.service"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
needs_analyze = pytest.mark.skipif(not Path(ANALYZE).exists(), reason="systemd-analyze not installed")
MAX_EXPOSURE = 3.0


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_says_what_the_issue_asks():
    d = directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["Restart"] == ["on-failure"]
    assert d["User"] == ["fer-edge"]
    assert d["ExecStart"] == ["/opt/fer-edge/venv/bin/fer-edge run --config /etc/fer-edge/config.yaml"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "DevicePolicy": "closed", "NotifyAccess": "main"}.items():
        assert d[key] == [value], key
    # written: only the state directory (queue, models, remote config); /etc/fer-edge stays read-only
    assert d["ReadWritePaths"] == ["/var/lib/fer-edge"]
    # devices: the camera (V4L2, media controller, DMA heaps for libcamera) and nothing else
    allowed = [v.split()[0] for v in d["DeviceAllow"]]
    assert all(a in ("char-video4linux", "char-media") or a.startswith("/dev/dma_heap/") for a in allowed), allowed
    assert "char-video4linux" in allowed


def _verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable here (verify checks the program exists)."""
    exe = tmp_path / "fer-edge"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    unit = tmp_path / "fer-edge.service"
    unit.write_text(UNIT.read_text().replace("/opt/fer-edge/venv/bin/fer-edge", str(exe)))
    return unit


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    unit = _verifiable_copy(tmp_path)
    res = subprocess.run([ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    print(f"\nsystemd-analyze verify: rc={res.returncode} {res.stdout.strip()} {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    assert "fer-edge.service" not in res.stderr, res.stderr       # no warning about our unit


@needs_analyze
def test_systemd_analyze_security_rates_it_at_most_3(tmp_path):
    unit = tmp_path / "fer-edge.service"
    shutil.copy(UNIT, unit)
    res = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True,
                         text=True, timeout=60)
    match = re.search(r"Overall exposure level for fer-edge\.service: (\d+(?:\.\d+)?) (\w+)", res.stdout)
    assert match, res.stdout[-2000:] + res.stderr
    score = float(match.group(1))
    worst = [ln.split()[1] for ln in res.stdout.splitlines() if ln.startswith("✗")]
    print(f"\nsystemd-analyze security: exposure {score} {match.group(2)} (limit {MAX_EXPOSURE}); "
          f"not set: {', '.join(worst)}")
    assert score <= MAX_EXPOSURE


def test_secrets_come_as_credentials_and_the_unit_keeps_what_a_camera_needs():
    """Issue 25.8: LoadCredential= instead of an environment file; tightened where the camera stack allows."""
    d = directives(UNIT.read_text())
    assert "EnvironmentFile" not in d
    creds = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in d["LoadCredential"]}
    assert creds == {n: f"/etc/fer-edge/credentials/{n}" for n in ("FER_EDGE_MQTT_PASSWORD", "FER_EDGE_CONFIG_SECRET")}
    assert d["UMask"] == ["0077"] and d["PrivateUsers"] == ["yes"]
    # kept on purpose: /proc/cpuinfo for TFLite's XNNPACK, netlink for libcamera's udev, the network for MQTT/RTSP
    assert "ProcSubset" not in d and "PrivateNetwork" not in d
    assert set(d["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


@needs_analyze
def test_exposure_is_at_most_1_3(tmp_path):
    """Issue 25.8: 1.5 before (EnvironmentFile, UMask=0027, no PrivateUsers), 1.3 after."""
    unit = tmp_path / "fer-edge.service"
    shutil.copy(UNIT, unit)
    res = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True,
                         text=True, timeout=60)
    match = re.search(r"Overall exposure level for fer-edge\.service: (\d+(?:\.\d+)?)", res.stdout)
    assert match and float(match.group(1)) <= 1.3, res.stdout[-1500:]
