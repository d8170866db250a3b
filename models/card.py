"""Write a model card and install a trained int8 model into edge/model/ ("ship" it: package data of edge).

The card is the contract between training and runtime: the runtime reads classes, input and
preprocessing from it and refuses a model whose sha256 or shape differ. The accuracy figures in
it are measured here, by models.evaluate, on the held-out FER+ test split.
"""
from __future__ import annotations

import json
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path

from edge.config.align import FERPLUS_EYE_DISTANCE, FERPLUS_EYE_Y
from edge.config.model import SHIPPED_MODEL
from edge.evaluation import fer as evaluate
from edge.interpreter import interpreter_class, open_interpreter, sha256_file
from models import ferplus

MODELS_DIR = Path(__file__).resolve().parent
SHIPPED_NAME = "fer_emotion_int8"
CARD_VERSION = "2.0.0"


def base_card(model_path: Path, views: tuple[str, ...] | list[str] = ("id",), version: str = CARD_VERSION) -> dict:
    """The card fields read from the model file itself (I/O, quantization, size and hash), under ``version``."""
    it = open_interpreter(model_path)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    return {
        "name": "fer-edge-emotion",
        "version": version,
        "file": model_path.name,
        "sha256": sha256_file(model_path),
        "size_bytes": model_path.stat().st_size,
        "classes": list(ferplus.CLASSES),
        "input": {"size": 48, "channels": 1, "layout": "NHWC", "shape": [-1, 48, 48, 1],
                  "dtype": str(inp["dtype"].__name__),
                  "quantization": {"scale": float(inp["quantization"][0]), "zero_point": int(inp["quantization"][1])}},
        "preprocessing": {
            "description": "Aligned face crop (edge/align.py, FER+ framing) -> grayscale (cv2.COLOR_BGR2GRAY) -> "
                           "resize to 48x48 (cv2.INTER_AREA when shrinking) -> float pixel values 0..255 "
                           "(x = pixel * pixel_scale + pixel_offset) -> quantize with the input scale and "
                           "zero point (q = round(x / scale) + zero_point, clipped to int8).",
            "color": "gray", "resize": "INTER_AREA", "pixel_scale": 1.0, "pixel_offset": 0.0,
            # how the aligner frames a face for this model (edge.classify.ModelCard; align.eye_y/eye_distance
            # override it): FER+'s, which the training crops have
            "framing": {"eye_y": FERPLUS_EYE_Y, "eye_distance": FERPLUS_EYE_DISTANCE},
        },
        "output": {"dtype": str(out["dtype"].__name__), "activation": "softmax",
                   "quantization": {"scale": float(out["quantization"][0]), "zero_point": int(out["quantization"][1])}},
        "test_time_views": list(views),
    }


def training_prior(data_dir: Path) -> dict[str, float]:
    """The class prior of the training targets (read by the runtime's model.prior_correction)."""
    tr = ferplus.load_split("train", data_dir)
    targets, keep = ferplus.vote_distributions(tr.votes)
    return ferplus.class_prior(targets[keep])


#: The 1.0.0 model, kept for the side-by-side benchmark (bench/accuracy.py) and as the "ref" teacher.
REFERENCE_1_0 = MODELS_DIR / "reference" / "1.0.0" / "fer_emotion_int8.tflite"

DATA_TERMS = {
    "FER2013 images": "ICML 2013 challenge data (Goodfellow et al. 2013): research use",
    "FER+ labels": "Microsoft FERPlus, MIT licence",
    "CK+": "Extended Cohn-Kanade (Lucey et al. 2010): released for non-commercial research only",
    "teacher A": "Intel Open Model Zoo emotions-recognition-retail-0003, Apache-2.0, trained on AffectNet "
                 "(training-time only: its soft labels, not its weights, shaped this model)",
    "teacher B": "OpenCV Zoo facial_expression_recognition_mobilefacenet_2022july_int8, Apache-2.0, trained on "
                 "RAF-DB (training-time only)",
    "1.0.0": "this project's own previous model: the starting weights (models/warmstart.py) and, where its weight "
             "is not 0, a third teacher",
}

