"""The labelled Taiwanese facial-expression photographs: where they are, their labels, the performer split.

``<data>/faces/taiwanese_fed/labels.csv`` lists each photograph (path, posed label, performer,
observers' rating and intensity). Performer split: ``tune`` = odd performer numbers, ``test`` =
even ones, ``all`` = everyone.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from edge.evaluation.data import DEFAULT_DATA

#: Taiwanese facial expression database labels -> the model's (FER+) class names.
LABEL_MAP = {"neutral": "neutral", "happy": "happiness", "sad": "sadness", "angry": "anger",
             "disgust": "disgust", "fear": "fear", "surprise": "surprise"}


def default_dataset(data: Path = DEFAULT_DATA) -> Path:
    """``<data>/faces/taiwanese_fed`` (``data``: the shared data folder, default ``../shared/data``)."""
    return Path(data) / "faces" / "taiwanese_fed"


@dataclass
class Sample:
    path: Path
    label: str            # model class name of the posed label
    rated: str | None     # model class name of the observers' majority rating, where mappable
    performer: str
    intensity: float | None = None   # observers' mean rated intensity of the expression, where given


def load_samples(dataset: Path, split: str = "all") -> list[Sample]:
    """The labelled photographs of ``dataset``/labels.csv in the given performer split."""
    with open(dataset / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    samples = []
    for r in rows:
        if r["label"] not in LABEL_MAP:
            continue
        odd = int(r["performer"]) % 2 == 1
        if (split == "tune" and not odd) or (split == "test" and odd):
            continue
        try:
            intensity: float | None = float(r.get("rated_intensity") or "")
        except ValueError:          # blank or not a number
            intensity = None
        samples.append(Sample(dataset / r["path"], LABEL_MAP[r["label"]], LABEL_MAP.get(r.get("rated_label", "")),
                              r["performer"], intensity))
    return samples
