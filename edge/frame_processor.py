"""The per-frame pipeline: detect every N frames, track in between, classify each face at a rate, emit events.

``FrameProcessor.process(frame)`` is one frame's whole way after decoding: detection (on detection
frames) or motion prediction (between them), the quality gates, alignment and classification of the
tracks that are due, smoothing and hysteresis, and the events that result. A live camera's frames
that arrive too late to matter are dropped rather than processed behind time, and counted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.config import AppConfig
from edge.emitter import EventEmitter
from edge.events import Event
from edge.face_analyzer import FaceAnalyzer
from edge.quality import crop_problem, detection_problem
from edge.timing import StageClock, lap_ms
from edge.track import Track, TrackChanges, Tracker
from edge.types import Detection, Frame


@dataclass
class FrameResult:
    """What processing one frame gave."""

    index: int
    timestamp: float
    tracks: list[Track]                # the confirmed tracks in view, oldest first
    events: list[Event]
    timings: dict[str, float]          # stage -> milliseconds, for the stages that ran on this frame
    detected: bool = False             # the detector ran on this frame
    classified: int = 0                # faces classified on this frame
    dropped: bool = False              # skipped: it arrived too late (live sources)
    changes: TrackChanges | None = None  # the tracker's changes on this frame (None when dropped)


@dataclass
class PendingFrame:
    """A frame between :meth:`FrameProcessor.begin` and :meth:`FrameProcessor.finish`: its crops await the model."""

    frame: Frame
    t: float
    timings: dict[str, float]
    detected: bool = False
    changes: TrackChanges | None = None
    keep: list[tuple[Track, np.ndarray]] = field(default_factory=list)   # (track, aligned crop) to classify
    result: FrameResult | None = None  # already finished (a dropped late frame)

    def crops(self) -> list[np.ndarray]:
        """The aligned crops for the emotion model, in order."""
        return [crop for _, crop in self.keep]


@dataclass
class ProcessorStats:
    """Counters since the last reset, for the service's stats message and the benchmarks."""

    frames: int = 0                    # frames processed
    dropped: int = 0                   # frames skipped because processing fell behind
    detections: int = 0                # detector runs
    classified: int = 0                # faces classified
    skipped_quality: int = 0           # classifications skipped by the quality gates
    faces_confirmed: int = 0           # tracks confirmed (new faces)
    face_frames: int = 0               # sum over processed frames of the faces in view
    stages: StageClock = field(default_factory=StageClock)   # ms per stage, over the frames that ran it
    first_t: float | None = None
    last_t: float | None = None

    def snapshot(self) -> dict[str, Any]:
        """Plain numbers: totals, mean ms per stage (per call), fps, faces per frame and per minute."""
        span = (self.last_t - self.first_t) if self.first_t is not None and self.last_t is not None else 0.0
        busy_ms = sum(self.stages.total_ms.values())
        return {
            "frames": self.frames, "dropped": self.dropped, "detections": self.detections,
            "classified": self.classified, "skipped_quality": self.skipped_quality,
            "faces_confirmed": self.faces_confirmed,
            "faces_per_frame": round(self.face_frames / self.frames, 3) if self.frames else 0.0,
            "faces_per_minute": round(self.faces_confirmed * 60.0 / span, 2) if span > 0 else 0.0,
            "stage_ms": {s: round(ms, 3) for s, ms in self.stages.mean_ms().items()},
            "inference_ms": round(self.stages.mean_ms()["classify"], 3) if self.stages.calls.get("classify") else None,
            "processing_fps": round(self.frames * 1000.0 / busy_ms, 1) if busy_ms > 0 else None,
            "input_fps": round((self.frames + self.dropped) / span, 2) if span > 0 else None,
        }