FIGURES = {
    "test_int8 / test_float": "FER+ test split, majority protocol, 3,137 images: top-1 accuracy of this int8 model "
                              "and of its float parent (never used for training or selection)",
    "valid_*": "FER+ validation split, majority protocol: what the epoch was selected on",
    "ckplus_valid": "CK+ faces of held-out subjects (subject-disjoint split, no neutral): also used for selection",
    "test_slice500_int8": "the first 500 majority-protocol test images: a quick check for the tests",
    "taiwanese": "1,232 posed Taiwanese photographs through the whole pipeline with the default config "
                 "(detector, aligner, this model); no face = wrong; 'agreed' = photos whose observers agreed "
                 "with the posed label plus every neutral one (974); 'odd'/'even' = performer halves, the "
                 "prior correction in the graph (and the weight interpolation alpha) were chosen on the odd half "
                 "only, so 'even' is untouched",
    "latency_ms_per_face": "one thread, batch 1, preprocessing excluded; 1.0.0 measured in the same run",
}


class _Scores:
    """An EmotionModel as models.taiwanese expects it (``scores(crops)``)."""

    def __init__(self, path: Path):
        from edge.classify import EmotionModel

        self.model = EmotionModel(path, threads=1)

    def scores(self, crops):
        import numpy as np

        m = self.model
        return np.concatenate([m.normalize(m.predict(m.preprocess(crops[s:s + 64]))) for s in range(0, len(crops), 64)])


def ckplus_valid_accuracy(model_path: Path, data_dir: Path, seed: int) -> dict:
    """Accuracy on the held-out CK+ subjects (the validation side of models.ckplus.subject_split)."""
    from models import ckplus

    _, va = ckplus.subject_split(ckplus.load(data_dir), seed=seed)
    pred = _Scores(model_path).scores(list(va.images)).argmax(axis=1)
    return {"n": len(va), "subjects": len(set(va.subjects)), "accuracy": round(float((pred == va.labels).mean()), 4)}


def taiwanese_figures(model_path: Path, data_dir: Path) -> dict:
    """The whole-pipeline figures on the Taiwanese photographs (models.taiwanese), rounded for the card."""
    from models import taiwanese

    photos = taiwanese.load_photos(data_dir / "faces" / "taiwanese_fed")
    pred, _ = taiwanese.photo_predictions(_Scores(model_path), photos, big=False)
    fig = taiwanese.taiwan_figures(pred, photos)
    return {k: (round(v, 4) if isinstance(v, float) else {c: round(r, 4) for c, r in v.items()}
                if isinstance(v, dict) else v) for k, v in fig.items()}


