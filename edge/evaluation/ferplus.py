"""FER+ data access and the standard "majority" test protocol (no TensorFlow: the runtime uses it).

The archives are ``<data>/ferplus/ferplus_eval.npz`` (valid, test) and ``ferplus_train.npz``; the
training-side helpers (vote distributions, class prior) are in models/ferplus.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.evaluation.data import DEFAULT_DATA, missing

#: The 8 emotion classes of FER+, in the order of its vote columns (and of the model's output).
CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)
UNKNOWN_COL, NOT_FACE_COL = 8, 9


@dataclass
class Split:
    """Images of one split with what the training and the evaluation need of their votes."""

    images: np.ndarray          # (N, 48, 48) uint8
    votes: np.ndarray           # (N, 10) uint8
    names: np.ndarray           # (N,) str

    def __len__(self) -> int:
        return len(self.images)


def load_split(split: str, data_dir: Path | None = None) -> Split:
    """Load ``train``, ``valid`` or ``test`` from the shared FER+ archives under ``data_dir``.

    FileNotFoundError names the archive looked for and how to give another folder.
    """
    data_dir = Path(data_dir or DEFAULT_DATA)
    archive = "ferplus_train.npz" if split == "train" else "ferplus_eval.npz"
    path = data_dir / "ferplus" / archive
    if not path.exists():
        raise FileNotFoundError(missing(path, "FER+ archive"))
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


def majority_subset(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels that the majority protocol keeps (3,137 on the test split)."""
    labels = majority_labels(split.votes)
    keep = labels >= 0
    return split.images[keep], labels[keep]
