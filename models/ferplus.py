"""FER+ for training: the data access and majority protocol of edge.evaluation.ferplus, and the soft targets.

Kept free of TensorFlow so the runtime, the evaluator and the tests can use it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.evaluation.ferplus import (CLASSES, NOT_FACE_COL, UNKNOWN_COL, Split, majority_labels,  # noqa: F401
                                     majority_subset)
from edge.evaluation.ferplus import load_split as _load_split


def default_data_dir() -> Path:
    """``../shared/data`` beside the checkout (where CI also has it)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def load_split(split: str, data_dir: Path | None = None) -> Split:
    """Load ``train``, ``valid`` or ``test`` from the shared FER+ archives (default: beside the checkout)."""
    return _load_split(split, data_dir or default_data_dir())


def vote_distributions(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Soft training targets over the 8 emotions, and a mask of images worth training on.

    Images whose strongest column is ``unknown`` or ``not_face``, or with no emotion vote, are
    masked out. Single votes are dropped where enough other votes remain (they are mostly noise,
    as in the majority protocol), which sharpens the targets without discarding ambiguity.
    """
    v = votes.astype(np.float32)
    keep = (v.argmax(axis=1) < len(CLASSES)) & (v[:, : len(CLASSES)].sum(axis=1) > 0)
    emo = v[:, : len(CLASSES)].copy()
    denoised = np.where(emo > 1, emo, 0)
    use_denoised = denoised.sum(axis=1, keepdims=True) > 0
    emo = np.where(use_denoised, denoised, emo)
    dist = emo / np.maximum(emo.sum(axis=1, keepdims=True), 1e-6)
    return dist.astype(np.float32), keep


def class_prior(targets: np.ndarray) -> dict[str, float]:
    """Mean of the training targets per class: how common each emotion is in what the model learnt."""
    return {c: round(float(v), 5) for c, v in zip(CLASSES, targets.mean(axis=0))}