def measure(paths: dict[str, Path], data_dir: Path, ck_seed: int) -> tuple[dict, dict]:
    """The card's measured sections (accuracy, latency, float model) of an int8 model and its float parent.

    Returns (card fields, the int8 test report for the confusion figure).
    """
    reports = {kind: evaluate.evaluate(path, split="test", data_dir=data_dir, latency=False)
               for kind, path in paths.items()}
    latency = dict(zip(("int8", "float", "1.0.0_int8_same_run"), evaluate.measure_latencies(
        [evaluate.batch1_runner(_Scores(p).model) for p in (paths["int8"], paths["float"], REFERENCE_1_0)],
        evaluate.load_eval_set("test", data_dir)[0])))
    valid = {kind: evaluate.evaluate(path, split="valid", data_dir=data_dir, latency=False) for kind, path in paths.items()}
    slice_report = evaluate.evaluate(paths["int8"], split="test", data_dir=data_dir,
                                     limit=evaluate.SLICE_SIZE, latency=False)
    for r in reports.values():
        print(r.table())
    fields = {
        "accuracy": {
            "figures": FIGURES,
            "protocol": "FER+ majority (Barsoum et al. 2016): single votes zeroed, label = emotion with > half of "
                        "the remaining votes, unknown/not_face dropped",
            "test_int8": reports["int8"].as_dict(),
            "test_float": reports["float"].as_dict(),
            "valid_int8": {"n": valid["int8"].n, "accuracy": round(valid["int8"].accuracy, 4)},
            "valid_float": {"n": valid["float"].n, "accuracy": round(valid["float"].accuracy, 4)},
            "ckplus_valid_int8": ckplus_valid_accuracy(paths["int8"], data_dir, ck_seed),
            f"test_slice{evaluate.SLICE_SIZE}_int8": {"n": slice_report.n, "accuracy": round(slice_report.accuracy, 4),
                                                     "definition": f"the first {evaluate.SLICE_SIZE} images of the "
                                                                   "majority-protocol test set, in archive order"},
            "taiwanese": taiwanese_figures(paths["int8"], data_dir),
        },
        "latency_ms_per_face": {
            **{k: round(v, 3) for k, v in latency.items()},
            "ratio_to_1.0.0": round(latency["int8"] / latency["1.0.0_int8_same_run"], 3),
            "setting": "one thread, batch 1, preprocessing excluded; median over 300 test faces, the three models "
                       "timed in turn face by face (models.evaluate.measure_latencies)",
            "interpreter": interpreter_class()[1], "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        },
        "float_model": {"file": "models/reference/fer_emotion_float.tflite", "size_bytes": paths["float"].stat().st_size,
                        "sha256": sha256_file(paths["float"]),
                        "note": "not used at run time; kept for the int8-vs-float benchmark (bench/model.py)"},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "license": "model weights: this project's licence; trained on data with the terms in training.data_terms "
                   "(CK+: non-commercial research only; FER2013: research use)",
    }
    return fields, reports["int8"]


def install(card: dict, paths: dict[str, Path], cards: dict[str, dict], report) -> None:
    """Copy the int8 model and its card into edge/model/ and its float parent into models/reference/."""
    dest = SHIPPED_MODEL.with_name(f"{SHIPPED_NAME}.tflite")
    shutil.copyfile(paths["int8"], dest)
    assert sha256_file(dest) == card["sha256"]
    dest.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    # The float model it came from stays beside it for the int8-vs-float benchmark (bench/model.py).
    ref = MODELS_DIR / "reference" / "fer_emotion_float.tflite"
    ref.parent.mkdir(exist_ok=True)
    shutil.copyfile(paths["float"], ref)
    ref.with_suffix(".json").write_text(json.dumps(cards["float"] | {"file": ref.name}, indent=2) + "\n")
    evaluate.confusion_png(report, MODELS_DIR.parent / "docs" / "model_confusion.png")
    print(f"shipped {dest} ({card['size_bytes'] / 1e6:.2f} MB) sha256 {card['sha256']}")


#: The model 3.0 started from, kept for the side-by-side benchmark (bench/accuracy.py) and as teacher "v2".
REFERENCE_2_0 = MODELS_DIR / "reference" / "2.0.0" / "fer_emotion_int8.tflite"


def recipe_card(recipe, run: Path, paths: dict[str, Path], data_dir: Path, tau: float,
                chosen: tuple, selection: str) -> tuple[dict, dict[str, dict], object]:
    """(the card a recipe run's int8 model ships with, its models' base cards, the int8 test report): every
    figure measured on held-out data; nothing installed. ``selection`` says how each stage chose its epoch
    (models.recipe.selection_text)."""
    from dataclasses import asdict

    run = Path(run)
    cards = {kind: json.loads(path.with_suffix(".json").read_text()) for kind, path in paths.items()}
    folder, st, best = chosen
    log = json.loads((run / folder / "log.json").read_text())
    fields, report = measure(paths, data_dir, st.ck_seed)
    prior = json.loads((run / "prior.json").read_text()) if (run / "prior.json").exists() else {"tau": tau}
    widths = "-".join(str(w) for w in log["stage"]["widths"]) if not st.init else "32-64-128-256"
    card = cards["int8"] | {
        "version": recipe.version,
        "file": f"{SHIPPED_NAME}.tflite",
        "architecture": f"single-view VGG-style CNN, 4 blocks x 2 conv3x3+{'bias (BN folded)' if st.init else 'BN'}"
                        f"+ReLU ({widths}), global average pooling, dense 8; {log['params']:,} parameters; "
                        "no test-time views",
        "initialised_from": st.init or "random (trained from scratch)",
        "macs_per_face": log["macs_per_face"],
        "recipe": {"file": str(recipe.path), "sha256": sha256_file(Path(recipe.path)),
                   "command": f"python -m models.train --recipe {recipe.path} --teachers ../shared/teachers --ship"},
        "training": {
            "code": "models/recipe.py (python -m models.train --recipe), stages models/fit.py, augmentation "
                    "models/augment.py, pack models/pack.py, teachers models/teachers.py, export models/export.py, "
                    "card models/card.py",
            "backend": log["backend"],
            "data": [f"FER+ train split: {log['train_faces'] - 0} faces per epoch with CK+ repeats (pack: models/pack.py)",
                     (f"CK+: training subjects x{st.ckplus_repeat} per epoch; subject-disjoint held-out split (seed "
                     f"{st.ck_seed}) for selection")],
            "data_terms": DATA_TERMS,
            "stages": {name: asdict(s) | {"augment": asdict(s.augment)} for name, s in
                       ((s.name, s) for s in recipe.stages)},
            "targets": "per face a weighted sum of cross-entropies against the FER+ vote distribution (CK+: the posed "
                       "label) and the teachers' scores, each teacher compared only over the classes it has; weights "
                       f"{st.weights}",
            "selection": selection,
            "selected_epoch": best,
            "interpolation": (json.loads((run / "interpolate.json").read_text()) if (run / "interpolate.json").exists()
                              else None),
            "prior_correction_in_graph": tau,
            "prior_correction_choice": prior,
            "class_prior": training_prior(data_dir),
            "quantization": "full integer (int8 weights and activations, int8 input and output), "
                            f"calibrated on {recipe.export.get('calibration_faces', 500)} training images",
        },
        **fields,
        "previous": {"version": "2.0.0", "file": "models/reference/2.0.0/fer_emotion_int8.tflite",
                     "sha256": sha256_file(REFERENCE_2_0)},
    }
    return card, cards, report


#: The figures a reproduction is judged on: (label, path into the card, allowed difference in points or None).
REPRODUCED = (("FER+ validation, float", ("accuracy", "valid_float", "accuracy"), 0.5),
              ("FER+ validation, int8", ("accuracy", "valid_int8", "accuracy"), 0.5),
              ("FER+ test, int8", ("accuracy", "test_int8", "accuracy"), None),
              ("Taiwanese all", ("accuracy", "taiwanese", "all"), 1.5),
              ("Taiwanese agreed", ("accuracy", "taiwanese", "agreed"), None),
              ("Taiwanese even half", ("accuracy", "taiwanese", "even"), None),
              ("latency / 1.0.0", ("latency_ms_per_face", "ratio_to_1.0.0"), None))


def compare_cards(card: dict, shipped: dict) -> tuple[list[str], bool]:
    """A table of ``card``'s figures beside ``shipped``'s, and whether every judged figure is within its bound."""
    def get(c: dict, path: tuple):
        for k in path:
            c = c.get(k, {}) if isinstance(c, dict) else {}
        return c if isinstance(c, (int, float)) else None

    lines = [f"| figure | this run | shipped {shipped.get('version', '?')} | difference | bound |", "|---|---:|---:|---:|---|"]
    ok = True
    for label, path, bound in REPRODUCED:
        a, b = get(card, path), get(shipped, path)
        if a is None or b is None:
            continue
        pct = path[0] == "accuracy"
        diff = 100 * (a - b) if pct else a - b
        within = bound is None or abs(diff) <= bound + 1e-9
        ok &= within
        fmt = (lambda v: f"{100 * v:.2f}%") if pct else (lambda v: f"{v:.3f}")
        lines.append(f"| {label} | {fmt(a)} | {fmt(b)} | {diff:+.2f}{' pt' if pct else ''} | "
                     + (f"within {bound} pt: {'yes' if within else 'NO'}" if bound is not None else "reported") + " |")
    return lines, ok


def ship(run: Path, paths: dict[str, Path], data_dir: Path) -> dict:
    """Evaluate the run's int8 and float models and install the int8 one with its full card (2.0)."""
    run = Path(run)
    export = json.loads((run / "export.json").read_text())
    log = json.loads((run / "train_log.json").read_text())
    cards = {kind: json.loads(path.with_suffix(".json").read_text())  # export_run's provisional cards
             for kind, path in paths.items()}

    fields, report = measure(paths, data_dir, log["args"]["ck_seed"])
    student, data = log["student"], log["data"]
    tau = float(export.get("prior_correction_in_graph") or 0.0)
    widths = "-".join(str(w) for w in student["widths"])
    soup = log.get("soup")
    warm = str(log["args"].get("init") or "").endswith(".tflite")  # models.warmstart: a float model, BN folded
    card = cards["int8"] | {
        "file": f"{SHIPPED_NAME}.tflite",
        "architecture": f"single-view VGG-style CNN, {len(student['widths'])} blocks x 2 conv3x3+"
                        f"{'bias (BN folded)' if warm else 'BN'}+ReLU ({widths}), "
                        f"global average pooling, dense 8; {export['params']:,} parameters; no test-time views",
        "initialised_from": log["args"]["init"] if warm else "random (trained from scratch)",
        "macs_per_face": student["macs_per_face"],
        "training": {
            "code": "models/studies/distill.py (python -m models.studies.distill), teachers models/teachers.py, "
                    "CK+ models/ckplus.py, student models/student.py, export models/export.py, card models/card.py",
            "data": [f"FER+ train split: {data['ferplus_train']} faces (vote distributions)",
                     (f"CK+: {data['ckplus_train_faces']} faces of {data['ckplus_train_subjects']} subjects "
                     f"(reframed to FER+ framing, x{data['ckplus_repeat']} per epoch); "
                     f"{data['ckplus_valid_faces']} faces of {data['ckplus_valid_subjects']} other subjects held out")],
            "data_terms": DATA_TERMS,
            "targets": "per face a weighted sum of cross-entropies against: the FER+ vote distribution (CK+: the "
                       "posed label) and the teachers' scores (A: Intel emotions-recognition-retail-0003, B: OpenCV Zoo "
                       "MobileFaceNet FER, ref: the 1.0.0 float model), each teacher compared only over the classes it "
                       f"has (A lacks disgust, fear and contempt; B contempt); weights {data['weights']}",
            "selection": f"epoch {log['best']['epoch']} of {len(log['epochs'])}, best FER+ validation accuracy + "
                         f"{log['args']['ck_weight']} x held-out CK+ accuracy (the FER+ test split and the Taiwanese "
                         "photographs are never used for training or selection)",
            "weight_interpolation": {k: soup[k] for k in ("start", "chosen_alpha", "chosen_tau", "rule")} | {
                "note": "weights = (1 - alpha) x the start's + alpha x the fine-tuned run's "
                        "(models/studies/soup.py, WiSE-FT); alpha and tau are the only settings chosen on "
                        "Taiwanese photographs, on the odd-numbered performers only"} if soup else "none",
            "prior_correction_in_graph": tau,
            "prior_correction_note": "the output bias includes -tau*log(class_prior) (the runtime's "
                                     "model.prior_correction, built in); tau chosen on the odd-numbered Taiwanese "
                                     "performers only (bench/accuracy.py --tune-prior, or with alpha by "
                                     "models/studies/soup.py --tune-on-odd)"
                                     if tau else "none",
            "args": log["args"],
            "class_prior": training_prior(data_dir),
            "quantization": "full integer (int8 weights and activations, int8 input and output), "
                            "calibrated on 500 training images",
        },
        **fields,
        "previous": {"version": "1.0.0", "file": "models/reference/1.0.0/fer_emotion_int8.tflite",
                     "sha256": sha256_file(REFERENCE_1_0)},
    }
    install(card, paths, cards, report)
    return card
