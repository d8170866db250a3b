"""Tracker id stability and hysteresis, on detections recorded from the real clips (no clock, no timing)."""
from __future__ import annotations

import math

import numpy as np

from conftest_tracking import Recording, load_recording
from edge.track import EmotionSmoother, Tracker
from tests.helpers.id_switches import IdSwitchCounter
from edge.config.tracking import TrackingConfig
from edge.geometry import iou
from edge.types import Classification

EVERY = 5   # replay like the default schedule: a detection every 5th frame


def replay(rec: Recording, cfg: TrackingConfig, skip: tuple[float, float] | None = None):
    """Feed every EVERY-th recorded frame to a tracker; return (tracker, per-step changes, id-switch counter)."""
    tracker, switches, steps = Tracker(cfg), IdSwitchCounter(cfg), []
    for f in rec.frames:
        if f.index % EVERY:
            continue
        dets = [] if skip and skip[0] <= f.t < skip[1] else f.detections
        changes = tracker.update(dets, f.t)
        switches.observe(changes, tracker, f.t)
        steps.append((f, changes))
    return tracker, steps, switches


def test_single_face_keeps_one_id_for_the_whole_clip() -> None:
    rec = load_recording("single_face")
    tracker, steps, switches = replay(rec, TrackingConfig())
    confirmed = [tr for _, ch in steps for tr in ch.confirmed]
    assert [tr.id for tr in confirmed] == [1]
    assert not any(ch.removed for _, ch in steps)
    assert switches.count == 0
    # confirmed on its third detection (min_hits=3), at frame 10
    first = next(f for f, ch in steps if ch.confirmed)
    assert first.index == 2 * EVERY
    # the box follows the face: at every detection the track overlaps the detection well
    tracker2 = Tracker(TrackingConfig())
    for f in rec.frames[::EVERY]:
        tracker2.update(f.detections, f.t)
        assert len(tracker2.tracks) == 1
        assert iou(tracker2.tracks[0].box, f.detections[0].box) > 0.8


def test_predicted_box_moves_with_the_face_between_detections() -> None:
    rec = load_recording("single_face")
    tracker = Tracker(TrackingConfig())
    errors_model, errors_still = [], []
    for f in rec.frames:
        if f.index % EVERY == 0:
            tracker.update(f.detections, f.t)
        else:
            tracker.predict(f.t)
            tr = tracker.tracks[0]
            truth = f.detections[0].box
            errors_model.append(1 - iou(tr.box, truth))
            errors_still.append(1 - iou(tr.box_at_last_seen, truth))
    # the motion model is at least as good as holding the last box still (the face drifts slowly)
    assert np.mean(errors_model) <= np.mean(errors_still) + 0.01
    assert np.mean(errors_model) < 0.2


def test_short_miss_keeps_the_id_long_miss_ends_the_track() -> None:
    rec = load_recording("single_face")
    cfg = TrackingConfig(max_age_s=1.0)
    _, steps, switches = replay(rec, cfg, skip=(3.0, 3.7))          # 0.7 s without detections
    assert [tr.id for _, ch in steps for tr in ch.confirmed] == [1]
    assert not any(ch.removed for _, ch in steps)

    _, steps, switches = replay(rec, cfg, skip=(3.0, 4.6))          # 1.6 s: the face "left" and came back
    removed = [(f.t, tr.id) for f, ch in steps for tr in ch.removed]
    assert len(removed) == 1 and removed[0][1] == 1
    assert [tr.id for _, ch in steps for tr in ch.confirmed] == [1, 2]
    assert switches.count == 1        # the new id where the old face was counts as an id switch


def test_candidate_that_misses_before_confirmation_is_dropped_silently() -> None:
    rec = load_recording("single_face")
    tracker = Tracker(TrackingConfig(min_hits=3))
    f0, f5 = rec.frames[0], rec.frames[5]
    assert not tracker.update(f0.detections, f0.t).confirmed
    changes = tracker.update([], f5.t)
    assert tracker.tracks == [] and not changes.removed and not changes.confirmed


def test_crowd_tracks_are_deterministic_and_distinct() -> None:
    rec = load_recording("crowd_street_test")
    assert rec.every == EVERY
    a, steps_a, sw_a = replay(rec, TrackingConfig())
    b, steps_b, sw_b = replay(rec, TrackingConfig())
    ids_a = [tr.id for _, ch in steps_a for tr in ch.confirmed]
    assert ids_a == [tr.id for _, ch in steps_b for tr in ch.confirmed]
    assert sw_a.count == sw_b.count
    assert len(ids_a) == len(set(ids_a)) >= 3           # several people, each id given once
    # at the end, no two confirmed tracks sit on the same face
    live = a.confirmed
    assert all(iou(x.box, y.box) < 0.5 for i, x in enumerate(live) for y in live[i + 1:])


