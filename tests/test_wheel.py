"""`pip install .` into an empty folder: the `edge` package and its console script, nothing else at top level.

The checkout's tracked files are copied first (a fresh clone, and no build litter in the working tree),
then installed without dependencies (they are this machine's already). The installed `fer-edge run`,
started outside any checkout, must find the shipped emotion model inside the package.
"""
from __future__ import annotations

import json
import os
import re
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


def _readme_commands() -> list[tuple[str, str]]:
    """(command, the row's command cell) for each row of the README's command table."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("## Commands"):].split("\n\n")[1]
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| `fer-edge ")]
    return [(re.match(r"\| `fer-edge ([a-z-]+)", row).group(1), row) for row in rows]


def _help(target: Path, cwd: Path, *words: str) -> str:
    res = subprocess.run([str(target / "bin" / "fer-edge"), *words, "--help"], env=_env(target), cwd=cwd,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"fer-edge {' '.join(words)} --help: {res.stderr[-1500:]}"
    return res.stdout


def test_every_readme_command_answers_help_with_the_options_it_documents(target, tmp_path):
    # run from an empty folder: nothing of the checkout is reachable, only the installed package
    commands = _readme_commands()
    assert {c for c, _ in commands} >= {"run", "detect", "recognize", "eval", "eval-faces", "dashboard", "fleet",
                                        "config"}, commands
    for command, row in commands:
        text = _help(target, tmp_path, command)
        for sub in re.findall(r"^    ([a-z][a-z-]*)(?:\s|$)", text.split("positional arguments:")[-1].split("options:")[0],
                              re.M):               # the actions of `config`, `fleet`
            text += _help(target, tmp_path, command, sub)
        documented = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", row))
        missing = sorted(o for o in documented if not re.search(rf"(?<![\w-]){o}\b", text))
        assert not missing, f"`fer-edge {command}`: the README gives {missing}, its --help does not"


def test_installed_eval_lists_the_model_argument_and_png_and_names_the_data_it_looked_for(target, tmp_path):
    text = _help(target, tmp_path, "eval")
    assert re.search(r"^\s+model\s", text, re.M) and "--png" in text and "--data" in text, text
    res = subprocess.run([str(target / "bin" / "fer-edge"), "eval", "--limit", "5", "--no-latency"],
                         env=_env(target), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    looked = (tmp_path.parent / "shared" / "data" / "ferplus" / "ferplus_eval.npz").resolve()
    assert res.returncode == 3 and f"FER+ archive not found: {looked} (give the shared data folder with --data DIR)" \
        in res.stderr, res.stderr
    res = subprocess.run([str(target / "bin" / "fer-edge"), "eval-faces", "--data", "elsewhere"],
                         env=_env(target), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and str(tmp_path / "elsewhere" / "faces" / "taiwanese_fed" / "labels.csv") \
        in res.stderr and "site-packages" not in res.stderr, res.stderr
