"""The self-test a new emotion model must pass on the device before it replaces the running one.

A self-test set is a small ``.npz`` file: ``images`` (N, H, W) uint8 grayscale face crops (any size;
the model's preprocessing resizes them) and ``labels`` (N,) the emotion each must be classified as.
It is made by the operator from faces they own (``fer-edge fleet push-model --selftest``), travels
with the update (signed through the manifest's sha256), and the device keeps the last one that
passed as its built-in set for later updates. No face image leaves the device because of it.

A model passes when at least ``min_agreement`` of the faces get their label, and its mean latency
per face is at most ``max_latency_ratio`` times the running model's, measured in the same run on
the same faces (a ratio, so a slow board does not fail a model a fast one passes).
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np

from edge.classify import EmotionModel

MIN_AGREEMENT = 0.8
MAX_LATENCY_RATIO = 3.0


class SelfTestError(ValueError):
    """A self-test file that cannot be used (one line)."""


@dataclass(frozen=True)
class Faces:
    """Self-test faces and the labels they must get."""

    images: np.ndarray          # (N, H, W) uint8
    labels: tuple[str, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> "Faces":
        """Read an .npz (no pickles); SelfTestError says what is wrong."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                images, labels = npz["images"], npz["labels"]
        except (OSError, ValueError, KeyError) as exc:
            raise SelfTestError(f"self-test file unreadable ({exc}); it must be an .npz with 'images' and 'labels'") from None
        if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(labels) or not len(images):
            raise SelfTestError(f"self-test file: images must be (N, H, W) uint8 with one label each "
                                f"(got {images.shape} {images.dtype}, {len(labels)} labels)")
        return cls(images, tuple(str(x) for x in labels))

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, images=self.images, labels=np.array(self.labels))
        return buf.getvalue()


@dataclass(frozen=True)
class Result:
    """How a model did on the self-test."""

    n: int
    agreed: int
    latency_ms: float            # mean per face, batch 1
    baseline_ms: float | None    # the running model's, same faces, same run
    min_agreement: float
    max_latency_ratio: float

    @property
    def agreement(self) -> float:
        return self.agreed / self.n if self.n else 0.0

    @property
    def passed(self) -> bool:
        return not self.problem()

    def problem(self) -> str | None:
        """None when it passed, else one line saying why not."""
        if self.agreement < self.min_agreement:
            return (f"self-test: {self.agreed} of {self.n} faces classified as expected "
                    f"({self.agreement:.0%}, needs {self.min_agreement:.0%})")
        if self.baseline_ms and self.latency_ms > self.max_latency_ratio * self.baseline_ms:
            return (f"self-test: {self.latency_ms:.2f} ms per face, more than {self.max_latency_ratio:g} x the running "
                    f"model's {self.baseline_ms:.2f} ms")
        return None

    def as_dict(self) -> dict:
        return {"n": self.n, "agreed": self.agreed, "agreement": round(self.agreement, 4),
                "latency_ms": round(self.latency_ms, 3),
                "baseline_ms": None if self.baseline_ms is None else round(self.baseline_ms, 3)}


def check_labels(faces: Faces, model: EmotionModel) -> None:
    """SelfTestError when a face's label is not one of the model's classes."""
    unknown = sorted(set(faces.labels) - set(model.classes))
    if unknown:
        raise SelfTestError(f"self-test labels {unknown} are not classes of the model {list(model.classes)}")


def _timed(model: EmotionModel, faces: Faces) -> tuple[list[str], float]:
    labels = []
    start = time.perf_counter()
    for image in faces.images:            # batch 1: what a frame with one face costs
        labels.append(model.classify([image])[0].label)
    return labels, 1000.0 * (time.perf_counter() - start) / len(faces.images)


def run(candidate: EmotionModel, faces: Faces, baseline: EmotionModel | None = None,
        min_agreement: float = MIN_AGREEMENT, max_latency_ratio: float = MAX_LATENCY_RATIO) -> Result:
    """Classify every face with ``candidate`` (and time ``baseline`` on the same faces, if given)."""
    check_labels(faces, candidate)
    base_ms = _timed(baseline, faces)[1] if baseline is not None else None
    got, ms = _timed(candidate, faces)
    agreed = sum(g == want for g, want in zip(got, faces.labels))
    return Result(len(faces.labels), agreed, ms, base_ms, min_agreement, max_latency_ratio)
