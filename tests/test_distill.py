"""Emotion model 2.0 training (issue 18): teachers' soft-label cache, CK+ split, distillation loss, tiny run."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHARED_DATA, require_shared

TEACHERS = REPO.parent / "shared" / "teachers"


def test_teacher_columns_map_onto_ferplus_classes():
    from models import ferplus, teachers

    a = teachers.to_fer8("A", np.array([[0.1, 0.6, 0.1, 0.1, 0.1]]))     # A: neutral, happy, sad, surprise, anger
    assert ferplus.CLASSES[int(a.argmax())] == "happiness" and a.sum() == pytest.approx(1.0)
    assert teachers.mask("A")[[ferplus.CLASSES.index(c) for c in ("disgust", "fear", "contempt")]].sum() == 0
    b = teachers.to_fer8("B", np.array([[0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0]]))  # raw scores; column 1 = disgust
    assert ferplus.CLASSES[int(b.argmax())] == "disgust" and b.sum() == pytest.approx(1.0)
    assert teachers.mask("B")[ferplus.CLASSES.index("contempt")] == 0


def test_ckplus_split_keeps_each_subject_on_one_side():
    require_shared("ckplus48", "labels.csv")
    from models import ckplus

    ck = ckplus.load(SHARED_DATA)
    assert len(ck) == 981 and ck.images.shape[1:] == (48, 48)
    train, valid = ckplus.subject_split(ck)
    assert not set(train.subjects) & set(valid.subjects)
    assert len(train) + len(valid) == 981 and 100 < len(valid) < 400


def test_mixup_keeps_shapes_and_mixes_faces_and_targets_with_one_weight():
    from models.studies.distill import mixup

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, 48, 48)).astype(np.float32)
    targets = rng.dirichlet(np.ones(8), size=(16, 4)).astype(np.float32)       # (faces, sources, classes)
    mixed, mixed_targets = mixup(images, targets, 0.4, np.random.default_rng(1))
    assert mixed.shape == images.shape and mixed_targets.shape == targets.shape
    assert np.allclose(mixed_targets.sum(-1), 1.0, atol=1e-5)                   # still distributions
    # the same draw, replayed: each face is lam * itself + (1 - lam) * its partner, its targets alike
    replay = np.random.default_rng(1)
    lam, perm = replay.beta(0.4, 0.4, size=16).astype(np.float32), replay.permutation(16)
    k = int(np.argmax(np.abs(lam - 0.5) < 0.45))
    assert np.allclose(mixed[k], lam[k] * images[k] + (1 - lam[k]) * images[perm[k]], atol=1e-3)
    assert np.allclose(mixed_targets[k], lam[k] * targets[k] + (1 - lam[k]) * targets[perm[k]], atol=1e-6)


@pytest.mark.slow
def test_teacher_without_a_class_does_not_push_it_down():
    """A's silence about disgust must not teach 'not disgust': its loss ignores the classes it lacks."""
    tf = pytest.importorskip("tensorflow", reason="training needs the [train] extra (tensorflow)")
    from models import ferplus, teachers
    from models.studies import distill

    loss = distill.make_loss(distill.parse_weights("A=1"), ck_vote_weight=1.0)
    y = np.zeros((1, len(distill.SOURCES), 8), np.float32)
    y[0, 1] = teachers.to_fer8("A", np.array([[0.2, 0.2, 0.2, 0.2, 0.2]]))
    logits = tf.Variable(np.zeros((1, 8), np.float32))
    with tf.GradientTape() as tape:
        value = loss(tf.constant(y), logits, tf.constant([False]))
    grad = tape.gradient(value, logits).numpy()[0]
    for c in ("disgust", "fear", "contempt"):
        assert grad[ferplus.CLASSES.index(c)] == 0.0


