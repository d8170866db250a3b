"""deploy/install.sh --prefix: a dry-run install into a temporary tree, no root, then the installed fer-edge works."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "deploy" / "install.sh"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("root")
    # --python: the interpreter running the tests (a fresh machine runs them in a venv of its own,
    # whose packages the installed venv must see; `python3` on PATH may be a bare base Python).
    res = subprocess.run(["bash", str(INSTALL), "--prefix", str(prefix), "--skip-models", "--board", "pi",
                          "--python", sys.executable],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return prefix, res.stdout


@pytest.mark.slow
def test_tree_is_complete(installed):
    prefix, out = installed
    exe = prefix / "opt/fer-edge/venv/bin/fer-edge"
    assert exe.is_file() and os.access(exe, os.X_OK)
    assert (prefix / "etc/fer-edge/config.yaml").read_bytes() == (ROOT / "config.yaml").read_bytes()
    creds = prefix / "etc/fer-edge/credentials"                # secrets: root only, one file each (issue 25.8)
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    for name in ("FER_EDGE_MQTT_PASSWORD", "FER_EDGE_CONFIG_SECRET"):
        assert stat.S_IMODE((creds / name).stat().st_mode) == 0o600
    assert not (prefix / "etc/fer-edge/env").exists()
    assert (prefix / "var/lib/fer-edge/models").is_dir()
    unit = (prefix / "etc/systemd/system/fer-edge.service").read_text()
    assert f"ExecStart={prefix}/opt/fer-edge/venv/bin/fer-edge run --config {prefix}/etc/fer-edge/config.yaml" in unit
    assert f"LoadCredential=FER_EDGE_MQTT_PASSWORD:{creds}/FER_EDGE_MQTT_PASSWORD" in unit
    # board specifics and the steps that need root are printed, not run
    assert "would run: apt-get install -y --no-install-recommends python3-venv python3-pip python3-picamera2" in out
    assert "would run: useradd --system" in out and "would run: systemctl enable fer-edge.service" in out
    assert (prefix / "opt/fer-edge/constraints.txt").read_text().strip() == "numpy<2"


@pytest.mark.slow
def test_installed_fer_edge_validates_the_installed_config(installed, tmp_path):
    prefix, _ = installed
    exe = str(prefix / "opt/fer-edge/venv/bin/fer-edge")
    config = prefix / "etc/fer-edge/config.yaml"
    ok = subprocess.run([exe, "config", "validate", str(config)], capture_output=True, text=True, cwd=tmp_path,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"{config}: OK (version ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("service:\n  watchdog:\n    stall_timeout_s: -1\n")
    res = subprocess.run([exe, "config", "validate", str(bad)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert res.returncode == 2 and "service.watchdog.stall_timeout_s" in res.stderr


@pytest.mark.slow
def test_installed_package_is_the_venv_copy(installed, tmp_path):
    prefix, _ = installed
    python = prefix / "opt/fer-edge/venv/bin/python"
    res = subprocess.run([str(python), "-c", "import edge, edge.classify as c; print(edge.__file__); "
                          "print(c.SHIPPED_MODEL.is_file())"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    where, model_there = res.stdout.split()
    assert where.startswith(str(prefix / "opt/fer-edge/venv"))
    assert model_there == "True", "the emotion model must be installed with the package"


@pytest.mark.slow
@pytest.mark.skipif(not Path(ANALYZE).exists(), reason="systemd-analyze not installed")
def test_installed_unit_verifies(installed):
    prefix, _ = installed
    unit = prefix / "etc/systemd/system/fer-edge.service"
    res = subprocess.run([ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "fer-edge.service" not in res.stderr, res.stderr


@pytest.mark.slow
def test_reinstall_keeps_an_edited_config(installed):
    prefix, _ = installed
    config = prefix / "etc/fer-edge/config.yaml"
    edited = config.read_text() + "\n# edited on the device\n"
    config.write_text(edited)
    res = subprocess.run(["bash", str(INSTALL), "--prefix", str(prefix), "--skip-models", "--no-start"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "config: keeping existing" in res.stdout and config.read_text() == edited
    assert "systemctl restart" not in res.stdout


def test_install_without_root_or_prefix_refuses():
    cmd = ["bash", str(INSTALL)]
    if os.geteuid() == 0:        # drop to nobody to see what a normal user gets
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
    assert res.returncode == 2 and "run as root (sudo), or use --prefix DIR" in res.stderr, res.stderr
