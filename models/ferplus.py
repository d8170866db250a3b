"""FER+ data access and the standard "majority" test protocol.

Kept free of TensorFlow so the runtime, the evaluator and the tests can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The 8 emotion classes of FER+, in the order of its vote columns (and of the model's output).
CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)
UNKNOWN_COL, NOT_FACE_COL = 8, 9


def default_data_dir() -> Path:
    """``../shared/data`` beside the checkout (where CI also has it)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Split:
    """Images of one split with what the training and the evaluation need of their votes."""

    images: np.ndarray          # (N, 48, 48) uint8
    votes: np.ndarray           # (N, 10) uint8
    names: np.ndarray           # (N,) str

    def __len__(self) -> int:
        return len(self.images)


def load_split(split: str, data_dir: Path | None = None) -> Split:
    """Load ``train``, ``valid`` or ``test`` from the shared FER+ archives."""
    data_dir = Path(data_dir or default_data_dir())
    archive = "ferplus_train.npz" if split == "train" else "ferplus_eval.npz"
    path = data_dir / "ferplus" / archive
    if not path.exists():
        raise FileNotFoundError(f"FER+ archive not found: {path} (expected ../shared/data beside the checkout)")
    with np.load(path) as d:
        keep = d["split"] == split
        if not keep.any():
            raise ValueError(f"no '{split}' images in {path}")
        return Split(images=d["images"][keep], votes=d["votes"][keep], names=d["name"][keep])


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FER+ majority protocol (Barsoum et al. 2016): label per image, or -1 where it is dropped.

    Single votes are treated as noise and zeroed; the label is the emotion holding more than
    half of the remaining votes; images with no such emotion, or whose top column is
    ``unknown`` or ``not_face``, get -1.
    """
    v = votes.astype(np.int32).copy()
    v[v == 1] = 0
    total = v.sum(axis=1)
    top = v.argmax(axis=1)
    top_count = v.max(axis=1)
    ok = (total > 0) & (top_count * 2 > total) & (top < len(CLASSES))
    return np.where(ok, top, -1)


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


def majority_subset(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels that the majority protocol keeps (3,137 on the test split)."""
    labels = majority_labels(split.votes)
    keep = labels >= 0
    return split.images[keep], labels[keep]
