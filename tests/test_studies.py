"""models/studies/ (issue 28): earlier models' trainers and the diagnostics stay runnable; models.train points there.

``python -m models.train`` without ``--recipe`` used to train 1.0.0's network; it now names the
trainer's new place in one line and exits 2 (models/README.md). Whether the main path imports the
studies is checked in tests/test_structure.py; the studies' own behaviour in tests/test_distill.py
and tests/test_model.py.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

#: every module of models/studies/, by the options its --help must list (what it had before the move)
STUDIES = {
    "train_v1": ("--out", "--epochs", "--init", "--logit-adjust", "--aux-presence", "--no-export"),
    "select_tta": ("--run", "--data", "--limit"),
    "distill": ("--teachers", "--weights", "--ckplus-repeat", "--init", "--mixup", "--time-budget"),
    "soup": ("--run", "--out", "--alphas", "--tune-on-odd", "--max-valid-drop"),
    "frontier": ("--run", "--floors", "--alphas"),
    "kd_view": ("--recipe", "--run", "--cache", "--sizes"),
}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_every_study_is_listed_here():
    found = {p.stem for p in (REPO / "models" / "studies").glob("*.py") if p.stem != "__init__"}
    assert found == set(STUDIES)


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_a_study_runs_as_a_module_with_its_options(name):
    out = _run(f"models.studies.{name}", "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    for option in STUDIES[name]:
        assert option in out.stdout, (name, option)


def test_train_without_a_recipe_names_the_earlier_trainers_and_exits_2():
    out = _run("models.train", "--out", "models/runs/main", "--epochs", "30")    # a 1.0.0 command line
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("models.train: --recipe FILE is required")
    assert "python -m models.studies.train_v1" in lines[0] and "python -m models.studies.distill" in lines[0]


def test_train_help_lists_the_recipe_options_and_the_earlier_trainers():
    out = _run("models.train", "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--recipe RECIPE" in out.stdout and "--resume" in out.stdout and "--ship" in out.stdout
    assert "python -m models.studies.train_v1" in out.stdout.strip().splitlines()[-1]
