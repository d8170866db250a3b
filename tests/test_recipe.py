"""The one-command recipe (models.train --recipe): pack, stages, resume after a kill, GPU prep/collect/unpack.

These run on a synthetic training pack (random faces and targets), so they need neither the shared
data nor the teachers; what they check is the machinery, not accuracy.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras", reason="the training code needs the `train` extra (Keras 3 + TensorFlow)")

from models import augment, gpu_prep, pack, recipe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = """
name: tiny
version: 0.0.1
seed: 3
stages:
  - name: student
    widths: [4, 8, 8, 8]
    epochs: 3
    batch: 32
    lr: 0.002
    weights: {votes: 0.5, A: 0.5}
    ckplus_repeat: 1
    degraded_weight: 0.5
    augment: {degrade_p: 0.5}
prior: {taus: [0, 0.2], floor: 0.01}
"""


def synthetic_pack(folder: Path, n: int = 160, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    faces = lambda k: rng.integers(0, 256, (k, 48, 48), dtype=np.uint8)  # noqa: E731
    votes = rng.dirichlet(np.ones(8), n).astype(np.float32)
    soft = lambda k: rng.dirichlet(np.ones(8), k).astype(np.float16)  # noqa: E731
    arrays = {"train_votes": votes, "valid_labels": rng.integers(0, 8, 60), "ckplus_labels": rng.integers(1, 8, 40),
              "ckplus_subjects": np.array([f"S{i % 10:03d}" for i in range(40)]),
              "train_A": soft(n), "ckplus_A": soft(40), "valid_A": soft(60)}
    train = np.random.default_rng(seed + 100).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return pack.save(folder, {"train": train, "ckplus": faces(40), "valid": faces(60)}, arrays)


def test_pack_round_trip_is_lossless_and_damage_is_named(tmp_path):
    folder = synthetic_pack(tmp_path / "p")
    p = pack.read(folder)
    assert p.train.shape == (160, 48, 48) and p.valid.shape == (60, 48, 48) and p.ckplus.shape == (40, 48, 48)
    again = np.random.default_rng(100).integers(0, 256, (160, 48, 48), dtype=np.uint8)
    assert np.array_equal(p.train, again)            # lossless WebP: every pixel back
    assert set(p.soft) == {"train_A", "ckplus_A", "valid_A"}
    raw = bytearray((folder / "faces_train.webp").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (folder / "faces_train.webp").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="faces_train.webp is damaged"):
        pack.read(folder)
    with pytest.raises(FileNotFoundError, match="no training pack"):
        pack.read(tmp_path / "nothing")


def test_degradation_shrinks_detail_and_is_seeded():
    face = np.random.default_rng(1).integers(0, 256, (48, 48)).astype(np.float32)
    a = augment.Augment(degrade_px=(18, 18), blur_sigma=(0.7, 0.7), noise_sigma=(3, 3), jpeg_quality=(60, 60))
    one = augment.degrade(face, np.random.default_rng(5), a)
    two = augment.degrade(face, np.random.default_rng(5), a)
    assert one.shape == (48, 48) and np.array_equal(one, two)
    # an 18 px crop enlarged back keeps little of a random face's pixel-level detail
    assert np.abs(np.diff(one, axis=1)).mean() < 0.5 * np.abs(np.diff(face, axis=1)).mean()
    batch = augment.augment_batch(face[None].astype(np.uint8).repeat(4, 0), np.random.default_rng(2), a)
    assert batch.shape == (4, 48, 48, 1) and batch.dtype == np.float32


def test_the_clean_view_is_the_same_face_without_the_camera():
    faces = np.random.default_rng(1).integers(0, 256, (16, 48, 48)).astype(np.uint8)
    for p in (0.0, 1.0):
        a = augment.Augment(degrade_p=p, erase_p=1.0)
        plain = augment.augment_batch(faces, np.random.default_rng(4), a)
        both = augment.augment_batch(faces, np.random.default_rng(4), a, clean_view=True)
        # the student's channel is what training without a clean view draws, to the bit
        assert both.shape == (16, 48, 48, 2) and np.array_equal(both[..., :1], plain)
        student, clean = both[..., 0], both[..., 1]
        if p == 0.0:
            assert np.array_equal(student, clean)
        else:   # degraded: less pixel-level detail than the clean view, which keeps the warp and light
            assert np.abs(np.diff(student, axis=2)).mean() < 0.6 * np.abs(np.diff(clean, axis=2)).mean()
            assert abs(student.mean() - clean.mean()) < 3.0


def test_a_clean_view_teacher_reads_the_second_channel():
    import keras

    from models import fit
    from models.student import build_student

    teacher = build_student((4, 4, 4, 4), dropout=0.0, name="fer_s")    # the student's name too, as two warm starts
    st = fit.Stage.from_dict({"name": "s", "widths": [4, 4, 4, 4], "kd_from": "t", "kd_view": "clean", "dropout": 0.0})
    net, model = fit.build(st, teacher)
    x = np.random.default_rng(0).uniform(0, 255, (3, 48, 48, 2)).astype(np.float32)
    out = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(out[:, :8], np.asarray(net.predict(x[..., :1], verbose=0)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 8:], np.asarray(teacher.predict(x[..., 1:], verbose=0)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(out[:, 8:], np.asarray(teacher.predict(x[..., :1], verbose=0)), atol=1e-5)
    with pytest.raises(ValueError, match="kd_view must be one of same, clean, not 'dirty'"):
        fit.Stage.from_dict({"name": "s", "kd_view": "dirty"})
    keras.backend.clear_session()


def test_recipe_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("    batch: 32", "    bacth: 32"))
    with pytest.raises(ValueError, match=r"bad.yaml: stage 'student': unknown key\(s\) bacth"):
        recipe.load(bad)
    bad.write_text(TINY.replace("prior:", "priors:"))
    with pytest.raises(ValueError, match="unknown key.*priors"):
        recipe.load(bad)
    bad.write_text(TINY.replace("    lr: 0.002", "    lr: 0.002\n    kd_from: teacher"))
    with pytest.raises(ValueError, match="not an earlier stage"):
        recipe.load(bad)


def test_a_stage_learning_from_a_teacher_the_pack_lacks_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teachers: [A, B]\nstages:\n  - {name: s, weights: {votes: 0.5, v2: 0.5}}\n")
    with pytest.raises(ValueError, match=r"stage 's' learns from teacher\(s\) v2, which 'teachers:' does not list"):
        recipe.load(bad)
    bad.write_text("teachers: [A, B]\nstages:\n  - {name: s, variants: [{weights: {votes: 0.5, ref: 0.5}}]}\n")
    with pytest.raises(ValueError, match=r"stage 's@1' learns from teacher\(s\) ref"):
        recipe.load(bad)
    bad.write_text("teachers: [A, B, v2]\nstages:\n  - {name: s, weights: {votes: 0.5, v2: 0.5}}\n")
    assert recipe.load(bad).teachers == ("A", "B", "v2")


def test_shipped_recipes_parse():
    for path in sorted((REPO / "models" / "recipes").glob("*.yaml")):
        r = recipe.load(path)
        assert r.stages, path


def test_study_recipes_parse():
    paths = sorted((REPO / "models" / "studies" / "recipes").glob("*.yaml"))
    assert paths
    for path in paths:
        assert recipe.load(path).stages, path


def _train(run: Path, packdir: Path, rfile: Path, *extra: str) -> subprocess.Popen:
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "models.train", "--recipe", str(rfile), "--run", str(run),
                             "--pack", str(packdir), "--steps", "stages", "--workers", "1", *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_result(tmp_path):
    packdir = synthetic_pack(tmp_path / "pack")
    rfile = tmp_path / "tiny.yaml"
    rfile.write_text(TINY)
    whole = _train(tmp_path / "whole", packdir, rfile)
    out, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, out
    killed = _train(tmp_path / "killed", packdir, rfile)
    state = tmp_path / "killed" / "student" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert json.loads(state.read_text())["epoch"] < 3, "the run ended before it could be killed"
    resumed = _train(tmp_path / "killed", packdir, rfile, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "resuming after epoch" in out, out
    a = json.loads((tmp_path / "whole" / "student" / "log.json").read_text())
    b = json.loads((tmp_path / "killed" / "student" / "log.json").read_text())
    assert [e["val_acc"] for e in a["epochs"]] == [e["val_acc"] for e in b["epochs"]]
    assert [round(e["loss"], 5) for e in a["epochs"]] == [round(e["loss"], 5) for e in b["epochs"]]
    import keras

    from models import fit

    st = recipe.load(rfile).stages[0]
    wa = fit.load_net(st, tmp_path / "whole" / "student" / "last.weights.h5").get_weights()
    wb = fit.load_net(st, tmp_path / "killed" / "student" / "last.weights.h5").get_weights()
    assert all(np.allclose(x, y, atol=1e-6) for x, y in zip(wa, wb))
    keras.backend.clear_session()


def test_gpu_collect_and_unpack_make_a_finished_run(tmp_path):
    run = tmp_path / "run"
    (run / "student@1").mkdir(parents=True)
    best = {"epoch": 2, "score": 0.9, "val_acc": 0.8, "ck_val_acc": 0.4}
    (run / "student@1" / "log.json").write_text(json.dumps({"finished": True, "best": best, "epochs": []}))
    (run / "student@1" / "best.weights.h5").write_bytes(b"weights")
    (run / "student.winner.json").write_text(json.dumps({"variant": "student@1", "best": best}))
    (run / "student@1.stdout.log").write_text("epoch 1\rstep\n")
    out = tmp_path / "out"
    gpu_prep.collect(run, out)
    assert sorted(p.name for p in out.iterdir()) == ["logs.json", "student.best.weights.h5", "variants.log"]
    here = tmp_path / "here"
    gpu_prep.unpack(out, here)
    assert (here / "student@1" / "best.weights.h5").read_bytes() == b"weights"
    assert json.loads((here / "student@1" / "log.json").read_text())["finished"]


def test_gpu_prep_sets_aside_only_what_the_run_does_not_need_and_restores_it(tmp_path):
    """The float references leave the tree that travels (tracked bytes fall by their size) and come back intact."""
    import subprocess

    files = {"models/reference/fer_emotion_float.tflite": b"f" * 300,
             "models/reference/2.0.0/fer_emotion_float.tflite": b"g" * 200,
             "models/reference/2.0.0/fer_emotion_int8.tflite": b"i" * 50,
             "edge/model/fer_emotion_int8.tflite": b"s" * 40}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "untracked_float.tflite").write_bytes(b"u")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", *files], cwd=tmp_path, check=True)
    before = gpu_prep.tracked_bytes(tmp_path)[0]
    assert gpu_prep.set_aside(tmp_path) == 500
    assert gpu_prep.tracked_bytes(tmp_path)[0] == before - 500
    assert not (tmp_path / "models/reference/fer_emotion_float.tflite").exists()
    assert (tmp_path / "models/reference/2.0.0/fer_emotion_int8.tflite").exists()   # int8 models stay
    assert gpu_prep.set_aside(tmp_path) == 0                                          # nothing left to move
    assert sorted(gpu_prep.restore(tmp_path)) == sorted(n for n in files if n.endswith("_float.tflite"))
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
    assert gpu_prep.tracked_bytes(tmp_path)[0] == before


def test_interpolation_mixes_the_start_and_the_tuned_weights_and_picks_on_validation(tmp_path):
    """WiSE-FT step: alpha 0 is the start model, 1 the tuned one, the saved mixture is the best-scored alpha."""
    from models import fit

    packdir = synthetic_pack(tmp_path / "pack")
    the_pack = pack.read(packdir)
    base = recipe.load(_write(tmp_path / "base.yaml", TINY.replace("epochs: 3", "epochs: 1")))
    fit.run_stage(base.stages[0], the_pack, tmp_path / "base", seed=3, workers=1)
    start_file = tmp_path / "base" / "best.weights.h5"
    tuned_text = TINY.replace("    epochs: 3", f"    epochs: 2\n    init: {start_file}") + \
        "interpolate: {alphas: [0, 0.5, 1]}\n"
    r = recipe.load(_write(tmp_path / "tuned.yaml", tuned_text))
    run = tmp_path / "run"
    st = r.stages[0]
    fit.run_stage(st, the_pack, run / st.name, seed=3, workers=1)
    chosen = recipe.interpolate_step(r, run, packdir)
    rows = {row["alpha"]: row for row in chosen["rows"]}
    start_net, tuned_net = fit.load_net(st, start_file), fit.load_net(st, run / st.name / "best.weights.h5")
    val = (the_pack.valid, the_pack.valid_labels)
    assert rows[0.0]["val_acc"] == fit.accuracy(start_net, *val)
    assert rows[1.0]["val_acc"] == fit.accuracy(tuned_net, *val)
    eligible = [row for row in chosen["rows"] if row["val_acc"] >= rows[0.0]["val_acc"]]   # max_valid_drop 0
    assert chosen["best"]["score"] == max(row["score"] for row in eligible)
    a = chosen["alpha"]
    mixed = fit.load_net(st, run / recipe.INTERPOLATED).get_weights()
    expected = [(1 - a) * x + a * y for x, y in zip(start_net.get_weights(), tuned_net.get_weights())]
    assert all(np.allclose(m, e, atol=1e-6) for m, e in zip(mixed, expected))
    assert recipe.final_weights(r, run) == (st, run / recipe.INTERPOLATED)      # what prior and export use


def test_a_soup_averages_the_named_stages_before_mixing_with_the_start(tmp_path):
    """interpolate: {soup: [a, b]}: alpha 1 is the uniform average of both stages' winners, alpha 0 the start."""
    from models import fit

    packdir = synthetic_pack(tmp_path / "pack")
    the_pack = pack.read(packdir)
    base = recipe.load(_write(tmp_path / "base.yaml", TINY.replace("epochs: 3", "epochs: 1")))
    fit.run_stage(base.stages[0], the_pack, tmp_path / "base", seed=3, workers=1)
    start_file = tmp_path / "base" / "best.weights.h5"
    one = TINY.replace("    epochs: 3", f"    epochs: 1\n    init: {start_file}")
    stage = one[one.index("  - name: student"):one.index("prior:")]
    two = one.replace("prior:", stage.replace("name: student", "name: other").replace("lr: 0.002", "lr: 0.01")
                      + "prior:") + "interpolate: {alphas: [0, 1], soup: [student, other]}\n"
    r = recipe.load(_write(tmp_path / "soup.yaml", two))
    run = tmp_path / "run"
    for st in r.stages:
        fit.run_stage(st, the_pack, run / st.name, seed=3, workers=1)
    chosen = recipe.interpolate_step(r, run, packdir)
    assert chosen["soup"] == ["student", "other"]
    nets = [fit.load_net(st, run / st.name / "best.weights.h5").get_weights() for st in r.stages]
    average = [(a + b) / 2 for a, b in zip(*nets)]
    assert not all(np.allclose(a, b) for a, b in zip(*nets))          # two different fine-tunes
    net = fit.load_net(r.stages[-1], start_file)
    val = (the_pack.valid, the_pack.valid_labels)
    rows = {row["alpha"]: row for row in chosen["rows"]}
    assert rows[0.0]["val_acc"] == fit.accuracy(net, *val)
    net.set_weights(average)
    assert rows[1.0]["val_acc"] == fit.accuracy(net, *val)
    if chosen["alpha"] == 1.0:
        mixed = fit.load_net(r.stages[-1], run / recipe.INTERPOLATED).get_weights()
        assert all(np.allclose(m, e, atol=1e-6) for m, e in zip(mixed, average))


