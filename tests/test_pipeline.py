"""FaceAnalyzer: detect -> align -> classify on real photographs and video, faces of a frame in one batch."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest_pipeline import require_blazeface, require_emotion_model, single_face_video, taiwanese_subset
from edge.timing import STAGES

ANALYZER_STAGES = ("detect", "align", "classify")   # the stages the analyzer times itself
from edge.face_analyzer import FaceAnalyzer, PipelineSections
from edge.config.source import SourceConfig
from edge.sources import open_source
from edge.types import Frame


class CountingModel:
    """The real emotion model, counting how often (and with how many crops) it is called."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def classify(self, crops):
        self.calls.append(len(crops))
        return self.model.classify(crops)


@pytest.fixture(scope="module")
def analyzer():
    require_blazeface()
    require_emotion_model()
    return FaceAnalyzer(None)


@pytest.fixture(scope="module")
def photos():
    return [cv2.imread(str(p)) for p, _ in taiwanese_subset(2)]


def test_analyze_gives_a_face_and_scores_per_photo(analyzer, photos):
    assert analyzer.detector_id.startswith("blazeface") and analyzer.model_id
    for image in photos:
        results = analyzer.analyze(Frame(image=image, index=0, timestamp=0.0))
        assert len(results) == 1
        det, cls = results[0]
        assert cls.classes == analyzer.model.classes and len(cls.scores) == len(cls.classes)
        assert float(np.sum(cls.scores)) == pytest.approx(1.0, abs=0.02)
        assert cls.label in cls.classes
    assert set(analyzer.clock.last_ms) == set(ANALYZER_STAGES) < set(STAGES)
    assert all(analyzer.clock.calls[s] >= len(photos) for s in ANALYZER_STAGES)
    assert list(analyzer.clock.mean_ms()) == list(ANALYZER_STAGES)          # in pipeline order
    assert all(v > 0 for v in analyzer.clock.mean_ms().values())


def test_faces_of_a_frame_are_classified_in_one_batch(analyzer, photos):
    counting = CountingModel(analyzer.model)
    batched = FaceAnalyzer(None, detector=analyzer.detector, model=counting)
    frame = np.hstack([photos[0], photos[4], photos[8]])
    results = batched.analyze(frame)
    assert len(results) == 3 and counting.calls == [3]
    # the same scores as classifying each aligned face alone (the batch changes nothing)
    crops = batched.align(frame, [d for d, _ in results])
    for crop, (_, cls) in zip(crops, results):
        alone = analyzer.model.classify([crop])[0]
        assert np.allclose(alone.scores, cls.scores, atol=0.02)


def test_no_face_means_no_model_call(analyzer):
    counting = CountingModel(analyzer.model)
    a = FaceAnalyzer(None, detector=analyzer.detector, model=counting)
    assert a.analyze(np.full((240, 320, 3), 90, np.uint8)) == []
    assert counting.calls == []


def test_detection_only_without_a_model(photos):
    require_blazeface()
    a = FaceAnalyzer(None, classify=False)
    results = a.analyze(photos[0])
    assert len(results) == 1 and results[0][1] is None and a.model_id is None
    crops = a.align(photos[0], [results[0][0]])
    assert crops[0].shape == (48, 48) and crops[0].dtype == np.uint8


def test_sections_of_an_app_config_are_used(photos):
    from edge.config.align import AlignConfig
    from edge.config.detector import HaarConfig
    from edge.config.model import ModelConfig

    class AppLike:                          # anything with the three sections, e.g. edge.config.AppConfig
        detector = HaarConfig()
        align = AlignConfig(size=64)
        model = ModelConfig()

    a = FaceAnalyzer(AppLike(), classify=False)
    assert a.detector_id.startswith("haar")
    assert PipelineSections.of(AppLike()) == PipelineSections(HaarConfig(), AlignConfig(size=64), ModelConfig())
    dets = a.detect(photos[0])
    assert a.align(photos[0], dets)[0].shape == (64, 64)


def test_pipeline_over_a_video_source(analyzer):
    src = open_source(SourceConfig(uri=str(single_face_video())))
    faces = 0
    for frame in src:
        if frame.index % 25 == 0:
            faces += len(analyzer.analyze(frame))
    assert faces == 9          # frames 0, 25, ... 200: one face each
