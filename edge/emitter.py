"""Track transitions -> events: face_appeared, emotion_changed, face_left and the periodic summary.

Semantics (what a dashboard can rely on):
- ``face_appeared`` once per track, when it is confirmed (after ``tracking.min_hits`` detections),
  carrying its emotion if the face was already classifiable then;
- ``emotion_changed`` only when the track's smoothed, hysteresis-held emotion changes (including
  its first emotion when that was not known at face_appeared: previous_label is then null);
- ``face_left`` when a confirmed track ends, with how long it was in view and its final emotion;
- ``summary`` every ``events.summary_interval_s`` of the timestamps given (media time for files),
  with the faces seen and, per emotion, the faces that showed it, so a dashboard can draw the mix
  without reading every per-face event.

Timestamps come from the frames, never from a clock, so the same detections give the same events.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.config.events import EventsConfig
from edge.events import Event, Summary, encode_snapshot
from edge.track import UNKNOWN, Track, TrackChanges



@dataclass
class _Interval:
    """What one summary interval has collected so far."""

    start: float
    faces: set[int] = field(default_factory=set)                    # track ids in view
    shown: dict[str, set[int]] = field(default_factory=dict)        # emotion -> track ids that showed it
    seconds: dict[str, float] = field(default_factory=dict)         # emotion -> face-seconds

    def add(self, track: Track, label: str | None, seconds: float = 0.0) -> None:
        if track.id is None:
            return
        self.faces.add(track.id)
        if label and label != UNKNOWN:
            self.shown.setdefault(label, set()).add(track.id)
        if seconds > 0:
            key = label or UNKNOWN
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds


class EventEmitter:
    """Turns each frame's track changes into :class:`edge.events.Event` objects for one camera."""

    def __init__(self, cfg: EventsConfig | None = None, camera: str = "cam0") -> None:
        self.cfg = cfg or EventsConfig()
        self.camera = camera
        self._interval: _Interval | None = None

    def step(self, t: float, changes: TrackChanges, emotion_changes: list[tuple[Track, str | None]],
             tracks: list[Track], crops: dict[int, np.ndarray] | None = None) -> list[Event]:
        """Events for one processed frame at time ``t``.

        ``changes`` is the tracker's step result, ``emotion_changes`` the (track, previous emotion)
        pairs whose emotion changed this frame, ``tracks`` the confirmed tracks now in view, and
        ``crops`` the aligned face crops by track key (used only when snapshots are enabled).
        """
        if self._interval is None:
            self._interval = _Interval(start=t)
        events: list[Event] = []
        # A summary interval that ended before this frame is closed with what it had.
        while t >= self._interval.start + self.cfg.summary_interval_s:
            end = self._interval.start + self.cfg.summary_interval_s
            events.append(self._summary(end))
            # after a long gap (a stalled camera), restart at this frame rather than emit empty intervals
            self._interval = _Interval(start=end if t < end + self.cfg.summary_interval_s else t)
        for tr, label, seconds in changes.accrued:
            self._interval.add(tr, label, seconds)
        for tr in tracks:
            self._interval.add(tr, tr.emotion)
        appeared = {tr.key for tr in changes.confirmed}
        for tr in changes.confirmed:
            events.append(self._face_event("face_appeared", tr, t, crops))
        for tr, previous in emotion_changes:
            if tr.key in appeared and previous is None:
                continue           # its first emotion is already in face_appeared
            events.append(self._face_event("emotion_changed", tr, t, crops, previous=previous))
        for tr in changes.removed:
            events.append(self._face_left(tr))
        return events

    def finish(self, t: float, changes: TrackChanges) -> list[Event]:
        """Events at the end of a stream: face_left for the tracks still in view, then the last summary."""
        events = [self._face_left(tr) for tr in changes.removed]
        if self._interval is not None:
            for tr in changes.removed:
                self._interval.add(tr, tr.emotion)
            if t > self._interval.start:
                events.append(self._summary(t))
            self._interval = None
        return events

    def _face_event(self, kind: str, tr: Track, t: float, crops: dict[int, np.ndarray] | None,
                    previous: str | None = None) -> Event:
        scores = tr.scores or None
        label = tr.emotion
        crop = (crops or {}).get(tr.key)
        snapshot = encode_snapshot(crop, self.cfg.snapshots) if crop is not None else None
        return Event(type=kind, camera=self.camera, ts=t, track_id=tr.id, label=label,
                     score=(scores or {}).get(label) if label else None, scores=scores,
                     box=_box(tr.box), previous_label=previous, snapshot=snapshot)

    def _face_left(self, tr: Track) -> Event:
        scores = tr.scores or None
        label = tr.emotion
        return Event(type="face_left", camera=self.camera, ts=tr.last_seen, track_id=tr.id, label=label,
                     score=(scores or {}).get(label) if label else None, scores=scores,
                     box=_box(tr.box_at_last_seen), duration_s=tr.dwell_s,
                     emotions={k: round(v, 3) for k, v in tr.emotion_seconds.items()})

    def _summary(self, end: float) -> Event:
        iv = self._interval
        assert iv is not None
        summary = Summary(interval_s=end - iv.start, start=iv.start,
                          counts={k: len(v) for k, v in sorted(iv.shown.items())}, faces=len(iv.faces),
                          seconds={k: round(v, 3) for k, v in sorted(iv.seconds.items())})
        return Event(type="summary", camera=self.camera, ts=end, summary=summary)


def _box(box: tuple[float, ...]) -> tuple[float, float, float, float]:
    """The part of a box inside the frame's top-left corner, rounded: a face at the left or top edge (whose
    smoothed or detected box reaches past it) gets x, y >= 0 and its width, height cut by the overhang."""
    x, y, w, h = (float(v) for v in box)
    cut_x, cut_y = max(0.0, -x), max(0.0, -y)
    return (round(x + cut_x, 1), round(y + cut_y, 1), round(max(0.0, w - cut_x), 1), round(max(0.0, h - cut_y), 1))
