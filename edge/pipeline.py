"""One frame's way through the face pipeline: detect -> align -> classify (all faces in one batch).

``FaceAnalyzer`` owns the detector and the emotion model built from the config and times each
stage, so the service's stats and the benchmarks can show where a frame's milliseconds go.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.align import AlignConfig, align_faces
from edge.types import Classification, Detection, Frame

STAGES = ("detect", "align", "classify")


@dataclass(frozen=True)
class PipelineSections:
    """The three config sections the face pipeline reads (a subset of the app config)."""

    detector: Any = None        # edge.detect.DetectorConfig (default: BlazeFace)
    align: Any = None           # edge.align.AlignConfig
    model: Any = None           # edge.classify.ModelConfig

    @classmethod
    def of(cls, cfg: Any) -> "PipelineSections":
        """The sections of an app config (or of anything with those attributes); defaults for None."""
        from edge.classify import ModelConfig
        from edge.detect import BlazeFaceConfig

        return cls(detector=getattr(cfg, "detector", None) or BlazeFaceConfig(),
                   align=getattr(cfg, "align", None) or AlignConfig(),
                   model=getattr(cfg, "model", None) or ModelConfig())


class StageClock:
    """Per-stage wall time: the last call's ms and running totals (for means in stats/benchmarks)."""

    def __init__(self) -> None:
        self.last_ms: dict[str, float] = {s: 0.0 for s in STAGES}
        self.total_ms: dict[str, float] = {s: 0.0 for s in STAGES}
        self.calls: dict[str, int] = {s: 0 for s in STAGES}

    def add(self, stage: str, seconds: float) -> None:
        ms = seconds * 1000.0
        self.last_ms[stage] = ms
        self.total_ms[stage] = self.total_ms.get(stage, 0.0) + ms
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def mean_ms(self) -> dict[str, float]:
        """Mean ms per call of each stage that has run."""
        return {s: self.total_ms[s] / n for s, n in self.calls.items() if n}

    def reset(self) -> None:
        self.__init__()


class FaceAnalyzer:
    """Detect, align and classify the faces of a frame, with per-stage timing (``.clock``).

    ``cfg`` is the app config (anything with ``detector``, ``align`` and ``model`` sections).
    ``detector``/``model`` may be passed in ready-made (a service that reuses them across config
    reloads); ``classify=False`` runs detection and alignment only (no emotion model needed).
    """

    def __init__(self, cfg: Any = None, *, detector: Any = None, model: Any = None, classify: bool = True) -> None:
        from edge.detect import make_detector

        self.sections = PipelineSections.of(cfg)
        self.align_cfg: AlignConfig = self.sections.align
        self.detector = detector if detector is not None else make_detector(self.sections.detector)
        if model is None and classify:
            from edge.classify import EmotionModel
            model = EmotionModel.from_config(self.sections.model)
        self.model = model
        self.clock = StageClock()

    @property
    def detector_id(self) -> str:
        return self.detector.detector_id

    @property
    def model_id(self) -> str | None:
        return self.model.model_id if self.model is not None else None

    def detect(self, frame: Frame | np.ndarray) -> list[Detection]:
        """Faces in the frame, largest first."""
        t = time.perf_counter()
        dets = self.detector.detect(_image(frame))
        self.clock.add("detect", time.perf_counter() - t)
        return dets

    def align(self, frame: Frame | np.ndarray, dets: list[Detection]) -> list[np.ndarray]:
        """Grey crops framed like the model's training data, one per detection."""
        t = time.perf_counter()
        crops = align_faces(_image(frame), dets, self.align_cfg)
        self.clock.add("align", time.perf_counter() - t)
        return crops

    def classify(self, crops: list[np.ndarray]) -> list[Classification]:
        """Emotion scores for the crops, run as one batch (empty when there is no model)."""
        if self.model is None or not crops:
            return []
        t = time.perf_counter()
        out = self.model.classify(crops)
        self.clock.add("classify", time.perf_counter() - t)
        return out

    def analyze(self, frame: Frame | np.ndarray) -> list[tuple[Detection, Classification | None]]:
        """Every face of the frame with its emotion (None for each face when running without a model)."""
        dets = self.detect(frame)
        if not dets:
            return []
        crops = self.align(frame, dets)
        results = self.classify(crops)
        if not results:
            return [(d, None) for d in dets]
        return list(zip(dets, results))

    def close(self) -> None:
        """Let go of the detector's and the model's interpreters (the analyzer is unusable afterwards)."""
        self.detector = None
        self.model = None


def _image(frame: Frame | np.ndarray) -> np.ndarray:
    return frame.image if isinstance(frame, Frame) else frame