class FrameProcessor:
    """Detect every N frames, track between, classify due faces that pass the quality gates, emit events.

    ``cfg`` is the app config (sections schedule, tracking, quality, events, source; detector, align
    and model for the analyzer). ``analyzer`` is built from it when not given.
    """

    def __init__(self, cfg: AppConfig | None = None, analyzer: FaceAnalyzer | None = None) -> None:
        self.cfg = cfg if cfg is not None else AppConfig()
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer(self.cfg)
        self.tracker = Tracker(self.cfg.tracking)
        self.emitter = EventEmitter(self.cfg.events, camera=self.cfg.source.name)
        self.stats = ProcessorStats()
        self._since_detect: int | None = None     # processed frames since the last detection
        self._last_detect_t: float | None = None
        self._last_index: int | None = None
        self._last_t: float | None = None

    def reconfigure(self, cfg: AppConfig) -> None:
        """Apply new schedule, tracking, quality and events settings between two frames.

        The faces in view keep their tracks, ids and smoothed scores, so a live change of a
        threshold does not make every face leave and appear again.
        """
        self.cfg = cfg
        self.tracker.reconfigure(cfg.tracking)
        self.emitter.cfg = cfg.events

    def process(self, frame: Frame, now: float | None = None) -> FrameResult:
        """Process one frame. ``now`` (epoch seconds, live sources only) enables dropping late frames."""
        pending = self.begin(frame, now)
        if pending.result is not None:
            return pending.result
        crops = pending.crops()
        scores = self.analyzer.classify(crops) if crops else []
        return self.finish(pending, scores, self.analyzer.clock.last_ms["classify"] if crops else None)

    def begin(self, frame: Frame, now: float | None = None) -> PendingFrame:
        """A frame's work up to classification: detect or predict, track, gate and align the due faces.

        The aligned crops (``PendingFrame.crops()``) go through the emotion model, this camera's alone
        (:meth:`process`) or in one batch with other cameras' (edge/cameras/); :meth:`finish` takes the scores.
        A late live frame comes back already finished (``result``: dropped).
        """
        sched = self.cfg.schedule
        t = frame.timestamp
        self._count_gap(frame.index)
        if now is not None and sched.max_lag_s > 0 and now - t > sched.max_lag_s:
            self.stats.dropped += 1
            return PendingFrame(frame, t, {}, result=FrameResult(frame.index, t, self.tracker.confirmed, [], {},
                                                                 dropped=True))

        timings: dict[str, float] = {}
        detect_now = self._since_detect is None or self._since_detect + 1 >= sched.detect_every
        if detect_now:
            dets = self.analyzer.detect(frame, self.cfg.detector.profile)
            timings["detect"] = self.analyzer.clock.last_ms["detect"]   # the analyzer times its own stages
            clock = time.perf_counter()
            changes = self.tracker.update(dets, t)
            self._since_detect, self._last_detect_t = 0, t
            self.stats.detections += 1
        else:
            clock = time.perf_counter()
            self.tracker.predict(t)
            changes = TrackChanges()
            self._since_detect = (self._since_detect or 0) + 1
        timings["track"] = lap_ms(clock)
        keep = self._due_crops(frame, t, timings)
        return PendingFrame(frame, t, timings, detected=detect_now, changes=changes, keep=keep)

    def finish(self, pending: PendingFrame, scores: list, classify_ms: float | None = None) -> FrameResult:
        """The rest of a frame begun by :meth:`begin`: ``scores`` for its crops, then smoothing and events.

        ``classify_ms``: this frame's share of the model's time (timings and stats).
        """
        t, timings = pending.t, pending.timings
        if classify_ms is not None:
            timings["classify"] = classify_ms
        emotion_changes = []
        for (tr, _), cls in zip(pending.keep, scores):
            changed, previous = tr.classify(cls, t)
            if changed:
                emotion_changes.append((tr, previous))
        self.stats.classified += len(scores)
        crops = {tr.key: c for tr, c in pending.keep}

        clock = time.perf_counter()
        tracks = self.tracker.confirmed
        changes = pending.changes if pending.changes is not None else TrackChanges()
        events = self.emitter.step(t, changes, emotion_changes, tracks,
                                   crops if self.cfg.events.snapshots.enabled else None)
        timings["events"] = lap_ms(clock)
        self._account(t, timings, len(tracks), len(changes.confirmed))
        return FrameResult(pending.frame.index, t, tracks, events, timings, detected=pending.detected,
                           classified=len(scores), changes=changes)

    def close(self, t: float | None = None) -> list[Event]:
        """End of the stream: face_left for the faces still tracked and the last (partial) summary."""
        t = self._last_t if t is None else t
        if t is None:
            return []
        return self.emitter.finish(t, self.tracker.end_all(t))

    def _due_crops(self, frame: Frame, t: float, timings: dict[str, float]) -> list[tuple[Track, np.ndarray]]:
        """The confirmed tracks due for classification that pass the gates, with their aligned crops."""
        period = 1.0 / self.cfg.schedule.classify_hz
        quality = self.cfg.quality
        due: list[tuple[Track, Detection]] = []
        for tr in self.tracker.confirmed:
            # Only faces the last detection saw: a track coasting through a miss may be behind a hand.
            if tr.last_seen != self._last_detect_t:
                continue
            if tr.last_attempt is not None and t - tr.last_attempt < period - 1e-3:
                continue
            tr.last_attempt = t
            det = tr.detection if tr.last_seen == t else _moved(tr.detection, tr.box)
            problem = detection_problem(det, quality)
            if problem:
                tr.quality = problem
                self.stats.skipped_quality += 1
                continue
            due.append((tr, det))
        if not due:
            return []
        crops = self.analyzer.align(frame, [d for _, d in due])
        clock = time.perf_counter()      # the crop gates count as part of the align stage
        keep = []
        for (tr, _), crop in zip(due, crops):
            problem = crop_problem(crop, quality)
            if problem:
                tr.quality = problem
                self.stats.skipped_quality += 1
            else:
                keep.append((tr, crop))
        timings["align"] = self.analyzer.clock.last_ms["align"] + lap_ms(clock)
        return keep

    def _count_gap(self, index: int) -> None:
        """Frames the source skipped (it keeps only the newest frame when we are slow) count as dropped."""
        if self._last_index is not None and index > self._last_index + 1:
            self.stats.dropped += index - self._last_index - 1
        self._last_index = index

    def take_stats(self) -> dict[str, Any]:
        """The counters as plain numbers, then start counting afresh (one stats interval)."""
        snap = self.stats.snapshot()
        self.stats = ProcessorStats()
        return snap

    def _account(self, t: float, timings: dict[str, float], faces: int, confirmed: int) -> None:
        s = self.stats
        s.frames += 1
        s.face_frames += faces
        s.faces_confirmed += confirmed
        for stage, ms in timings.items():       # only the stages that ran on this frame
            s.stages.add_ms(stage, ms)
        if s.first_t is None:
            s.first_t = t
        s.last_t = self._last_t = t


def _moved(det: Detection, box: tuple[float, float, float, float]) -> Detection:
    """The detection shifted and scaled onto the track's predicted box (landmarks too), between detections."""
    ox, oy, ow, oh = det.box
    sx, sy = box[2] / max(ow, 1e-6), box[3] / max(oh, 1e-6)
    lms = {k: (box[0] + (x - ox) * sx, box[1] + (y - oy) * sy) for k, (x, y) in det.landmarks.items()}
    return Detection(box=box, score=det.score, landmarks=lms)