def _cls(classes: tuple[str, ...], probs: dict[str, float]) -> Classification:
    s = np.array([probs.get(c, 0.0) for c in classes], np.float32)
    return Classification(scores=s / s.sum(), classes=classes)


CLASSES = ("neutral", "happiness", "surprise")


def test_hysteresis_holds_through_a_short_lead_and_switches_after_a_long_one() -> None:
    sm = EmotionSmoother(TrackingConfig(hysteresis_s=1.0, ema_half_life_s=0.2, switch_margin=0.05))
    neutral, happy = _cls(CLASSES, {"neutral": 0.9, "happiness": 0.1}), _cls(CLASSES, {"neutral": 0.1, "happiness": 0.9})
    t = 0.0
    sm.update(neutral, t)
    assert sm.emotion == "neutral"
    changes = []
    for _ in range(4):                      # 0.8 s of happiness at 5 Hz: leads, but not for 1 s
        t += 0.2
        changes.append(sm.update(happy, t))
    for _ in range(5):
        t += 0.2
        changes.append(sm.update(neutral, t))
    assert sm.emotion == "neutral" and changes == [None] * 9
    times = []
    for _ in range(10):                     # 2 s of happiness: switches once, about 1 s after it first leads
        t += 0.2
        if sm.update(happy, t) == "neutral":
            times.append(t)
    assert sm.emotion == "happiness" and len(times) == 1
    assert 1.0 <= times[0] - (t - 2.0) <= 1.8


def test_window_smoothing_and_zero_hysteresis_follow_the_latest_scores() -> None:
    sm = EmotionSmoother(TrackingConfig(smoothing="window", window_s=0.5, hysteresis_s=0.0, switch_margin=0.0))
    sm.update(_cls(CLASSES, {"neutral": 1.0}), 0.0)
    sm.update(_cls(CLASSES, {"surprise": 1.0}), 0.2)
    sm.update(_cls(CLASSES, {"surprise": 1.0}), 0.4)
    assert sm.emotion == "surprise"
    sm.update(_cls(CLASSES, {"happiness": 1.0}), 1.0)      # the window has forgotten the rest
    assert sm.emotion == "happiness"
    assert np.isclose(sm.scores.sum(), 1.0)


def test_hysteresis_reduces_label_flicker_on_the_real_crowd_tracks() -> None:
    """Noisy, near-tied scores (a seeded flicker model) on the real crowd tracks: raw labels flip
    often; smoothed + hysteresis labels change at most twice per 10 s per face."""
    rec = load_recording("crowd_street_test")
    rng = np.random.default_rng(7)
    noisy = {}   # (frame index, detection number) -> the same flickering scores for every config
    for f in rec.frames:
        for k in range(len(f.detections)):
            p = np.array([0.45, 0.40, 0.15]) + rng.normal(0, 0.08, 3)
            noisy[(f.index, k)] = _cls(CLASSES, dict(zip(CLASSES, np.clip(p, 0.01, None))))

    def run(cfg: TrackingConfig) -> tuple[int, dict[int, int], dict[int, float]]:
        tracker, raw = Tracker(cfg), 0
        changes: dict[int, int] = {}
        dwell: dict[int, float] = {}
        last_raw: dict[int, str] = {}
        for f in rec.frames:
            tracker.update(f.detections, f.t)
            for tr in tracker.confirmed:
                if tr.last_seen != f.t:
                    continue
                cls = noisy[(f.index, next(k for k, d in enumerate(f.detections) if d is tr.detection))]
                raw += tr.key in last_raw and last_raw[tr.key] != cls.label
                last_raw[tr.key] = cls.label
                changed, previous = tr.classify(cls, f.t)
                changes[tr.id] = changes.get(tr.id, 0) + int(changed and previous is not None)
                dwell[tr.id] = tr.dwell_s
        return raw, changes, dwell

    raw, held, dwell = run(TrackingConfig(hysteresis_s=1.0))
    _, unheld, _ = run(TrackingConfig(hysteresis_s=0.0, switch_margin=0.0, ema_half_life_s=0.01))
    assert raw >= 50, "the flicker model should flip raw labels often"
    assert sum(unheld.values()) == raw        # no smoothing, no hysteresis: every raw flip is a change
    assert sum(held.values()) <= raw / 10
    for track_id, n in held.items():          # at most 2 changes per (started) 10 s of each face
        assert n <= 2 * math.ceil(max(dwell[track_id], 1e-3) / 10.0), (track_id, n, dwell[track_id])
