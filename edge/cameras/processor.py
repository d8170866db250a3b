"""Each camera's FrameProcessor behind one ``process(round)``, with the round's faces classified in one batch."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

from edge.cameras.camera_set import FrameBatch
from edge.config import AppConfig
from edge.events import Event
from edge.face_analyzer import FaceAnalyzer
from edge.frame_processor import FrameProcessor, FrameResult
from edge.track import Track

#: Per-camera figures of the stats message (the rest of a processor's snapshot is summed or left out).
SUMMED = ("frames", "dropped", "detections", "classified", "skipped_quality", "faces_confirmed")


class MultiProcessor:
    """One :class:`FrameProcessor` per camera (its config: :meth:`AppConfig.camera_configs`), one shared analyzer.

    ``process(batch)`` begins every camera's frame of the round (detect or track, gate, align), sends
    all their crops through the emotion model in one call, and finishes each (smoothing, events).
    Events keep their camera id; stats are kept per camera and summed.
    """

    def __init__(self, cfgs: list[AppConfig], analyzer: FaceAnalyzer) -> None:
        self.analyzer = analyzer
        self.processors = {c.source.name: FrameProcessor(c, analyzer=analyzer) for c in cfgs}
        self.batch_sizes: Counter[int] = Counter()     # faces per model call -> calls, this stats interval
        self.shared_calls = 0                          # model calls with faces of more than one camera
        self._tracks: dict[str, list[Track]] = {name: [] for name in self.processors}

    def process(self, batch: FrameBatch, now: float | None = None) -> FrameResult:
        """One round: a frame of each ready camera. ``now`` is ignored: live cameras are judged by the wall clock."""
        begun = []
        for frame, live in batch.frames:
            proc = self.processors[frame.camera]
            begun.append((frame.camera, proc, proc.begin(frame, time.time() if live else None)))
        crops = [crop for _, _, p in begun if p.result is None for crop in p.crops()]
        scores = self.analyzer.classify(crops) if crops else []
        total_ms = self.analyzer.clock.last_ms["classify"] if crops else 0.0
        if crops:
            self.batch_sizes[len(crops)] += 1
            self.shared_calls += sum(1 for _, _, p in begun if p.result is None and p.keep) > 1
        events: list[Event] = []
        timings: dict[str, float] = {}
        offset, classified, detected, dropped = 0, 0, False, True
        for camera, proc, pending in begun:
            if pending.result is not None:
                result = pending.result
            else:
                n = len(pending.keep)
                result = proc.finish(pending, scores[offset:offset + n], total_ms * n / len(crops) if n else None)
                offset += n
            self._tracks[camera] = result.tracks
            events.extend(result.events)
            for stage, ms in result.timings.items():
                timings[stage] = timings.get(stage, 0.0) + ms
            classified += result.classified
            detected |= result.detected
            dropped &= result.dropped
        first = batch.frames[0][0]
        return FrameResult(first.index, max(f.timestamp for f, _ in batch.frames), self.tracks, events, timings,
                           detected=detected, classified=classified, dropped=dropped)

    @property
    def tracks(self) -> list[Track]:
        """The faces in view on every camera (each camera's as of its last processed frame)."""
        return [tr for camera_tracks in self._tracks.values() for tr in camera_tracks]

    def reconfigure(self, cfg: AppConfig) -> None:
        """New processor settings for every camera (the same cameras: a changed list restarts the pipeline)."""
        for camera_cfg in cfg.camera_configs():
            proc = self.processors.get(camera_cfg.source.name)
            if proc is not None:
                proc.reconfigure(camera_cfg)

    def close(self, t: float | None = None) -> list[Event]:
        """End of the streams: every camera's face_left for faces still tracked and its last summary."""
        return [event for proc in self.processors.values() for event in proc.close(t)]

    def take_stats(self) -> dict[str, Any]:
        """The cameras' counters summed, each camera's own (``cameras``) and the model's batch sizes; then afresh."""
        per_camera = {name: proc.take_stats() for name, proc in self.processors.items()}
        total: dict[str, Any] = {key: sum(s[key] for s in per_camera.values()) for key in SUMMED}
        frames = total["frames"]
        total["faces_per_frame"] = round(sum(s["faces_per_frame"] * s["frames"] for s in per_camera.values())
                                         / frames, 3) if frames else 0.0
        fps = [s["input_fps"] for s in per_camera.values() if s["input_fps"] is not None]
        total["input_fps"] = round(sum(fps), 2) if fps else None
        calls = sum(self.batch_sizes.values())
        total["classify_batch"] = {
            "calls": calls,
            "mean": round(sum(n * c for n, c in self.batch_sizes.items()) / calls, 2) if calls else None,
            "max": max(self.batch_sizes) if self.batch_sizes else None,
            "sizes": {str(n): c for n, c in sorted(self.batch_sizes.items())},
            "multi_camera_calls": self.shared_calls}
        self.batch_sizes, self.shared_calls = Counter(), 0
        total["cameras"] = per_camera
        return total
