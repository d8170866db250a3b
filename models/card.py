"""Write a model card and install a trained int8 model into edge/model/ ("ship" it: package data of edge).

The card is the contract between training and runtime: the runtime reads classes, input and
preprocessing from it and refuses a model whose sha256 or shape differ. The accuracy figures in
it are measured here, by models.evaluate, on the held-out FER+ test split.
"""
from __future__ import annotations

import json
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path

from edge.config.model import SHIPPED_MODEL
from edge.interpreter import interpreter_class, open_interpreter, sha256_file
from models import evaluate, ferplus

MODELS_DIR = Path(__file__).resolve().parent
SHIPPED_NAME = "fer_emotion_int8"
CARD_VERSION = "1.0.0"


def base_card(model_path: Path, views: tuple[str, ...] | list[str] = ("id",)) -> dict:
    """The card fields read from the model file itself: I/O, quantization, size and hash."""
    it = open_interpreter(model_path)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    return {
        "name": "fer-edge-emotion",
        "version": CARD_VERSION,
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


def ship(run: Path, paths: dict[str, Path], data_dir: Path) -> dict:
    """Evaluate the run's int8 and float models and install the int8 one with its full card."""
    run = Path(run)
    export = json.loads((run / "export.json").read_text())
    log = json.loads((run / "train_log.json").read_text())
    cards = {}
    for kind, path in paths.items():  # provisional cards so the evaluator can open both models
        cards[kind] = base_card(path, export["views"])
        path.with_suffix(".json").write_text(json.dumps(cards[kind], indent=2))

    reports = {kind: evaluate.evaluate(path, split="test", data_dir=data_dir) for kind, path in paths.items()}
    valid = {kind: evaluate.evaluate(path, split="valid", data_dir=data_dir, latency=False) for kind, path in paths.items()}
    slice_report = evaluate.evaluate(paths["int8"], split="test", data_dir=data_dir,
                                     limit=evaluate.SLICE_SIZE, latency=False)
    for r in reports.values():
        print(r.table())

    card = cards["int8"] | {
        "file": f"{SHIPPED_NAME}.tflite",
        "architecture": f"VGG-style CNN, 4 blocks x 2 conv3x3+BN+ReLU (32-64-128-256), global average pooling, "
                        f"dense 8; {export['params']:,} parameters"
                        + (f"; the graph averages the logits of {len(export['views'])} views of each face "
                           f"({', '.join(export['views'])}; chosen on validation by models/select_tta.py)"
                           if len(export["views"]) > 1 else ""),
        "training": {
            "code": "models/train.py (python -m models.train), export models/export.py, card models/card.py",
            "data": "FER+ (FER2013 images with Microsoft FER+ 10-annotator votes), train split "
                    f"({log.get('train_images', 'all usable')} images)",
            "targets": "vote distributions over the 8 emotions (single votes dropped where others remain); images "
                       "whose top column is unknown or not_face excluded",
            "selection": f"epoch {log['best']['epoch']} of {len(log['epochs'])}, best majority accuracy on the FER+ "
                         "validation split (the test split is never used for training or selection)",
            "args": log["args"],
            "class_prior": training_prior(data_dir),
            "quantization": "full integer (int8 weights and activations, int8 input and output), "
                            "calibrated on 500 training images",
        },
        "accuracy": {
            "protocol": "FER+ majority (Barsoum et al. 2016): single votes zeroed, label = emotion with > half of "
                        "the remaining votes, unknown/not_face dropped",
            "test_int8": reports["int8"].as_dict(),
            "test_float": reports["float"].as_dict(),
            "valid_int8": {"n": valid["int8"].n, "accuracy": round(valid["int8"].accuracy, 4)},
            "valid_float": {"n": valid["float"].n, "accuracy": round(valid["float"].accuracy, 4)},
            f"test_slice{evaluate.SLICE_SIZE}_int8": {"n": slice_report.n, "accuracy": round(slice_report.accuracy, 4),
                                                     "definition": f"the first {evaluate.SLICE_SIZE} images of the "
                                                                   "majority-protocol test set, in archive order"},
        },
        "latency_ms_per_face": {
            "int8": round(reports["int8"].latency_ms, 3), "float": round(reports["float"].latency_ms, 3),
            "setting": "one thread, batch 1, preprocessing excluded",
            "interpreter": interpreter_class()[1], "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        },
        "float_model": {"file": "reference/fer_emotion_float.tflite", "size_bytes": paths["float"].stat().st_size,
                        "sha256": sha256_file(paths["float"]),
                        "note": "not used at run time; kept for the int8-vs-float benchmark"},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "license": "model weights: this project's licence; FER+ labels MIT; FER2013 images research use",
    }
    dest = SHIPPED_MODEL.with_name(f"{SHIPPED_NAME}.tflite")
    shutil.copyfile(paths["int8"], dest)
    assert sha256_file(dest) == card["sha256"]
    dest.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    # The float model it came from stays beside it for the int8-vs-float benchmark (bench/model.py).
    ref = MODELS_DIR / "reference" / "fer_emotion_float.tflite"
    ref.parent.mkdir(exist_ok=True)
    shutil.copyfile(paths["float"], ref)
    ref.with_suffix(".json").write_text(json.dumps(cards["float"] | {"file": ref.name}, indent=2) + "\n")
    evaluate.confusion_png(reports["int8"], MODELS_DIR.parent / "docs" / "model_confusion.png")
    print(f"shipped {dest} ({card['size_bytes'] / 1e6:.2f} MB) sha256 {card['sha256']}")
    return card
