"""The shipped emotion model and the training pipeline (issue 2)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, require_shared
from edge.config.model import SHIPPED_MODEL
from edge.classify import EmotionModel
from edge.interpreter import ModelError, sha256_file

CARD = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())


def test_shipped_model_matches_its_card():
    assert sha256_file(SHIPPED_MODEL) == CARD["sha256"]
    assert SHIPPED_MODEL.stat().st_size == CARD["size_bytes"] <= 1_500_000
    model = EmotionModel()
    assert model.classes == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    assert model.input_size == 48 and CARD["input"]["dtype"] == "int8" and CARD["output"]["dtype"] == "int8"


def test_card_figures_hold_what_3_0_claims():
    """Card 3.0's measured figures against issue 28's bars for a shipped model: at or above 2.0.0 on the
    Taiwanese photographs (54.46%, all 1,232) and on FER+ test (82.72%), latency <= 0.30x of 1.0.0 in the
    same run, <= 1.5 MB, made by its recipe file (whose sha256 the card holds); and issue 18's bars that 2.0
    met: int8 within 1 point of its float parent, disgust recall >= 30%. Not met (docs/accuracy.md): the
    GPU bars (Taiwanese 58% / agreed 70% / FER+ test 84%).
    """
    acc = CARD["accuracy"]
    assert CARD["version"].startswith("3.") and acc["test_int8"]["n"] == 3137
    assert acc["test_float"]["accuracy"] - acc["test_int8"]["accuracy"] <= 0.010
    assert acc["test_int8"]["accuracy"] >= 0.8272
    taiwan = acc["taiwanese"]
    assert taiwan["n"] == 1232 and taiwan["all"] >= 0.5446 and taiwan["even"] >= 0.5762
    assert taiwan["recall"]["disgust"] >= 0.30
    assert CARD["latency_ms_per_face"]["ratio_to_1.0.0"] <= 0.30
    assert CARD["macs_per_face"] <= 0.30 * 469_803_008
    recipe = REPO / CARD["recipe"]["file"]
    assert sha256_file(recipe) == CARD["recipe"]["sha256"] and CARD["previous"]["version"] == "2.0.0"


@pytest.mark.slow
def test_accuracy_on_fixed_test_slice_matches_card():
    require_shared("ferplus", "ferplus_eval.npz")
    from models import evaluate

    stated = CARD["accuracy"]["test_slice500_int8"]
    report = evaluate.evaluate(SHIPPED_MODEL, split="test", limit=evaluate.SLICE_SIZE, latency=False)
    assert report.n == stated["n"] == 500
    assert abs(report.accuracy - stated["accuracy"]) <= 0.015, (report.accuracy, stated)


def test_batch_and_single_give_same_scores():
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (60, 60), dtype=np.uint8) for _ in range(3)]
    model = EmotionModel()
    batch = model.classify(crops)
    single = [model.classify([c])[0] for c in crops]
    for a, b in zip(batch, single):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
        assert abs(a.scores.sum() - 1) < 1e-3


def test_prior_correction_divides_scores_by_the_training_prior():
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 255, (48, 48), dtype=np.uint8) for _ in range(4)]
    prior = np.array([CARD["training"]["class_prior"][c] for c in CARD["classes"]])
    assert abs(prior.sum() - 1) < 1e-3 and prior.argmax() == CARD["classes"].index("neutral")
    plain = np.stack([c.scores for c in EmotionModel().classify(crops)])
    for tau in (0.5, 1.0):
        got = np.stack([c.scores for c in EmotionModel(prior_correction=tau).classify(crops)])
        want = plain / prior ** tau
        np.testing.assert_allclose(got, want / want.sum(axis=1, keepdims=True), atol=1e-5)
    # neutral, the commonest training class, loses share
    assert (got[:, 0] <= plain[:, 0] + 1e-6).all() and got[:, 0].sum() < plain[:, 0].sum()


@pytest.mark.parametrize("tau", ["2", "-1"])
def test_eval_rejects_a_prior_correction_out_of_range(tau):
    out = subprocess.run([sys.executable, "-m", "edge.cli", "eval", "--limit", "10", "--no-latency",
                          "--prior-correction", tau], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "fer-edge eval: --prior-correction must be between 0 and 1"


def test_prior_correction_needs_a_prior_in_the_card(tmp_path):
    other = tmp_path / "m.tflite"
    shutil.copyfile(SHIPPED_MODEL, other)
    card = json.loads(json.dumps(CARD))
    del card["training"]["class_prior"]
    other.with_suffix(".json").write_text(json.dumps(card))
    EmotionModel(other)  # fine without correction
    with pytest.raises(ModelError, match="class_prior") as err:
        EmotionModel(other, prior_correction=0.75)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_model_gives_one_clear_line(tmp_path, damage):
    data = SHIPPED_MODEL.read_bytes()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes({"truncated": data[: len(data) // 3], "garbage": b"\x00" * 4 + b"junk" * 1000,
                     "empty": b""}[damage])
    with pytest.raises(ModelError) as err:
        EmotionModel(bad, SHIPPED_MODEL.with_suffix(".json"), verify_sha256=False)
    msg = str(err.value)
    assert "bad.tflite" in msg and "\n" not in msg


def test_model_whose_hash_differs_from_card_is_refused(tmp_path):
    other = tmp_path / "fer_emotion_int8.tflite"
    shutil.copyfile(SHIPPED_MODEL, other)
    card = dict(CARD, sha256="0" * 64)
    other.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not match its card"):
        EmotionModel(other)


def test_card_shape_mismatch_is_refused(tmp_path):
    other = tmp_path / "m.tflite"
    shutil.copyfile(SHIPPED_MODEL, other)
    card = json.loads(json.dumps(CARD))
    card["input"]["size"] = 64
    other.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="input shape"):
        EmotionModel(other)


@pytest.mark.slow
def test_eval_command_prints_accuracy_and_writes_png(tmp_path):
    require_shared("ferplus", "ferplus_eval.npz")
    png = tmp_path / "confusion.png"
    out = subprocess.run([sys.executable, "-m", "edge.cli", "eval", "--limit", "200", "--png", str(png)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "top-1 accuracy" in out.stdout and "per-class recall" in out.stdout and "latency" in out.stdout
    assert png.stat().st_size > 1000


@pytest.mark.slow
def test_tiny_training_run_exports_loadable_int8_model(tmp_path):
    require_shared("ferplus", "ferplus_train.npz")
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (tensorflow)")
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "models.studies.train_v1", "--out", str(run), "--epochs", "1",
                          "--limit", "320", "--batch", "32", "--val-limit", "300"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    model_path = run / "model_int8.tflite"
    from models.card import base_card

    model_path.with_suffix(".json").write_text(json.dumps(base_card(model_path, version="3.0.0")))
    model = EmotionModel(model_path)
    assert model.card.raw["input"]["dtype"] == "int8" and model.card.raw["version"] == "3.0.0"
    scores = model.classify([np.full((48, 48), 128, np.uint8)])[0].scores
    assert scores.shape == (8,) and np.isfinite(scores).all()
    log = json.loads((run / "train_log.json").read_text())
    assert len(log["epochs"]) == 1 and "val_acc" in log["epochs"][0]


@pytest.mark.slow
def test_fine_tune_options_keep_one_calibrated_output(tmp_path):
    """--init/--logit-adjust/--aux-presence: the saved model has the backbone's single 8-way output,
    and the logit adjustment is folded back (its bias differs from the starting model's by at most the
    small steps of one tiny epoch, not by log(prior))."""
    require_shared("ferplus", "ferplus_train.npz")
    tf = pytest.importorskip("tensorflow", reason="training needs the [train] extra (tensorflow)")
    from models.studies.train_v1 import build_backbone

    start = tmp_path / "start.keras"
    build_backbone().save(start)
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "models.studies.train_v1", "--out", str(run), "--epochs", "1", "--limit", "128",
                          "--batch", "32", "--val-limit", "100", "--lr", "1e-5", "--no-export", "--init", str(start),
                          "--logit-adjust", "1", "--aux-presence", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    saved = tf.keras.models.load_model(run / "best.keras")
    assert len(saved.outputs) == 1 and saved.output_shape == (None, 8)
    drift = saved.get_layer("logits").bias.numpy() - tf.keras.models.load_model(start).get_layer("logits").bias.numpy()
    assert np.abs(drift).max() < 0.05          # log(prior) would move disgust's bias by about 4.6
    log = json.loads((run / "train_log.json").read_text())
    assert log["args"]["logit_adjust"] == 1 and log["args"]["init"] == str(start)
