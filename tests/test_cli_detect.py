"""`fer-edge detect` and `fer-edge eval-faces` run as a user would: real command, real photographs and video."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import pytest

from conftest import REPO, require_shared
from conftest_pipeline import require_blazeface, require_emotion_model, single_face_video, taiwanese_subset

KEYS = {"path", "face", "box", "score", "landmarks", "emotion", "emotion_score", "scores", "detector", "model"}


def fer_edge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def errors(err: str) -> list[str]:
    """Our own stderr lines (the interpreter's INFO banner is not ours)."""
    return [line for line in err.splitlines() if line.startswith("fer-edge")]


@pytest.fixture(scope="module", autouse=True)
def models():
    require_blazeface()
    require_emotion_model()


@pytest.mark.slow
def test_detect_prints_one_json_line_per_face_and_annotates(tmp_path):
    photos = [str(p) for p, _ in taiwanese_subset(1)[:3]]
    r = fer_edge("detect", *photos, "--annotate", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    records = json_lines(r.stdout)
    assert [rec["path"] for rec in records] == photos
    for rec in records:
        assert set(rec) == KEYS and rec["face"] == 0
        assert rec["emotion"] == max(rec["scores"], key=rec["scores"].get)
        assert rec["detector"].startswith("blazeface-short-range@") and rec["model"].startswith("fer-edge-emotion")
        assert set(rec["landmarks"]) == {"right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear"}
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(os.path.basename(p) for p in photos)
    assert cv2.imread(str(tmp_path / "out" / written[0])).shape == (256, 256, 3)
    assert errors(r.stderr)[-1].startswith("fer-edge detect: 3 picture(s), 3 face(s), 0 failed")


def test_bad_inputs_one_line_each_and_the_rest_still_run(tmp_path):
    good, _ = taiwanese_subset(1)[0]
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(good, folder / "a.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing else")
    r = fer_edge("detect", str(tmp_path / "missing.jpg"), str(folder), str(tmp_path / "empty"),
                 str(tmp_path / "notes.txt"), str(tmp_path / "clip.mp4"), str(good))
    assert r.returncode == 1
    assert len(json_lines(r.stdout)) == 2                        # a.jpg and the good photo
    lines = errors(r.stderr)
    assert lines[:5] == [
        f"fer-edge detect: {tmp_path / 'missing.jpg'}: no such file or folder",
        f"fer-edge detect: {folder / 'broken.png'}: not a readable image (empty, corrupt, or not an image "
        "format OpenCV knows)",
        f"fer-edge detect: {tmp_path / 'empty'}: folder holds no images",
        f"fer-edge detect: {tmp_path / 'notes.txt'}: not an image or video file OpenCV can read",
        f"fer-edge detect: {tmp_path / 'clip.mp4'}: cannot be opened as a video (corrupt, or a codec FFmpeg lacks)",
    ]
    assert lines[5].startswith("fer-edge detect: 2 picture(s), 2 face(s), 5 failed")
    assert len(lines) == 6


def test_video_input_every_nth_frame():
    r = fer_edge("detect", str(single_face_video()), "--every", "50", "--no-classify")
    assert r.returncode == 0, r.stderr
    records = json_lines(r.stdout)
    assert [rec["frame"] for rec in records] == [0, 50, 100, 150, 200]
    assert records[1]["time"] == pytest.approx(2.0) and "emotion" not in records[0] and records[0]["model"] is None


def test_haar_detector_option():
    photo, _ = taiwanese_subset(1)[0]
    r = fer_edge("detect", str(photo), "--detector", "haar")
    assert r.returncode == 0, r.stderr
    # the default profile (auto): Haar at 320 px wide first, at full size where that finds nobody
    assert json_lines(r.stdout)[0]["detector"] == "haar-frontalface_default+eyes+auto:haar-frontalface_default+eyes"


@pytest.mark.slow
def test_corrupt_detector_model(tmp_path):
    real = require_blazeface()
    models = tmp_path / "models"
    models.mkdir()
    (models / real.name).write_bytes(real.read_bytes()[:5000])
    photo, _ = taiwanese_subset(1)[0]
    # default config: says so in one line, falls back to Haar, and the run goes on
    r = fer_edge("detect", str(photo), env={"FER_EDGE_MODELS": str(models)})
    assert r.returncode == 0, r.stderr
    assert json_lines(r.stdout)[0]["detector"].startswith("haar")
    warn = [line for line in r.stderr.splitlines() if "using the Haar detector instead" in line]
    assert len(warn) == 1 and "is not the pinned BlazeFace model" in warn[0]
    # without the fallback: exit code 3 and one line
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"detector:\n  type: blazeface\n  model_path: {models / real.name}\n  fallback_to_haar: false\n")
    r = fer_edge("detect", str(photo), "--config", str(cfg))
    assert r.returncode == 3 and r.stdout == ""
    assert len(errors(r.stderr)) == 1 and "is not the pinned BlazeFace model" in errors(r.stderr)[0]


@pytest.mark.slow
def test_missing_emotion_model_and_bad_config(tmp_path):
    photo, _ = taiwanese_subset(1)[0]
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"model:\n  path: {tmp_path / 'none.tflite'}\n")
    r = fer_edge("detect", str(photo), "--config", str(cfg))
    assert r.returncode == 3 and r.stdout == ""
    cfg.write_text("align:\n  eye_hight: 0.4\n")
    r = fer_edge("detect", str(photo), "--config", str(cfg))
    assert r.returncode == 2 and "eye_hight" in r.stderr


