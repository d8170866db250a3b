"""Evaluate a .tflite emotion model on FER+ with the standard majority protocol.

    fer-edge eval [MODEL.tflite] [--split test] [--png confusion.png] [--data ../shared/data]

Runs the model through edge.classify.EmotionModel, i.e. the interpreter and preprocessing the
runtime uses, and prints top-1 accuracy, per-class recall, the confusion matrix and the mean
single-thread, batch-1 latency per face.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.classify import EmotionModel
from edge.config.model import SHIPPED_MODEL, prior_correction_error
from edge.evaluation import ferplus
from edge.evaluation.data import add_data_argument
from edge.exitcodes import EXIT_MODEL, EXIT_OK, EXIT_USAGE
from edge.interpreter import ModelError

#: The fixed slice the tests compare with the card: the first N majority-protocol test images.
SLICE_SIZE = 500


@dataclass
class Report:
    """Accuracy figures of one model on one split."""

    model: str
    split: str
    n: int
    accuracy: float
    recall: dict[str, float]
    confusion: np.ndarray                     # rows: true class, columns: predicted
    latency_ms: float | None = None
    classes: tuple[str, ...] = field(default=ferplus.CLASSES)
    prior_correction: float = 0.0

    @property
    def mean_recall(self) -> float:
        """Balanced accuracy: the mean of the per-class recalls (classes present in the split)."""
        return float(np.nanmean(list(self.recall.values())))

    def table(self) -> str:
        """Human-readable accuracy, recall and confusion matrix."""
        lines = [f"{self.model} on FER+ {self.split} (majority protocol, {self.n} images): "
                 f"top-1 accuracy {100 * self.accuracy:.2f}%, mean per-class recall {100 * self.mean_recall:.2f}%"
                 + (f" (prior correction {self.prior_correction:g})" if self.prior_correction else "")]
        if self.latency_ms is not None:
            lines.append(f"mean latency per face (1 thread, batch 1): {self.latency_ms:.3f} ms")
        lines.append("per-class recall: " + ", ".join(f"{c} {100 * r:.1f}%" for c, r in self.recall.items()))
        short = [c[:5] for c in self.classes]
        lines.append("confusion (rows true, columns predicted):")
        lines.append(" " * 10 + "".join(f"{s:>7}" for s in short))
        for c, row in zip(short, self.confusion):
            lines.append(f"{c:>10}" + "".join(f"{v:>7d}" for v in row))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"split": self.split, "n": self.n, "accuracy": round(self.accuracy, 4),
                "recall": {c: round(r, 4) for c, r in self.recall.items()},
                "confusion": self.confusion.tolist(),
                **({"latency_ms": round(self.latency_ms, 3)} if self.latency_ms is not None else {})}


def load_eval_set(split: str, data_dir: Path | None = None, limit: int | None = None):
    """Majority-protocol images and labels of ``valid`` or ``test`` (the first ``limit`` if given)."""
    images, labels = ferplus.majority_subset(ferplus.load_split(split, data_dir))
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def measure_latency(model, images: np.ndarray, n: int = 300, warmup: int = 20) -> float:
    """Mean milliseconds per face for batch-1 inference (preprocessing excluded)."""
    xs = [model.preprocess([img]) for img in images[: n + warmup]]
    for x in xs[:warmup]:
        model.predict(x)
    t0 = time.perf_counter()
    for x in xs[warmup:]:
        model.predict(x)
    return 1000 * (time.perf_counter() - t0) / max(1, len(xs) - warmup)


def measure_latencies(runners: list, images: np.ndarray, n: int = 300, warmup: int = 20) -> list[float]:
    """Median milliseconds per face of several batch-1 models, timed in turn face by face.

    ``runners``: (prepare, predict) pairs: ``prepare(face)`` (preprocessing, not timed) gives what
    ``predict`` takes. Interleaving the models face by face and taking the median keeps the ratios
    fair on a machine whose load changes while it runs.
    """
    faces = images[: n + warmup]
    inputs = [[prepare(f) for f in faces] for prepare, _ in runners]
    times: list[list[float]] = [[] for _ in runners]
    for k in range(len(faces)):
        for (_, predict), xs, t in zip(runners, inputs, times):
            t0 = time.perf_counter()
            predict(xs[k])
            if k >= warmup:
                t.append(time.perf_counter() - t0)
    return [1000 * float(np.median(t)) for t in times]


def batch1_runner(model) -> tuple:
    """An EmotionModel as a measure_latencies runner."""
    return (lambda face: model.preprocess([face])), model.predict


def evaluate(model_path: str | Path, card_path: str | Path | None = None, split: str = "test",
             data_dir: Path | None = None, limit: int | None = None, latency: bool = True,
             verify_sha256: bool = True, prior_correction: float = 0.0) -> Report:
    """Run a model over a FER+ split and return its Report (``prior_correction`` as model.prior_correction)."""
    # The model first: a wrong model path is the user's own argument, and it is reported as such
    # even where the data set is missing too.
    model = EmotionModel(model_path, card_path, threads=1, verify_sha256=verify_sha256,
                         prior_correction=prior_correction)
    images, labels = load_eval_set(split, data_dir, limit)
    preds = []
    for s in range(0, len(images), 64):
        preds.append(model.normalize(model.predict(model.preprocess(list(images[s:s + 64])))).argmax(axis=1))
    pred = np.concatenate(preds)
    k = len(model.classes)
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (labels, pred), 1)
    recall = {c: float(conf[i, i] / conf[i].sum()) if conf[i].sum() else float("nan")
              for i, c in enumerate(model.classes)}
    lat = measure_latency(model, images) if latency else None
    return Report(model=Path(model_path).name, split=split, n=len(labels),
                  accuracy=float((pred == labels).mean()), recall=recall, confusion=conf,
                  latency_ms=lat, classes=model.classes, prior_correction=prior_correction)


def confusion_png(report: Report, path: str | Path) -> None:
    """Draw the row-normalised confusion matrix as a PNG (OpenCV only, no plotting library)."""
    import cv2

    k, cell, left, top = len(report.classes), 70, 110, 90
    img = np.full((top + k * cell + 20, left + k * cell + 20, 3), 255, np.uint8)
    norm = report.confusion / np.maximum(report.confusion.sum(axis=1, keepdims=True), 1)
    for i in range(k):
        for j in range(k):
            shade = int(255 * (1 - norm[i, j]))
            x, y = left + j * cell, top + i * cell
            cv2.rectangle(img, (x, y), (x + cell, y + cell), (255, shade, shade), -1)
            color = (255, 255, 255) if norm[i, j] > 0.5 else (0, 0, 0)
            cv2.putText(img, f"{100 * norm[i, j]:.0f}", (x + 18, y + 32), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1)
            cv2.putText(img, str(report.confusion[i, j]), (x + 18, y + 52), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1)
        cv2.putText(img, report.classes[i][:9], (5, top + i * cell + 40), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        cv2.putText(img, report.classes[i][:7], (left + i * cell + 5, top - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
    cv2.putText(img, f"{report.model} FER+ {report.split}: {100 * report.accuracy:.2f}% (rows: true, % of row)",
                (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.imwrite(str(path), img)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL, --card, --split, --limit, --data, --png, --no-latency, --prior-correction."""
    p.add_argument("model", nargs="?", default=str(SHIPPED_MODEL), help="the .tflite to evaluate (default: shipped)")
    p.add_argument("--card", default=None, help="its model card (default: the .json beside it)")
    p.add_argument("--split", choices=["test", "valid"], default="test")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of the split")
    add_data_argument(p)
    p.add_argument("--png", default=None, help="also save the confusion matrix as this PNG")
    p.add_argument("--no-latency", action="store_true")
    p.add_argument("--prior-correction", type=float, default=0.0, metavar="TAU",
                   help="divide the scores by the training class prior^TAU first (model.prior_correction)")


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the report (and the PNG with --png); the exit code."""
    if (err := prior_correction_error(args.prior_correction)):
        print(f"fer-edge eval: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = evaluate(args.model, args.card, args.split, args.data, args.limit, latency=not args.no_latency,
                          prior_correction=args.prior_correction)
    except (ModelError, FileNotFoundError) as exc:
        print(f"fer-edge eval: {exc}", file=sys.stderr)
        return EXIT_MODEL
    print(report.table())
    if args.png:
        confusion_png(report, args.png)
        print(f"confusion matrix saved to {args.png}")
    return EXIT_OK
