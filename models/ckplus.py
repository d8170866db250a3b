"""CK+ peak expressions (../shared/data/ckplus48) reframed to FER+ framing, with a subject-disjoint split.

CK+ is released for non-commercial research (Lucey et al. 2010); a model trained on it says so in
its card. Its value here: posed disgust, fear, contempt and anger, the classes FER+ barely has.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import ferplus

#: CK+ folder label -> FER+ class.
LABELS = {"anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
          "happy": "happiness", "sadness": "sadness", "surprise": "surprise"}
#: CK+ crops run forehead to chin with no margin; FER+ faces have a little more around them.
FACE_SCALE = 0.85


@dataclass
class CKPlus:
    images: np.ndarray      # (N, 48, 48) uint8, reframed
    labels: np.ndarray      # (N,) index into ferplus.CLASSES
    subjects: np.ndarray    # (N,) str, e.g. S010

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, keep: np.ndarray) -> "CKPlus":
        return CKPlus(self.images[keep], self.labels[keep], self.subjects[keep])


def reframe(face: np.ndarray, scale: float = FACE_SCALE) -> np.ndarray:
    """Shrink a tight 48x48 crop to ``scale`` and pad it back to 48x48 by mirroring its edges."""
    import cv2

    n = int(round(48 * scale))
    small = cv2.resize(face, (n, n), interpolation=cv2.INTER_AREA)
    pad = 48 - n
    t = pad // 2
    return cv2.copyMakeBorder(small, t, pad - t, t, pad - t, cv2.BORDER_REFLECT_101)


def load(data_dir: Path | None = None) -> CKPlus:
    """All 981 faces, reframed, in labels.csv order."""
    import cv2

    root = Path(data_dir or ferplus.default_data_dir()) / "ckplus48"
    labels_csv = root / "labels.csv"
    if not labels_csv.exists():
        raise FileNotFoundError(f"CK+ labels not found: {labels_csv}")
    imgs, labels, subjects = [], [], []
    with open(labels_csv, newline="") as f:
        for row in csv.DictReader(f):
            img = cv2.imread(str(root / row["path"]), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise ValueError(f"unreadable CK+ image: {root / row['path']}")
            if img.shape != (48, 48):
                img = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
            imgs.append(reframe(img))
            labels.append(ferplus.CLASSES.index(LABELS[row["label"]]))
            subjects.append(row["subject"])
    return CKPlus(np.stack(imgs), np.array(labels, np.int64), np.array(subjects))


def subject_split(ck: CKPlus, valid_fraction: float = 0.2, seed: int = 0) -> tuple[CKPlus, CKPlus]:
    """(train, valid) with every subject on one side only (seeded)."""
    subjects = np.unique(ck.subjects)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(subjects, int(round(valid_fraction * len(subjects))), replace=False))
    is_val = np.array([s in held for s in ck.subjects])
    return ck.subset(~is_val), ck.subset(is_val)