@pytest.mark.parametrize("soup, message", [
    ("[student]", "two or more stage names"),
    ("[student, nobody]", "'nobody', which is not a stage"),
    ("[student, wide]", "must have the last stage's widths"),
])
def test_soup_errors_name_the_file(tmp_path, soup, message):
    text = TINY.replace("    epochs: 3", "    epochs: 3\n    init: start.weights.h5")
    stage = text[text.index("  - name: student"):text.index("prior:")]
    text = text.replace("prior:", stage.replace("name: student", "name: wide").replace("[4, 8, 8, 8]", "[4, 8, 8, 16]")
                        + stage.replace("name: student", "name: last") + "prior:")
    with pytest.raises(ValueError, match=f"r.yaml: interpolate: .*{message}"):
        recipe.load(_write(tmp_path / "r.yaml", text + f"interpolate: {{alphas: [1], soup: {soup}}}\n"))


def test_the_3_0_recipe_is_a_soup_of_2_0s_stage_and_its_camera_twin():
    """models/recipes/3.0.yaml: stage clean is 2.0.yaml's stage; camera differs only by the degradation."""
    from models import fit

    r, r2 = recipe.load(REPO / "models" / "recipes" / "3.0.yaml"), recipe.load(REPO / "models" / "recipes" / "2.0.yaml")
    clean, camera = (fit.stage_dict(st) | {"name": ""} for st in r.stages)
    assert clean == fit.stage_dict(r2.stages[0]) | {"name": ""}
    assert {k for k in clean if clean[k] != camera[k]} == {"degraded_weight", "augment"}
    assert [st.name for st in recipe.soup_stages(r)] == ["clean", "camera"] and r.version == "3.0.0"
    assert {k: v for k, v in r.interpolate.items() if k != "soup"} == r2.interpolate


