"""bench/face_size.py in its quick mode: the tables' shape, and full size equals the pipeline run directly."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, require_shared

from edge.classify import EmotionModel
from edge.config.model import SHIPPED_MODEL

SCRIPT = REPO / "bench" / "face_size.py"


def face_size(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          cwd=REPO, check=False)


class RuntimeScores:
    """A model's scores for face crops as the runtime computes them (the test's own reference, not bench code)."""

    def __init__(self, path: Path) -> None:
        self.model = EmotionModel(path, threads=1)

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.model.normalize(self.model.predict(self.model.preprocess(crops)))


def table_rows(stdout: str, heading: str) -> list[str]:
    """The markdown rows printed under ``heading``."""
    assert heading in stdout, stdout
    return stdout.split(heading, 1)[1].strip().split("\n\n")[0].splitlines()


@pytest.mark.slow   # 5-15 s: a model, the detectors and 6 photographs at three sizes twice
@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # 6 photographs: no even-numbered performer in them
def test_quick_mode_prints_a_table_per_data_set_and_condition_and_full_size_is_the_pipelines_figure(tmp_path):
    dataset = require_shared("faces", "taiwanese_fed", "labels.csv").parent
    have_fer = (dataset.parents[1] / "ferplus" / "ferplus_eval.npz").is_file()
    out = tmp_path / "face_size.json"
    run = face_size("--limit", "6", "--fer-limit", "4", "--sizes", "32", "96", "--json", str(out))
    assert run.returncode == 0, run.stderr

    tables = [("Taiwanese photographs", 6)] + ([("FER+ test", 4)] if have_fer else [])
    for name, n in tables:
        for condition in ("clean", "camera"):
            rows = table_rows(run.stdout, f"{name}, {condition} (n = {n}):")
            assert rows[0] == "| face width | 32 px | 96 px | full |"
            labels = [r.split(" | ")[0] for r in rows[2:]]
            assert labels[:2] == ["| faces found", "| classified"] and len(labels) == 4
            assert labels[2].startswith("| accuracy, shipped ") and labels[3].startswith("| of classified, shipped ")
            assert all(r.count("|") == 5 for r in rows)

    from models.taiwanese import load_photos, photo_predictions, taiwan_figures

    photos = load_photos(dataset, 6)
    direct = taiwan_figures(photo_predictions(RuntimeScores(Path(SHIPPED_MODEL)), photos, big=False)[0],
                            photos)["all"]
    result = json.loads(out.read_text())
    clean = next(c for c in result["curves"] if c["dataset"] == "Taiwanese photographs" and c["condition"] == "clean")
    (model,) = result["models"]
    assert clean["found"]["full"] == clean["classified"]["full"] == 1.0
    assert clean["accuracy"][model]["full"] == direct


def test_without_the_shared_data_it_says_so_and_exits(tmp_path):
    run = face_size("--data", str(tmp_path), "--limit", "2")
    assert run.returncode == 2
    assert "the shared data (../shared/data) is absent" in run.stderr
    assert f"{tmp_path}/faces/taiwanese_fed: no Taiwanese photographs" in run.stdout


@pytest.mark.slow   # ~15 s: 12 photographs at 32 px and full size, twice
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_taus_change_the_in_graph_prior_correction_and_teachers_read_the_same_crops(tmp_path):
    dataset = require_shared("faces", "taiwanese_fed", "labels.csv").parent
    shipped = EmotionModel(Path(SHIPPED_MODEL), threads=1)
    in_graph = float(shipped.card.raw["training"]["prior_correction_in_graph"])
    assert in_graph > 0    # otherwise tau 0 would not change anything and the check below could not fail
    teachers = dataset.parents[2] / "teachers"
    out = tmp_path / "face_size.json"
    args = ["--limit", "12", "--fer-limit", "0", "--sizes", "32", "--taus", "0", f"{in_graph:g}", "--json", str(out)]
    with_teachers = teachers.is_dir() and __import__("importlib").util.find_spec("openvino") is not None
    run = face_size(*args, *(["--teachers", str(teachers)] if with_teachers else []))
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    (model, *others) = result["models"]
    assert others[:2] == [f"{model} at tau 0", f"{model} at tau {in_graph:g}"]
    if with_teachers:
        assert [o.split(" (")[0] for o in others[2:]] == ["teacher A", "teacher B"]
    for curve in result["curves"]:
        # the in-graph tau given back is the model itself
        assert curve["accuracy"][f"{model} at tau {in_graph:g}"] == curve["accuracy"][model]
    clean = next(c for c in result["curves"] if c["condition"] == "clean")

    from models.taiwanese import load_photos

    photos = load_photos(dataset, 12)
    found = [i for i, c in enumerate(photos.crops) if c is not None]
    undone = RuntimeScores(Path(SHIPPED_MODEL)).scores([photos.crops[i] for i in found]) \
        * np.maximum(shipped.card.class_prior, 1e-4) ** in_graph
    pred = np.full(len(photos.labels), -1)
    pred[found] = undone.argmax(axis=1)
    assert clean["accuracy"][f"{model} at tau 0"]["full"] == float((pred == photos.labels).mean())


@pytest.mark.slow   # ~20 s: 4 photographs at 32 px and full size, three runs
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_camera_parts_degrade_with_only_the_named_parts_and_leave_clean_alone(tmp_path):
    require_shared("faces", "taiwanese_fed", "labels.csv")
    base = ["--limit", "4", "--fer-limit", "0", "--sizes", "32"]

    def crops(cache: Path) -> dict[str, np.ndarray]:
        with np.load(cache) as d:
            return {k: d[k] for k in d.files if k.endswith("/crops")}

    runs = {}
    for name, parts in (("all", []), ("jpeg", ["--camera-parts", "jpeg"]),
                        ("named", ["--camera-parts", "noise", "jpeg", "blur"])):
        cache, out = tmp_path / f"{name}.npz", tmp_path / f"{name}.json"
        run = face_size(*base, *parts, "--cache", str(tmp_path / "all.npz" if name == "named" else cache),
                        "--json", str(out))
        assert run.returncode == 0, run.stderr
        runs[name] = (run.stdout, json.loads(out.read_text()), cache)

    stdout, result, cache = runs["jpeg"]
    assert "Taiwanese photographs, camera (jpeg only) (n = 4):" in stdout
    assert result["degradation"]["parts"] == ["jpeg"]
    assert [c["condition"] for c in result["curves"]] == ["clean", "camera (jpeg only)"]
    jpeg_only, everything = crops(cache), crops(runs["all"][2])
    for size in ("32", "0"):
        assert np.array_equal(jpeg_only[f"tw/clean/{size}/crops"], everything[f"tw/clean/{size}/crops"])
        # no blur and no noise: the camera crops are not those of the whole degradation
        assert not np.array_equal(jpeg_only[f"tw/camera/{size}/crops"], everything[f"tw/camera/{size}/crops"])
    # all three named, in any order, is the default: the same cache key, so its crops are reused
    stdout, result, _ = runs["named"]
    assert "crops reused" in stdout and "Taiwanese photographs, camera (n = 4):" in stdout
    assert result["curves"] == runs["all"][1]["curves"]


def test_an_unknown_camera_part_is_refused():
    run = face_size("--camera-parts", "fog", "--limit", "1")
    assert run.returncode == 2 and "invalid choice: 'fog'" in run.stderr
