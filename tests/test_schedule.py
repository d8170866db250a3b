"""FrameProcessor on the real single-face clip: what runs on which frame, quality gates, dropping late frames."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from conftest import require_shared
from edge.config import AppConfig
from edge.face_analyzer import FaceAnalyzer
from edge.config.quality import QualityConfig
from edge.frame_processor import FrameProcessor
from edge.config.schedule import ScheduleConfig
from edge.config.source import SourceConfig
from edge.sources import open_source
from edge.types import Frame


@pytest.fixture(scope="module")
def clip() -> list[Frame]:
    """Every frame of single_face.mp4 (224 frames, 25 fps) through the project's video source."""
    path = require_shared("video", "single_face.mp4")
    source = open_source(SourceConfig(uri=str(path)))
    try:
        return list(source)
    finally:
        source.close()


@pytest.fixture(scope="module", params=["default", "haar"])
def analyzer(request) -> FaceAnalyzer:
    """The default detector (BlazeFace when fetched, else its Haar fallback), and Haar itself."""
    cv2.setNumThreads(1)
    if request.param == "haar":
        return FaceAnalyzer(AppConfig.model_validate({"detector": {"type": "haar"}}))
    return FaceAnalyzer(AppConfig())


def run(frames: list[Frame], analyzer: FaceAnalyzer, **sections) -> tuple[FrameProcessor, list, list]:
    proc = FrameProcessor(AppConfig().model_copy(update=sections), analyzer)
    results = [proc.process(f) for f in frames]
    events = [e for r in results for e in r.events] + proc.close()
    return proc, results, events


@pytest.mark.slow
def test_single_face_clip_gives_one_track_and_few_emotion_changes(clip, analyzer) -> None:
    assert len(clip) == 224
    proc, results, events = run(clip, analyzer)
    duration = len(clip) / 25.0
    kinds = [e.type for e in events]
    assert kinds.count("face_appeared") == 1 and kinds.count("face_left") == 1
    assert {e.track_id for e in events if e.track_id is not None} == {1}
    assert kinds.count("emotion_changed") <= 2 * math.ceil(duration / 10)
    left = next(e for e in events if e.type == "face_left")
    assert left.duration_s > duration - 0.5
    stats = proc.stats.snapshot()
    assert stats["detections"] == math.ceil(224 / 5)                   # detect every 5th frame
    assert [r.detected for r in results[:6]] == [True, False, False, False, False, True]
    assert 0.95 <= stats["faces_per_frame"] <= 1.05
    # classified at about 5 Hz once confirmed (0.4 s in), never more often
    assert 5 * (duration - 0.4) * 0.8 <= stats["classified"] <= 5 * duration + 1
    assert set(results[-1].timings) >= {"track", "events"}


@pytest.mark.slow
def test_classification_rate_and_detection_interval_follow_the_schedule(clip, analyzer) -> None:
    frames = clip[:100]                                                  # 4 s
    proc, results, _ = run(frames, analyzer, schedule=ScheduleConfig(detect_every=1, classify_hz=1.0))
    assert proc.stats.detections == 100
    assert 3 <= proc.stats.classified <= 5                               # once a second for ~3.9 s
    times = [r.timestamp for r in results if r.classified]
    assert all(b - a >= 1.0 - 1e-3 for a, b in zip(times, times[1:]))


def test_face_failing_quality_is_tracked_but_not_classified(clip, analyzer) -> None:
    proc, results, events = run(clip[:60], analyzer, quality=QualityConfig(min_face_px=1000))
    assert proc.stats.classified == 0 and proc.stats.skipped_quality > 0
    track = results[-1].tracks[0]
    assert track.id == 1 and track.quality == "small" and track.emotion is None
    appeared = next(e for e in events if e.type == "face_appeared")
    assert appeared.label is None and appeared.scores is None


def test_late_live_frames_are_dropped_and_counted(clip, analyzer) -> None:
    proc = FrameProcessor(AppConfig(), analyzer)
    frames = [Frame(image=f.image, index=f.index, timestamp=1000.0 + f.timestamp) for f in clip[:20]]
    # on time: processed
    r = proc.process(frames[0], now=frames[0].timestamp + 0.05)
    assert not r.dropped
    # 2 s late for a 0.5 s max_lag: dropped, no work done
    r = proc.process(frames[1], now=frames[1].timestamp + 2.0)
    assert r.dropped and r.timings == {} and proc.stats.dropped == 1
    # the source skipped frames 2..9 (it keeps only the newest when we are slow): counted too
    r = proc.process(frames[10], now=frames[10].timestamp + 0.01)
    assert not r.dropped and proc.stats.dropped == 1 + 8
    assert proc.stats.frames == 2
    # files (no `now`) are never dropped however "late"
    proc2 = FrameProcessor(AppConfig(), analyzer)
    assert not any(proc2.process(f).dropped for f in frames)


@pytest.mark.slow
def test_live_reconfigure_keeps_the_faces_in_view(clip, analyzer) -> None:
    proc = FrameProcessor(AppConfig(), analyzer)
    events = [e for f in clip[:100] for e in proc.process(f).events]
    assert [e.type for e in events if e.type != "emotion_changed"] == ["face_appeared"]
    smoothed = proc.tracker.confirmed[0].smoother.scores.copy()
    new = AppConfig.model_validate({"schedule": {"detect_every": 1}, "tracking": {"hysteresis_s": 5.0},
                                    "quality": {"min_face_px": 1000}})
    proc.reconfigure(new)
    track = proc.tracker.confirmed[0]
    assert track.id == 1 and track.smoother.cfg.hysteresis_s == 5.0
    np.testing.assert_array_equal(track.smoother.scores, smoothed)      # the smoothing state is kept
    results = [proc.process(f) for f in clip[100:110]]
    assert all(r.detected for r in results)                             # detect_every: 1 now
    assert not any(e.type in ("face_left", "face_appeared") for r in results for e in r.events)
    assert proc.stats.skipped_quality > 0                               # the new quality gate applies
    assert [t.id for t in results[-1].tracks] == [1]