@pytest.mark.slow
def test_tiny_distillation_run_gives_loadable_int8_model(tmp_path):
    """A few hundred faces, a tiny teacher cache (teachers A, B and the 1.0.0 float model), one epoch."""
    require_shared("ferplus", "ferplus_train.npz")
    require_shared("ckplus48", "labels.csv")
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (tensorflow)")
    pytest.importorskip("openvino", reason="teacher A needs the [train] extra (openvino)")
    if not (TEACHERS / "README.md").exists():
        pytest.skip(f"teachers not found: {TEACHERS}")
    run, cache = tmp_path / "run", tmp_path / "cache"
    cmd = [sys.executable, "-m", "models.studies.distill", "--out", str(run), "--teachers", str(TEACHERS),
           "--cache", str(cache), "--epochs", "1", "--limit", "200", "--val-limit", "200", "--batch", "64",
           "--weights", "votes=0.4,A=0.2,B=0.2,ref=0.2"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "M MACs per face" in out.stdout
    with np.load(cache / "limit200.npz") as d:
        assert d["train_A"].shape == (200, 8) and d["ckplus_B"].shape == (99, 8)  # every 10th CK+ face
        assert np.allclose(d["train_ref"].sum(axis=1), 1.0, atol=0.02)

    from edge.classify import EmotionModel
    from models.card import base_card

    model_path = run / "model_int8.tflite"
    model_path.with_suffix(".json").write_text(json.dumps(base_card(model_path)))
    model = EmotionModel(model_path)
    assert model.card.raw["input"]["dtype"] == "int8" and model.card.raw["output"]["dtype"] == "int8"
    scores = model.classify([np.full((48, 48), 128, np.uint8)])[0].scores
    assert scores.shape == (8,) and np.isfinite(scores).all()
    log = json.loads((run / "train_log.json").read_text())
    assert log["student"]["macs_per_face"] > 1e6 and "ck_val_acc" in log["epochs"][0]
    assert log["data"]["teachers"] == ["A", "B", "ref"]


def test_warm_start_from_the_float_reference_reproduces_it(tmp_path):
    """models.warmstart rebuilds 1.0.0 from its float .tflite (BN folded): its four views give the file's scores."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (tensorflow)")

    from edge.interpreter import open_interpreter
    from models.export import inference_model
    from models.warmstart import student_from_tflite

    path = REPO / "models" / "reference" / "1.0.0" / "fer_emotion_float.tflite"
    card = json.loads(path.with_suffix(".json").read_text())
    model = student_from_tflite(path)
    assert not any("batch_normalization" in type(layer).__name__.lower() for layer in model.layers)
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 1)).astype(np.float32)
    ours = inference_model(model, tuple(card["test_time_views"])).predict(faces, verbose=0)
    interp = open_interpreter(path)
    interp.resize_tensor_input(interp.get_input_details()[0]["index"], faces.shape)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], faces)
    interp.invoke()
    theirs = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert np.allclose(ours, theirs, atol=1e-4), np.abs(ours - theirs).max()


def test_warm_start_refuses_a_file_without_convolutions(tmp_path):
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (tensorflow)")
    import tensorflow as tf

    from models.warmstart import student_from_tflite

    inp = tf.keras.Input((4,))
    path = tmp_path / "dense.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(
        tf.keras.Model(inp, tf.keras.layers.Dense(2)(inp))).convert())
    with pytest.raises(ValueError, match="no CONV_2D"):
        student_from_tflite(path)


def test_weight_interpolation_ends_are_the_two_models():
    from models.studies.soup import mix

    start, tuned = [np.zeros((2, 2)), np.ones(3)], [np.ones((2, 2)), np.full(3, 3.0)]
    assert all(np.array_equal(a, b) for a, b in zip(mix(start, tuned, 0.0), start))
    assert all(np.array_equal(a, b) for a, b in zip(mix(start, tuned, 1.0), tuned))
    assert np.allclose(mix(start, tuned, 0.25)[1], 1.5)


def test_soup_refuses_a_run_not_started_from_a_float_model(tmp_path):
    from models.studies.soup import soup

    (tmp_path / "train_log.json").write_text(json.dumps({"args": {"init": None}}))
    with pytest.raises(ValueError, match="not started from a float .tflite"):
        soup(tmp_path, tmp_path / "out")


def test_frontier_offsets_raise_the_tuning_accuracy_only_above_the_floor():
    from models.studies.frontier import accuracy, fit_offsets

    rng = np.random.default_rng(0)
    # the same kind of scores, labelled 1 in the tuning set and 0 in validation: a bias towards
    # class 1 buys tuning accuracy with validation accuracy, so the floor decides how far it goes
    tune = (np.log(rng.dirichlet([3, 2], 200)), np.ones(200, int))
    valid = (np.log(rng.dirichlet([3, 2], 200)), np.zeros(200, int))
    start = np.zeros(2)
    tuned_acc = {}
    for floor in (1.0, 0.8, 0.0):
        off = fit_offsets(tune, valid, floor, start)
        assert accuracy(valid[0], off, valid[1]) >= min(floor, accuracy(valid[0], start, valid[1]))
        tuned_acc[floor] = accuracy(tune[0], off, tune[1])
    assert tuned_acc[1.0] < tuned_acc[0.8] < tuned_acc[0.0] == 1.0
