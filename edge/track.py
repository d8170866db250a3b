"""Faces across frames: association, a constant-velocity motion model, score smoothing, hysteresis.

Everything here is driven by the timestamps it is given (media time for files, wall clock for live
cameras) and never reads a clock itself, so the same detections always give the same tracks.

- :class:`Tracker` matches each frame's detections to tracks (IoU, or centre distance for fast
  moves), predicts boxes between detections, confirms a track after ``min_hits`` detections and
  keeps it (and its id) through misses shorter than ``max_age_s``.
- :class:`EmotionSmoother` averages a track's class scores over time (EMA or a window) and changes
  the track's emotion only when another one has led for ``hysteresis_s``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
import numpy as np
from edge.config.tracking import TrackingConfig
from edge.geometry import centre, iou
from edge.types import Classification, Detection

UNKNOWN = "unknown"   # emotion bucket for time a track spent before its first classification


class EmotionSmoother:
    """Smoothed class scores for one track, and its emotion with hysteresis.

    The first classification sets the emotion at once (there is nothing to hold on to yet);
    afterwards a new emotion must lead the smoothed scores for ``hysteresis_s`` seconds, by at
    least ``switch_margin``, before it replaces the current one.
    """

    def __init__(self, cfg: TrackingConfig) -> None:
        self.cfg = cfg
        self.scores: np.ndarray | None = None
        self.classes: tuple[str, ...] = ()
        self.emotion: str | None = None
        self._t: float | None = None
        self._window: deque[tuple[float, np.ndarray]] = deque()
        self._leader: str | None = None           # the emotion challenging the current one
        self._leader_since: float = 0.0

    def update(self, cls: Classification, t: float) -> str | None:
        """Add one classification at time ``t``; return the previous emotion if the emotion changed now.

        Returns None when it did not change; on the very first classification the previous emotion
        is None too, so check ``emotion`` (or use :meth:`Track.classify`, which reports both cases).
        """
        self.classes = cls.classes
        self.scores = self._smooth(np.asarray(cls.scores, np.float64), t)
        leader = self.classes[int(np.argmax(self.scores))]
        if self.emotion is None:
            self.emotion = leader
            return None
        if leader == self.emotion:
            self._leader = None
            return None
        if leader != self._leader:                 # a new challenger starts its clock now
            self._leader, self._leader_since = leader, t
        lead = self.scores[self.classes.index(leader)] - self.scores[self.classes.index(self.emotion)]
        if t - self._leader_since >= self.cfg.hysteresis_s and lead >= self.cfg.switch_margin:
            previous, self.emotion, self._leader = self.emotion, leader, None
            return previous
        return None

    def _smooth(self, scores: np.ndarray, t: float) -> np.ndarray:
        if self.cfg.smoothing == "window":
            self._window.append((t, scores))
            while self._window and self._window[0][0] < t - self.cfg.window_s:
                self._window.popleft()
            return np.mean([s for _, s in self._window], axis=0)
        if self.scores is None or self._t is None:
            self._t = t
            return scores
        # time-based EMA: irregular classification times weigh correctly
        alpha = 1.0 - 0.5 ** (max(0.0, t - self._t) / self.cfg.ema_half_life_s)
        self._t = t
        return self.scores + alpha * (scores - self.scores)


@dataclass
class Track:
    """One face followed across frames."""

    key: int                                   # internal serial number (every candidate gets one)
    box: tuple[float, float, float, float]     # current (predicted or matched) box, x y w h in pixels
    detection: Detection                       # the last detection matched to this track
    first_seen: float                          # timestamp of its first detection
    last_seen: float                           # timestamp of its last matched detection
    smoother: EmotionSmoother
    id: int | None = None                      # public id, given when the track is confirmed (1, 2, ...)
    hits: int = 1
    confirmed: bool = False
    velocity: tuple[float, float] = (0.0, 0.0)     # centre velocity, pixels per second
    last_classified: float | None = None       # time of its last classification
    last_attempt: float | None = None          # time it was last due (classified or refused by a quality gate)
    quality: str | None = None                 # why the last classification was skipped ('small', 'blurry', ...)
    classification: Classification | None = None  # the last raw classification
    emotion_seconds: dict[str, float] = field(default_factory=dict)   # time in view per emotion since confirmed
    box_at_last_seen: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)   # box as of last_seen
    _accounted_until: float = 0.0              # emotion_seconds counted up to this time

    @property
    def emotion(self) -> str | None:
        """The track's stable (smoothed, hysteresis-held) emotion; None before its first classification."""
        return self.smoother.emotion

    @property
    def scores(self) -> dict[str, float]:
        """Smoothed class scores, rounded for messages; empty before the first classification."""
        if self.smoother.scores is None:
            return {}
        return {c: round(float(s), 4) for c, s in zip(self.smoother.classes, self.smoother.scores)}

    @property
    def dwell_s(self) -> float:
        """Seconds from its first to its last detection."""
        return self.last_seen - self.first_seen

    def classify(self, cls: Classification, t: float) -> tuple[bool, str | None]:
        """Feed one classification; return (emotion changed or first set, previous emotion)."""
        had = self.smoother.emotion
        previous = self.smoother.update(cls, t)
        self.classification, self.last_classified, self.quality = cls, t, None
        if had is None and self.smoother.emotion is not None:
            return True, None
        return previous is not None, previous

    def predicted_box(self, t: float) -> tuple[float, float, float, float]:
        """Where the constant-velocity model puts the box at time ``t`` (from the last matched detection)."""
        dt = max(0.0, t - self.last_seen)
        cx, cy = centre(self.box_at_last_seen)
        w, h = self.box_at_last_seen[2], self.box_at_last_seen[3]
        cx, cy = cx + self.velocity[0] * dt, cy + self.velocity[1] * dt
        return cx - w / 2.0, cy - h / 2.0, w, h


