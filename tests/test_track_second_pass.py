"""The tracker's second, low-score association pass (ByteTrack's idea) and ending tracks after a gap.

Synthetic detections with exact boxes and scores, so each rule is checked on its own; the crowd
clip's id switches with and without the second pass are measured by bench/crowd.py.
"""
from __future__ import annotations

from edge.config.tracking import TrackingConfig
from edge.track import Tracker
from edge.types import Detection


def face(x: float, score: float, y: float = 100.0, w: float = 40.0) -> Detection:
    return Detection(box=(x, y, w, w), score=score)


def confirmed_tracker(cfg: TrackingConfig) -> Tracker:
    tracker = Tracker(cfg)
    for i in range(3):                        # three sure detections: confirmed (min_hits 3)
        tracker.update([face(100 + 2 * i, 0.9)], i * 0.2)
    assert [tr.id for tr in tracker.confirmed] == [1]
    return tracker


def test_an_unsure_detection_continues_a_confirmed_track():
    tracker = confirmed_tracker(TrackingConfig(max_age_s=0.5))
    for i in range(3, 10):                    # the face blurs: scores 0.42 for 1.4 s, longer than max_age_s
        changes = tracker.update([face(100 + 2 * i, 0.42)], i * 0.2)
        assert not changes.removed and not changes.confirmed
    (track,) = tracker.confirmed
    assert track.id == 1 and track.last_seen == 9 * 0.2 and track.detection.score == 0.42


def test_unsure_detections_elsewhere_neither_hold_the_track_nor_start_one():
    """Unsure detections that overlap no track: the track ends at max_age_s and nothing new starts."""
    cfg = TrackingConfig(max_age_s=0.5, new_track_score=0.5)
    tracker = confirmed_tracker(cfg)
    removed = []
    for i in range(3, 10):
        removed += tracker.update([face(100 + 2 * i, 0.42, y=400)], i * 0.2).removed   # elsewhere: no overlap
    assert [tr.id for tr in removed] == [1] and tracker.tracks == []   # unsure and far: no track kept or started


def test_unsure_detections_never_start_a_track():
    tracker = Tracker(TrackingConfig())
    for i in range(10):
        changes = tracker.update([face(300, 0.45)], i * 0.2)
        assert not changes.confirmed
    assert tracker.tracks == []


def test_the_second_pass_uses_overlap_only():
    """An unsure detection a face-width away (no overlap) does not pull the track; a sure one may."""
    tracker = confirmed_tracker(TrackingConfig(max_age_s=5.0))
    tracker.update([face(150, 0.45)], 0.6)     # centre 1.2 widths away, no overlap
    assert tracker.confirmed[0].last_seen == 0.4
    tracker.update([face(118, 0.9)], 0.8)      # sure, within max_center_distance: matched
    assert tracker.confirmed[0].last_seen == 0.8


def test_sure_detections_are_matched_before_unsure_ones():
    tracker = confirmed_tracker(TrackingConfig())
    tracker.update([face(104, 0.41), face(106, 0.95)], 0.6)   # both overlap the track: the sure one wins
    assert tracker.confirmed[0].detection.score == 0.95


def test_a_track_unseen_longer_than_max_age_ends_even_if_its_face_comes_back():
    """A camera outage longer than max_age_s: the face left, and when it is back it is a new face."""
    tracker = confirmed_tracker(TrackingConfig(max_age_s=1.0))
    changes = tracker.update([face(104, 0.9)], 0.4 + 3.0)     # same place, 3 s later (no frames meanwhile)
    assert [tr.id for tr in changes.removed] == [1]
    assert [tr.id for tr in tracker.confirmed] == []           # the new one is a candidate until min_hits
    for i in range(1, 3):
        changes = tracker.update([face(104, 0.9)], 3.4 + i * 0.2)
    assert [tr.id for tr in changes.confirmed] == [2]
