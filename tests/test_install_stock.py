"""deploy/install.sh from a stock interpreter: a brand-new virtual environment's Python, as a fresh machine has it.

A fresh ``python -m venv`` has only what ensurepip brings (Python 3.11: pip 23.2 and setuptools
65.5, no ``wheel``; 3.12+: no setuptools at all), which is what Raspberry Pi OS and JetPack
give a new venv too. install.sh must build and install fer-edge from there, and its venv must see
the packages of the interpreter it was given (also when that interpreter is itself in a venv).
"""
from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "deploy" / "install.sh"


def fresh_venv(where: Path) -> Path:
    """A new virtual environment with nothing but ensurepip's packages; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True, timeout=120)
    return where / "bin" / "python"


def site_dir(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=60)
    return Path(out.stdout.strip())


def install(prefix: Path, python: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL), "--prefix", str(prefix), "--skip-models", "--board", "pi",
                           "--python", str(python), *extra], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_dry_run_venv_sees_the_packages_of_a_venv_interpreter(tmp_path):
    # The test's own interpreter may be a venv made from a bare base Python (that is how a fresh
    # machine runs the tests): install.sh's venv must see the venv's packages, not the base's.
    base = fresh_venv(tmp_path / "base")
    base_site = site_dir(base)
    (base_site / "fer_edge_marker_pkg.py").write_text("WHERE = 'the calling venv'\n")
    # the dependencies: whatever this test's interpreter sees
    (base_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    res = install(tmp_path / "root", base)          # the dry run's default: --no-deps --no-build-isolation
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    python = tmp_path / "root/opt/fer-edge/venv/bin/python"
    out = subprocess.run([str(python), "-c", "import fer_edge_marker_pkg as m, edge; print(m.WHERE); print(edge.__file__)"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    where, edge_file = out.stdout.splitlines()
    assert where == "the calling venv"
    assert edge_file.startswith(str(tmp_path / "root/opt/fer-edge/venv")), "fer-edge must be the venv's own copy"


@pytest.mark.slow
def test_real_install_from_a_stock_python(tmp_path):
    # What `sudo deploy/install.sh` does on a new board, into a tree: build isolation, dependencies
    # from the package index (the Pi's numpy<2 constraint applied), from a venv that has no `wheel`.
    base = fresh_venv(tmp_path / "stock")
    probe = subprocess.run([str(base), "-c", "import importlib.util as u; print(bool(u.find_spec('wheel')))"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "False", "ensurepip brought `wheel`: this is not a stock venv"
    res = install(tmp_path / "root", base, "--pip-args", "")
    if res.returncode and "connection" in (res.stdout + res.stderr).lower():
        pytest.skip("the package index is not reachable: " + res.stderr.strip().splitlines()[-1])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    venv = tmp_path / "root/opt/fer-edge/venv/bin"
    out = subprocess.run([str(venv / "python"), "-c", "import numpy, edge; print(numpy.__version__)"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split(".")[0]) < 2, "the Pi's numpy<2 constraint was not applied"
    ok = subprocess.run([str(venv / "fer-edge"), "config", "validate", str(tmp_path / "root/etc/fer-edge/config.yaml")],
                        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
