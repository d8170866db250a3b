"""One frame's way through the face pipeline: detect -> align -> classify (all faces in one batch).

``FaceAnalyzer`` owns the detector and the emotion model built from the config and times each
stage, so the service's stats and the benchmarks can show where a frame's milliseconds go.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.align import align_faces
from edge.classify import EmotionModel
from edge.config.align import AlignConfig
from edge.config.detector import BlazeFaceConfig, DetectorConfig
from edge.config.model import ModelConfig
from edge.detect import FaceDetector, ProfileDetector, make_detector
from edge.timing import StageClock
from edge.types import Classification, Detection, Frame


class AnalyzerSections(Protocol):
    """The config sections the face analyzer reads: an :class:`~edge.config.AppConfig`, or :class:`PipelineSections`."""

    @property
    def detector(self) -> DetectorConfig: ...
    @property
    def align(self) -> AlignConfig: ...
    @property
    def model(self) -> ModelConfig: ...


@dataclass(frozen=True)
class PipelineSections:
    """Just the three sections of the face pipeline (commands that take them from options, tests)."""

    detector: DetectorConfig = field(default_factory=BlazeFaceConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    @classmethod
    def of(cls, cfg: AnalyzerSections) -> "PipelineSections":
        """The three sections of an app config."""
        return cls(detector=cfg.detector, align=cfg.align, model=cfg.model)


class FaceAnalyzer:
    """Detect, align and classify the faces of a frame, with per-stage timing (``.clock``).

    ``cfg`` holds the ``detector``, ``align`` and ``model`` sections (default: their defaults).
    ``detector``/``model`` may be passed in ready-made (a service that reuses them across config
    reloads); ``classify=False`` runs detection and alignment only (no emotion model needed).
    """

    def __init__(self, cfg: AnalyzerSections | None = None, *, detector: FaceDetector | None = None,
                 model: EmotionModel | None = None, classify: bool = True) -> None:
        self.sections: AnalyzerSections = cfg if cfg is not None else PipelineSections()
        self.detector: FaceDetector | None = detector if detector is not None else make_detector(self.sections.detector)
        if model is None and classify:
            model = EmotionModel.from_config(self.sections.model)
        self.model = model
        # the crops are framed as the model was trained (its card), unless the align section says otherwise
        card = model.card if model is not None else None
        self.align_cfg: AlignConfig = self.sections.align.framed(card.eye_y if card else None,
                                                                 card.eye_distance if card else None)
        self.clock = StageClock()
    @property
    def detector_id(self) -> str:
        return self.detector.detector_id

    @property
    def model_id(self) -> str | None:
        return self.model.model_id if self.model is not None else None

    def detect(self, frame: Frame | np.ndarray, profile: str | None = None) -> list[Detection]:
        """Faces in the frame, largest first; ``profile``: the camera's detector profile (default: the section's)."""
        t = time.perf_counter()
        if isinstance(self.detector, ProfileDetector) and isinstance(frame, Frame):
            # the profile's timing (media time for files), kept per camera: one analyzer may serve several
            dets = self.detector.detect_at(frame.image, frame.timestamp, frame.camera, profile)
        else:
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
