"""The Taiwanese photographs through the whole pipeline: crops once, then any classifier's figures.

Evaluation only (never training): the default detector and aligner run once per photograph, every
model then classifies the same crop of the largest face; a photograph without a face counts as
wrong. ``tune_prior`` chooses the one scalar the issue allows to be tuned on these photographs,
the prior-correction strength, on the odd-numbered performers only.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.classify import prior_weights
from edge.evaluation.taiwanese import LABEL_MAP as TAIWAN_CLASSES
from models import ferplus



def default_dataset() -> Path:
    return ferplus.default_data_dir() / "faces" / "taiwanese_fed"


@dataclass
class Photos:
    """The Taiwanese photographs, one crop of the largest face per photograph (None: no face)."""

    labels: np.ndarray       # (N,) FER+ class index of the posed label
    performer: np.ndarray    # (N,) int
    agreed: np.ndarray       # (N,) bool: observers agreed with the posed label, or neutral
    crops: list              # 48 px grey crops (pipeline default), None where no face was found
    crops_big: list          # the same faces aligned at 112 px, for the teachers


def load_photos(dataset: Path, limit: int = 0) -> Photos:
    """Detect and align the largest face of every photograph with the default pipeline config."""
    import cv2

    from edge.align import align_faces
    from edge.config.align import AlignConfig
    from edge.face_analyzer import FaceAnalyzer, PipelineSections

    rows = photo_rows(dataset, limit)
    sections = PipelineSections()
    analyzer = FaceAnalyzer(sections, classify=False)
    big = sections.align.model_copy(update={"size": 112}) if hasattr(sections.align, "model_copy") \
        else AlignConfig(size=112)
    crops, crops_big = [], []
    for r in rows:
        image = cv2.imread(str(dataset / r["path"]), cv2.IMREAD_COLOR)
        dets = analyzer.detect(image) if image is not None else []
        crops.append(analyzer.align(image, dets[:1])[0] if dets else None)
        crops_big.append(align_faces(image, dets[:1], big)[0] if dets else None)
    return Photos(*_labels(rows), crops, crops_big)


def photo_rows(dataset: Path, limit: int = 0) -> list[dict]:
    """The labels.csv rows of the photographs evaluated (labels this project maps), in file order."""
    with open(dataset / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in TAIWAN_CLASSES]
    return rows[:limit] if limit else rows


def _labels(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = np.array([ferplus.CLASSES.index(TAIWAN_CLASSES[r["label"]]) for r in rows])
    agreed = np.array([r["label"] == "neutral" or r.get("agree", "").strip().lower() in ("1", "true", "yes")
                       for r in rows])
    return labels, np.array([int(r["performer"]) for r in rows]), agreed


def photo_labels(dataset: Path, limit: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(posed label as FER+ class index, performer, agreed) of each photograph, in load_photos' order."""
    return _labels(photo_rows(dataset, limit))


def photo_predictions(model, photos: "Photos", big: bool, prior: np.ndarray | None = None,
                      tau: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class per photograph, -1 where no face; the scores of the photographs with a face)."""
    crops = photos.crops_big if big else photos.crops
    found = [i for i, c in enumerate(crops) if c is not None]
    scores = model.scores([crops[i] for i in found])
    if tau and prior is not None:
        scores = scores * prior_weights(prior, tau)
    pred = np.full(len(crops), -1)
    pred[found] = scores.argmax(axis=1)
    return pred, scores


def taiwan_figures(pred: np.ndarray, photos: Photos) -> dict:
    ok = pred == photos.labels
    odd = photos.performer % 2 == 1
    recall = {ferplus.CLASSES[c]: float(ok[photos.labels == c].mean())
              for c in sorted(set(photos.labels.tolist()))}
    return {"all": float(ok.mean()), "agreed": float(ok[photos.agreed].mean()), "odd": float(ok[odd].mean()),
            "even": float(ok[~odd].mean()), "recall": recall, "n": len(ok), "n_agreed": int(photos.agreed.sum()),
            "n_even": int((~odd).sum())}


#: The prior-correction strengths tried on the odd-numbered performers.
TAUS = tuple(float(t) for t in np.round(np.arange(0, 1.01, 0.05), 2))


def corrected_accuracy(scores: np.ndarray, labels: np.ndarray, prior: np.ndarray | None, tau: float) -> float:
    """Accuracy of ``scores`` (one row per face) against ``labels`` after the prior correction ``tau``
    (tau 0: the scores as they are, and ``prior`` may be None)."""
    weighted = scores * prior_weights(prior, tau) if tau else scores
    return float((weighted.argmax(axis=1) == labels).mean())


def odd_accuracy(scores: np.ndarray, photos: Photos, prior: np.ndarray, tau: float) -> float:
    """Accuracy on the odd-numbered performers (the tuning half) of the photographs' ``scores``
    (one row per photograph with a face, as photo_predictions gives), prior-corrected by ``tau``."""
    found = np.array([c is not None for c in photos.crops])
    pred = np.full(len(photos.labels), -1)
    pred[found] = (scores * prior_weights(prior, tau)).argmax(axis=1)
    odd = photos.performer % 2 == 1
    return float((pred == photos.labels)[odd].mean())


def tune_prior(model, photos: Photos, prior: np.ndarray, valid: tuple[np.ndarray, np.ndarray] | None = None,
               max_valid_drop: float = 0.01) -> float:
    """The prior-correction strength with the best accuracy on the odd-numbered performers only.

    ``valid``: (scores, labels) of FER+ validation; a strength that costs more than ``max_valid_drop``
    of validation accuracy (against none) is not eligible, so the choice cannot buy posed-photo
    accuracy with the FER+ accuracy the model is selected on.
    """
    _, scores = photo_predictions(model, photos, big=False)
    base = corrected_accuracy(valid[0], valid[1], None, 0.0) if valid is not None else 0.0
    best, best_acc = 0.0, -1.0
    print("prior correction: odd-numbered performers (tuning half), FER+ validation")
    for tau in TAUS:
        acc = odd_accuracy(scores, photos, prior, tau)
        line = f"  tau {tau:.2f}: {100 * acc:.1f}%"
        ok = True
        if valid is not None:
            v = corrected_accuracy(valid[0], valid[1], prior, tau)
            ok = v >= base - max_valid_drop
            line += f", FER+ valid {100 * v:.2f}%" + ("" if ok else " (costs too much)")
        print(line)
        if ok and acc > best_acc + 1e-9:
            best, best_acc = float(tau), acc
    print(f"chosen: tau {best:.2f} ({100 * best_acc:.1f}% on odd performers)")
    return best