@dataclass
class TrackChanges:
    """What one tracker step changed: the emitter turns this into events."""

    confirmed: list[Track] = field(default_factory=list)     # became confirmed now (face_appeared)
    removed: list[Track] = field(default_factory=list)       # confirmed tracks that ended now (face_left)
    accrued: list[tuple[Track, str, float]] = field(default_factory=list)  # (track, emotion, seconds) in view


class Tracker:
    """Multi-face tracker: greedy IoU / centre-distance association with a constant-velocity model."""

    def __init__(self, cfg: TrackingConfig | None = None) -> None:
        self.cfg = cfg or TrackingConfig()
        self.tracks: list[Track] = []
        self._next_key = 1
        self._next_id = 1

    def reconfigure(self, cfg: TrackingConfig) -> None:
        """Use new settings from the next update on, keeping every track, its id and its smoothed scores."""
        self.cfg = cfg
        for tr in self.tracks:
            tr.smoother.cfg = cfg

    @property
    def confirmed(self) -> list[Track]:
        """The tracks that are reported (confirmed), oldest first."""
        return [t for t in self.tracks if t.confirmed]

    def predict(self, t: float) -> None:
        """Move every track's box to where the motion model puts it at time ``t`` (no detection this frame)."""
        for tr in self.tracks:
            tr.box = tr.predicted_box(t)

    def update(self, detections: list[Detection], t: float) -> TrackChanges:
        """Associate this frame's detections (taken at time ``t``) with the tracks; start, confirm, end tracks.

        Two passes: sure detections (``new_track_score`` and above) against every track, by overlap or
        centre distance; then the less sure ones against the confirmed tracks still unmatched, by
        overlap only. Only sure detections start tracks.
        """
        changes = TrackChanges()
        for tr in [tr for tr in self.tracks if tr.confirmed and t - tr.last_seen > self.cfg.max_age_s]:
            self.tracks.remove(tr)                # unseen too long (e.g. the camera was off): it left
            changes.removed.append(tr)
        self.predict(t)
        sure = [d for d in detections if d.score >= self.cfg.new_track_score]
        unsure = [d for d in detections if d.score < self.cfg.new_track_score]
        matches, rest, unmatched_dets = self._associate(self.tracks, sure, centre_distance=True)
        second, missed, _ = self._associate([tr for tr in rest if tr.confirmed], unsure, centre_distance=False)
        unmatched_tracks = missed + [tr for tr in rest if not tr.confirmed]
        for tr, det in matches + second:
            self._correct(tr, det, t)
            if tr.confirmed:
                self._accrue(tr, t, changes)
            elif tr.hits >= self.cfg.min_hits:
                self._confirm(tr, t, changes)
        for tr in unmatched_tracks:
            if not tr.confirmed:
                self.tracks.remove(tr)            # a candidate that missed once: a false face, no event
            elif t - tr.last_seen > self.cfg.max_age_s:
                self.tracks.remove(tr)
                changes.removed.append(tr)
        for det in unmatched_dets:
            # A second box on a face already tracked is a duplicate detection, not a new face.
            if any(iou(det.box, tr.box) > 0.5 for tr in self.tracks):
                continue
            tr = Track(key=self._next_key, box=det.box, detection=det, first_seen=t, last_seen=t,
                       smoother=EmotionSmoother(self.cfg), box_at_last_seen=det.box)
            self._next_key += 1
            self.tracks.append(tr)
            if self.cfg.min_hits <= 1:
                self._confirm(tr, t, changes)
        return changes

    def end_all(self, t: float) -> TrackChanges:
        """End every track (the stream ended): confirmed ones are reported as removed."""
        changes = TrackChanges(removed=[tr for tr in self.tracks if tr.confirmed])
        self.tracks = []
        return changes

    def _associate(self, tracks: list[Track], detections: list[Detection], centre_distance: bool) \
            -> tuple[list[tuple[Track, Detection]], list[Track], list[Detection]]:
        """Greedy matching: best-overlapping pairs first, then (``centre_distance``) nearest centres; each used once."""
        pairs = []
        for i, tr in enumerate(tracks):
            tcx, tcy = centre(tr.box)
            for j, det in enumerate(detections):
                overlap = iou(tr.box, det.box)
                dcx, dcy = centre(det.box)
                width = max(tr.box[2], det.box[2], 1e-6)
                distance = math.hypot(dcx - tcx, dcy - tcy) / width
                ratio = det.box[2] / max(tr.box[2], 1e-6)
                near = centre_distance and distance <= self.cfg.max_center_distance and 0.5 <= ratio <= 2.0
                if overlap >= self.cfg.iou_threshold or near:
                    pairs.append((-overlap, distance, i, j))
        pairs.sort()
        used_t: set[int] = set()
        used_d: set[int] = set()
        matches = []
        for _, _, i, j in pairs:
            if i in used_t or j in used_d:
                continue
            used_t.add(i)
            used_d.add(j)
            matches.append((tracks[i], detections[j]))
        return (matches, [tr for i, tr in enumerate(tracks) if i not in used_t],
                [d for j, d in enumerate(detections) if j not in used_d])

    def _correct(self, tr: Track, det: Detection, t: float) -> None:
        """Alpha-beta update of the box and the centre velocity from a matched detection."""
        dt = t - tr.last_seen
        px, py = centre(tr.box)                          # predicted centre at t
        zx, zy = centre(det.box)
        a, b = self.cfg.position_gain, self.cfg.velocity_gain
        cx, cy = px + a * (zx - px), py + a * (zy - py)
        w = tr.box[2] + a * (det.box[2] - tr.box[2])
        h = tr.box[3] + a * (det.box[3] - tr.box[3])
        if dt > 0:
            vx = tr.velocity[0] + b * (zx - px) / dt
            vy = tr.velocity[1] + b * (zy - py) / dt
            tr.velocity = (vx, vy)
        tr.box = tr.box_at_last_seen = (cx - w / 2.0, cy - h / 2.0, w, h)
        tr.detection, tr.last_seen, tr.hits = det, t, tr.hits + 1

    def _confirm(self, tr: Track, t: float, changes: TrackChanges) -> None:
        tr.confirmed, tr.id = True, self._next_id
        tr._accounted_until = t
        self._next_id += 1
        changes.confirmed.append(tr)

    @staticmethod
    def _accrue(tr: Track, t: float, changes: TrackChanges) -> None:
        """Count the time since the track's last detection towards the emotion it held meanwhile."""
        dt = t - tr._accounted_until
        if dt <= 0:
            return
        label = tr.emotion or UNKNOWN
        tr.emotion_seconds[label] = tr.emotion_seconds.get(label, 0.0) + dt
        tr._accounted_until = t
        changes.accrued.append((tr, label, dt))


