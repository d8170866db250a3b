"""Event semantics on detections recorded from the real clips, with media timestamps (deterministic)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest_tracking import Recording, load_recording
from edge.emitter import EventEmitter
from edge.config.events import EventsConfig
from edge.events import load_schema
from edge.track import Tracker
from edge.config.tracking import TrackingConfig
from edge.types import Classification

EVERY = 5


def replay(rec: Recording, tracking: TrackingConfig | None = None, interval: float = 2.0,
           scores=None, skip: tuple[float, float] | None = None, classify_from: float = 0.0):
    """Tracker + emitter over the recording at the default cadence (detect and classify every 5th frame).

    ``scores(frame, k, recorded)`` may replace a face's recorded classification; faces are
    classified only from ``classify_from`` seconds on (as if a quality gate refused them before).
    """
    tracker, emitter, events = Tracker(tracking or TrackingConfig()), EventEmitter(
        EventsConfig(summary_interval_s=interval)), []
    for f in rec.frames:
        if f.index % EVERY:
            continue
        dets = [] if skip and skip[0] <= f.t < skip[1] else f.detections
        changes = tracker.update(dets, f.t)
        emotion_changes = []
        for tr in tracker.confirmed:
            if tr.last_seen != f.t or f.t < classify_from:
                continue
            k = next(i for i, d in enumerate(dets) if d is tr.detection)
            cls = scores(f, k, f.classifications[k]) if scores else f.classifications[k]
            changed, previous = tr.classify(cls, f.t)
            if changed:
                emotion_changes.append((tr, previous))
        events += emitter.step(f.t, changes, emotion_changes, tracker.confirmed)
    last_t = rec.frames[-1].t
    events += emitter.finish(last_t, tracker.end_all(last_t))
    return events


def test_single_face_event_sequence() -> None:
    rec = load_recording("single_face")
    events = replay(rec, interval=2.0)
    kinds = [e.type for e in events]
    # 2.0 reads her slight smile at 3.4-5.8 s as happiness (1.0.0 kept it neutral; frame 112 shows it)
    assert kinds == ["face_appeared", "summary", "emotion_changed", "summary", "emotion_changed", "summary",
                     "summary", "face_left", "summary"]
    assert [(e.label, e.previous_label) for e in events if e.type == "emotion_changed"] == \
        [("happiness", "neutral"), ("neutral", "happiness")]
    appeared, left = events[0], events[7]
    assert appeared.ts == pytest.approx(0.4) and appeared.track_id == 1    # the third detection confirms
    assert appeared.label is not None and appeared.scores                 # classified as it was confirmed
    assert left.track_id == 1 and left.duration_s == pytest.approx(8.8)   # first to last detection
    summaries = [e for e in events if e.type == "summary"]
    assert [round(e.ts, 2) for e in summaries] == [2.0, 4.0, 6.0, 8.0, 8.92]
    assert all(e.summary.faces == 1 for e in summaries)
    # one face; an interval counts every emotion it showed during it (both while she smiled)
    assert [e.summary.counts for e in summaries] == [{"neutral": 1}, {"happiness": 1, "neutral": 1},
                                                      {"happiness": 1, "neutral": 1}, {"neutral": 1}, {"neutral": 1}]
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def _constant(label: str):
    """Scores that say ``label`` on every frame: the recorded faces with one steady emotion."""
    def scores(frame, k, recorded: Classification) -> Classification:
        s = np.full(len(recorded.classes), 0.02, np.float32)
        s[recorded.classes.index(label)] = 1.0
        return Classification(scores=s / s.sum(), classes=recorded.classes)
    return scores


def _flip_after(t0: float, label: str, before: str = "neutral"):
    """Steady ``before`` until ``t0``, then ``label`` (the hysteresis tests need a steady start; the
    recorded scores follow the real face, whose slight smile 2.0 reads as happiness at 3.4-5.8 s)."""
    def scores(frame, k, recorded: Classification) -> Classification:
        return _constant(before if frame.t < t0 else label)(frame, k, recorded)
    return scores


def test_emotion_changed_only_after_the_new_emotion_leads_for_the_hysteresis_time() -> None:
    rec = load_recording("single_face")
    first, other = "neutral", "happiness"
    events = replay(rec, TrackingConfig(hysteresis_s=1.0), scores=_flip_after(4.0, other))
    changed = [e for e in events if e.type == "emotion_changed"]
    assert len(changed) == 1
    assert changed[0].previous_label == first and changed[0].label == other
    assert 5.0 <= changed[0].ts <= 5.8             # led from 4.0-4.4, held for 1 s
    # a 0.6 s burst of another emotion changes nothing
    def burst(frame, k, recorded):
        return _flip_after(4.0, other)(frame, k, recorded) if frame.t < 4.6 else _constant(first)(frame, k, recorded)
    assert not [e for e in replay(rec, scores=burst) if e.type == "emotion_changed"]


def test_unknown_first_emotion_is_announced_by_emotion_changed() -> None:
    rec = load_recording("single_face")
    events = replay(rec, classify_from=2.0, scores=_constant("neutral"))   # refused by quality until 2 s
    appeared = next(e for e in events if e.type == "face_appeared")
    assert appeared.label is None
    changed = [e for e in events if e.type == "emotion_changed"]
    assert len(changed) == 1 and changed[0].previous_label is None and changed[0].ts == pytest.approx(2.0)


def test_face_left_after_a_long_miss_and_a_new_face_appeared() -> None:
    rec = load_recording("single_face")
    events = replay(rec, TrackingConfig(max_age_s=1.0), skip=(3.0, 4.6))
    per_face = [(e.type, e.track_id) for e in events if e.type != "summary"]
    assert per_face == [("face_appeared", 1), ("face_left", 1), ("face_appeared", 2), ("face_left", 2)]
    left1 = next(e for e in events if e.type == "face_left")
    assert left1.ts == pytest.approx(2.8) and left1.duration_s == pytest.approx(2.8)


def test_crowd_events_are_consistent_and_summaries_count_the_faces() -> None:
    rec = load_recording("crowd_street_test")
    events = replay(rec, interval=5.0)
    appeared = [e.track_id for e in events if e.type == "face_appeared"]
    left = [e.track_id for e in events if e.type == "face_left"]
    assert len(appeared) >= 3 and sorted(appeared) == sorted(left) == list(range(1, len(appeared) + 1))
    position = {(e.type, e.track_id): i for i, e in enumerate(events)}
    assert all(position[("face_appeared", i)] < position[("face_left", i)] for i in appeared)
    assert all(e.duration_s >= 0 for e in events if e.type == "face_left")
    summaries = [e for e in events if e.type == "summary"]
    assert len(summaries) == 3                      # 0-5, 5-10, 10-13 s
    assert sum(e.summary.faces for e in summaries) >= len(appeared)
    assert all(max(e.summary.counts.values(), default=0) <= e.summary.faces for e in summaries)


def test_events_match_the_published_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    try:
        schema = load_schema("event")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    rec = load_recording("single_face")
    events = replay(rec, TrackingConfig(max_age_s=1.0), skip=(3.0, 4.6), scores=_flip_after(6.0, "surprise"))
    assert {e.type for e in events} == {"face_appeared", "emotion_changed", "face_left", "summary"}
    for seq, e in enumerate(events, 1):
        payload = json.loads(e.stamped("test-device", seq).to_json())
        jsonschema.validate(payload, schema)


def test_track_emotion_histogram_covers_its_confirmed_time() -> None:
    rec = load_recording("single_face")
    tracker = Tracker(TrackingConfig())
    accrued = 0.0
    for f in rec.frames[::EVERY]:
        changes = tracker.update(f.detections, f.t)
        accrued += sum(s for _, _, s in changes.accrued)
        for tr in tracker.confirmed:
            if f.t >= 4.0:                          # unclassified until 4 s: that time counts as "unknown"
                tr.classify(f.classifications[0], f.t)
    tr = tracker.confirmed[0]
    assert sum(tr.emotion_seconds.values()) == pytest.approx(8.8 - 0.4) == pytest.approx(accrued)
    assert tr.emotion_seconds["unknown"] == pytest.approx(4.0 - 0.4)
    assert sum(v for k, v in tr.emotion_seconds.items() if k != "unknown") == pytest.approx(8.8 - 4.0)