def test_alpha_and_tau_on_odd_performers_stay_within_the_validation_floor():
    """2.0.0's rule: the best odd-performer accuracy among (alpha, tau) no more than max_valid_drop below the start."""
    rows = [{"alpha": 0.0, "tau": 0.0, "val_acc": 0.83, "odd_acc": 0.46},
            {"alpha": 0.5, "tau": 0.35, "val_acc": 0.815, "odd_acc": 0.52},
            {"alpha": 0.5, "tau": 0.6, "val_acc": 0.80, "odd_acc": 0.55},      # best on odd, costs 3 points
            {"alpha": 1.0, "tau": 0.35, "val_acc": 0.82, "odd_acc": 0.52}]     # tie on odd, better validation
    best, floor = recipe.choose_on_odd(rows, 0.02)
    assert floor == pytest.approx(0.81) and (best["alpha"], best["tau"]) == (1.0, 0.35)
    assert recipe.choose_on_odd(rows, 0.05)[0]["tau"] == 0.6
    assert recipe.choose_on_odd(rows, 0.0)[0]["alpha"] == 0.0


def test_the_2_0_recipe_reads_as_2_0_0_was_made():
    """models/recipes/2.0.yaml: 1.0.0's float weights, teachers A and B, alpha and tau chosen on odd performers."""
    r = recipe.load(REPO / "models" / "recipes" / "2.0.yaml")
    st = r.stages[-1]
    assert r.version == "2.0.0" and r.teachers == ("A", "B")
    assert st.init == "models/reference/1.0.0/fer_emotion_float.tflite" and st.epochs == 6
    assert st.weights == {"votes": 0.3, "A": 0.35, "B": 0.35} and st.augment.degrade_p == 0.0
    assert r.interpolate["choose_on"] == "odd_performers" and r.interpolate["max_valid_drop"] == 0.02


@pytest.mark.parametrize("extra, message", [
    ("interpolate: {alphas: [0.5, 2]}\n", "each alpha between 0"),
    ("interpolate: {alphas: [0.5], choose_on: test_split}\n", "choose_on is one of"),
    ("interpolate: {alpha: 0.5}\n", "give {alphas"),
    ("interpolate: {alphas: [0.5]}\n", "starts from a model"),
])
def test_interpolation_errors_name_the_file(tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        recipe.load(_write(tmp_path / "r.yaml", TINY + extra))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