def test_eval_faces_on_a_few_photographs(tmp_path):
    require_shared("faces", "taiwanese_fed", "labels.csv")
    r = fer_edge("eval-faces", "--limit", "12", "--json", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert "face found:                 12/12 = 100.00%" in r.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n"] == 12 and report["detected"] == 12
    assert sum(map(sum, report["confusion"])) == 12
    assert set(report["recall"]) == {"neutral", "happiness", "sadness", "anger", "disgust", "fear", "surprise"}
    # accuracy is the confusion matrix's diagonal (rows: posed labels, columns: model classes)
    hits = sum(row[report["classes"].index(label)] for label, row in zip(report["recall"], report["confusion"]))
    assert report["accuracy"] == pytest.approx(hits / 12)
    assert f"accuracy vs posed label:    {report['accuracy']:.2%}" in r.stdout


def test_eval_faces_prior_correction_and_intensity_bands():
    require_shared("faces", "taiwanese_fed", "labels.csv")
    from edge.config.model import ModelConfig
    from edge.commands.eval_faces import default_dataset, evaluate, load_samples
    from edge.face_analyzer import FaceAnalyzer, PipelineSections

    require_blazeface()
    samples = load_samples(default_dataset())
    picked = [next(s for s in samples if s.label == lab) for lab in ("neutral", "sadness", "fear", "surprise")]
    picked += [s for s in samples if s.label == "disgust"][:2]
    reports = {}
    for tau in (0.0, 1.0):
        analyzer = FaceAnalyzer(PipelineSections(model=ModelConfig(prior_correction=tau)))
        reports[tau] = evaluate(analyzer, picked)
    for tau, rep in reports.items():
        assert rep.prior_correction == tau and rep.detected == len(picked)
        # every emotional pose with a rating lands in exactly one band; neutral poses in none
        rated = [s for s in picked if s.label != "neutral" and s.intensity is not None]
        assert sum(n for _, n in rep.by_intensity.values()) == len(rated) == 5
        assert sum(ok for ok, _ in rep.by_intensity.values()) <= len(rated)
    # dividing by the prior never predicts neutral (the commonest training class) more often
    neutral_preds = [sum(row[0] for row in r.confusion) for r in (reports[0.0], reports[1.0])]
    assert neutral_preds[1] <= neutral_preds[0]


def test_eval_faces_rejects_a_bad_prior_correction(tmp_path):
    # a usage error is reported before anything is read: the (empty) dataset folder is not looked at
    r = fer_edge("eval-faces", str(tmp_path), "--limit", "2", "--prior-correction", "2")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["fer-edge eval-faces: --prior-correction must be between 0 and 1"]


def test_eval_faces_without_the_dataset(tmp_path):
    r = fer_edge("eval-faces", str(tmp_path))
    assert r.returncode == 2 and "labels.csv not found" in r.stderr


def test_performer_split_is_a_partition():
    from conftest import require_shared
    from edge.commands.eval_faces import LABEL_MAP, load_samples

    root = require_shared("faces", "taiwanese_fed")
    everyone, tune, test = (load_samples(root, s) for s in ("all", "tune", "test"))
    assert len(everyone) == 1232 and len(tune) + len(test) == 1232
    assert not {s.performer for s in tune} & {s.performer for s in test}
    assert {s.label for s in everyone} == set(LABEL_MAP.values())
