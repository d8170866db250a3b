"""`pip install .` into an empty folder: the `edge` package and its console script, nothing else at top level.

The checkout's tracked files are copied first (a fresh clone, and no build litter in the working tree),
then installed without dependencies (they are this machine's already). The installed `fer-edge run`,
started outside any checkout, must find the shipped emotion model inside the package.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_shared

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("clone")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("target")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def _env(target: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(target)}


def test_only_edge_and_its_console_script_are_installed(target):
    top = sorted(p.name for p in target.iterdir())
    assert [n for n in top if not n.endswith(".dist-info")] == ["bin", "edge"], top
    assert (target / "bin" / "fer-edge").is_file()
    assert not (target / "models").exists()
    assert (target / "edge" / "model" / "fer_emotion_int8.tflite").is_file()
    assert (target / "edge" / "model" / "fer_emotion_int8.json").is_file()
    assert (target / "edge" / "schemas" / "event.schema.json").is_file()


def test_installed_package_finds_its_model(target, tmp_path):
    code = "import edge, edge.config.model as m; print(edge.__file__); print(m.SHIPPED_MODEL.is_file())"
    res = subprocess.run([sys.executable, "-c", code], env=_env(target), cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    where, found = res.stdout.split()
    assert where.startswith(str(target)) and found == "True"


def test_installed_fer_edge_run_publishes_classified_events(target, tmp_path):
    video = require_shared("video", "single_face.mp4")
    config = tmp_path / "config.yaml"
    config.write_text(f"device: {{id: wheel}}\nsource: {{uri: '{video}'}}\ndetector: {{type: haar}}\n")
    res = subprocess.run([str(target / "bin" / "fer-edge"), "run", "--config", str(config)], env=_env(target),
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    events = [json.loads(line) for line in res.stdout.splitlines()]
    appeared = [e for e in events if e["type"] == "face_appeared"]
    assert appeared and appeared[0]["device"] == "wheel" and appeared[0]["label"], res.stdout[:500]
