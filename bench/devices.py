"""Simulated fer-edge devices for benchmarks: N devices publishing through the real publisher and queue.

    python bench/devices.py --broker 127.0.0.1:1883 --devices 50 --minutes 5 [--prefix fer-edge]

Each simulated device is the real publishing side of fer-edge without the camera pipeline: an
``edge.publish`` sink (MqttSink: SQLite queue, sender thread, retained status with the last will,
retained per-camera state derived from the events, stats) fed with real ``Event`` objects. Faces
arrive at random (Poisson), change emotion a few times, and leave with their dwell time; every
``summary_interval_s`` a summary counts faces and face-seconds per emotion, as the emitter does;
every ``stats_interval_s`` a stats message with plausible pipeline figures. Defaults are the
config defaults (stats and summaries every 60 s) and a busy shop entrance (6 faces per minute).
Every event's ``epoch`` is the time it was created, so a consumer can measure latency from it.

Used by bench/dashboard.py (50 devices) and bench/fleet.py (200 and more): ``SimFleet(...)``.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge.events import Event, Summary, iso_utc  # noqa: E402
from edge.config.events import EventsConfig  # noqa: E402
from edge.config.mqtt import MqttConfig  # noqa: E402
from edge.config.queue import QueueConfig  # noqa: E402
from edge.publish.sink import build_sink  # noqa: E402

LABELS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
# how often each emotion shows up in the simulation (neutral and happiness dominate, as in real footage)
WEIGHTS = (0.45, 0.25, 0.08, 0.08, 0.05, 0.03, 0.03, 0.03)


@dataclass(frozen=True)
class Rates:
    """How busy each simulated camera is, and how often devices report."""

    faces_per_min: float = 6.0          # new faces per minute per camera (Poisson arrivals)
    dwell_s: float = 8.0                # mean time a face stays in view (exponential)
    changes_per_min: float = 6.0        # emotion changes per minute of a face in view
    stats_interval_s: float = 60.0      # stats.interval_s default
    summary_interval_s: float = 60.0    # events.summary_interval_s default


@dataclass
class _Face:
    track: int
    label: str
    since: float
    leaves: float
    label_since: float
    seconds: dict[str, float] = field(default_factory=dict)


class SimDevice:
    """One simulated device: its own sink (queue file, MQTT client) and its own faces."""

    def __init__(self, device_id: str, mqtt: MqttConfig, folder: Path, rates: Rates, seed: int,
                 cameras: tuple[str, ...] = ("cam0",), aggregate_only: bool = False) -> None:
        self.id, self.rates, self.cameras = device_id, rates, cameras
        self.rng = random.Random(seed)
        self.published = 0
        cfg = mqtt.model_copy(update={"client_id": f"sim-{device_id}"})
        self.sink = build_sink(device_id, EventsConfig(summary_interval_s=rates.summary_interval_s,
                                                       aggregate_only=aggregate_only),
                               cfg, QueueConfig(path=str(folder / f"{device_id}.db")), cameras=cameras)
        self._faces: dict[str, dict[int, _Face]] = {c: {} for c in cameras}
        self._next_track = {c: 1 for c in cameras}
        now = time.time()
        self._next_arrival = {c: now + self._wait(rates.faces_per_min) for c in cameras}
        self._interval_start = {c: now for c in cameras}
        self._shown: dict[str, dict[str, set[int]]] = {c: {} for c in cameras}
        self._seconds: dict[str, dict[str, float]] = {c: {} for c in cameras}
        self._seen: dict[str, set[int]] = {c: set() for c in cameras}
        # stats and summaries of the fleet spread over the interval, not all in the same second
        self._next_stats = now + self.rng.uniform(0, rates.stats_interval_s)
        self._started = now
        body = f"device:\n  id: {device_id}\n".encode()
        self.sink.publish_retained("config/state", {"v": 1, "ok": True, "version": hashlib.sha256(body).hexdigest(),
                                                    "error": None, "ts": iso_utc(now)})

    def _wait(self, per_min: float) -> float:
        return self.rng.expovariate(per_min / 60.0) if per_min > 0 else float("inf")

    def _label(self) -> str:
        return self.rng.choices(LABELS, WEIGHTS)[0]

    def _scores(self, label: str) -> dict[str, float]:
        top = round(self.rng.uniform(0.55, 0.95), 3)
        rest = (1.0 - top) / (len(LABELS) - 1)
        return {k: (top if k == label else round(rest, 4)) for k in LABELS}

    def _event(self, kind: str, camera: str, face: _Face, now: float, **extra: Any) -> Event:
        scores = self._scores(face.label)
        return Event(kind, camera, now, track_id=face.track, label=face.label, score=scores[face.label],
                     scores=scores, box=(100.0 + face.track % 400, 80.0, 96.0, 96.0), **extra)

    def _accrue(self, camera: str, face: _Face, now: float) -> None:
        spent = max(0.0, now - face.label_since)
        face.seconds[face.label] = face.seconds.get(face.label, 0.0) + spent
        self._seconds[camera][face.label] = self._seconds[camera].get(face.label, 0.0) + spent
        face.label_since = now

    def step(self, now: float) -> int:
        """Publish what happened since the last step; returns the number of events queued."""
        events: list[Event] = []
        for cam in self.cameras:
            faces = self._faces[cam]
            while now >= self._next_arrival[cam]:
                track = self._next_track[cam]
                self._next_track[cam] += 1
                face = _Face(track, self._label(), now, now + self.rng.expovariate(1.0 / self.rates.dwell_s), now)
                faces[track] = face
                self._seen[cam].add(track)
                self._shown[cam].setdefault(face.label, set()).add(track)
                events.append(self._event("face_appeared", cam, face, now))
                self._next_arrival[cam] += self._wait(self.rates.faces_per_min)
            for face in list(faces.values()):
                if now >= face.leaves:
                    self._accrue(cam, face, now)
                    del faces[face.track]
                    events.append(self._event("face_left", cam, face, now, duration_s=round(now - face.since, 3),
                                              emotions={k: round(v, 3) for k, v in face.seconds.items()}))
                elif self.rng.random() < self.rates.changes_per_min / 60.0 * 0.1:     # per 0.1 s tick
                    before = face.label
                    self._accrue(cam, face, now)
                    face.label = self.rng.choice([k for k in LABELS if k != before])
                    self._shown[cam].setdefault(face.label, set()).add(face.track)
                    events.append(self._event("emotion_changed", cam, face, now, previous_label=before))
            if now >= self._interval_start[cam] + self.rates.summary_interval_s:
                events.append(self._summary(cam, now))
        if events:
            self.sink.publish_all(events)        # aggregate_only is applied by the sink, as on a device
            self.published += len(events)
        if now >= self._next_stats:
            self._next_stats += self.rates.stats_interval_s
            self.sink.publish_stats(self._stats(now))
        return len(events)

    def _summary(self, cam: str, now: float) -> Event:
        for face in self._faces[cam].values():
            self._accrue(cam, face, now)
        start = self._interval_start[cam]
        in_view = set(self._faces[cam])
        summary = Summary(interval_s=now - start, start=start,
                          counts={k: len(v) for k, v in sorted(self._shown[cam].items())},
                          faces=len(self._seen[cam]), seconds={k: round(v, 3) for k, v in self._seconds[cam].items()})
        self._interval_start[cam] = now
        self._shown[cam] = {f.label: {t for t in in_view if self._faces[cam][t].label == f.label}
                            for f in self._faces[cam].values()}
        self._seconds[cam], self._seen[cam] = {}, set(in_view)
        return Event("summary", cam, now, summary=summary)

    def _stats(self, now: float) -> dict[str, Any]:
        r = self.rng
        fps = round(r.uniform(12, 30), 1)
        return {"input_fps": 15.0, "processing_fps": fps, "fps": {"detect": round(fps * 1.1, 1)},
                "stage_ms": {"detect": round(1000 / fps * 0.8, 1), "classify": round(r.uniform(2, 6), 1)},
                "inference_ms": round(r.uniform(2, 6), 2), "faces_per_minute": self.rates.faces_per_min,
                "dropped_frames": r.randrange(0, 5), "cpu_temp_c": round(r.uniform(45, 70), 1),
                "faces_in_view": sum(len(f) for f in self._faces.values()), "frames_total": int((now - self._started) * 15)}

    def close(self, timeout: float = 5.0) -> None:
        """Clean stop: the queue is flushed and `stopped` published."""
        self.sink.close(timeout)


class SimFleet:
    """N simulated devices stepped by one thread every ``tick_s``; ``with SimFleet(...) as fleet: ...``."""

    def __init__(self, mqtt: MqttConfig, n: int, rates: Rates | None = None, id_format: str = "sim-{:03d}",
                 seed: int = 1, folder: Path | None = None, aggregate_every: int = 0, tick_s: float = 0.1,
                 on_device: Callable[[SimDevice], None] | None = None) -> None:
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="fer-edge-sim-")
        folder = folder or Path(self._tmp.name)
        self.rates, self.tick_s = rates or Rates(), tick_s
        self.devices = [SimDevice(id_format.format(i), mqtt, folder, self.rates, seed * 100003 + i,
                                  aggregate_only=bool(aggregate_every and i % aggregate_every == aggregate_every - 1))
                        for i in range(n)]
        for dev in self.devices:
            if on_device:
                on_device(dev)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-fleet", daemon=True)

    @property
    def published(self) -> int:
        return sum(d.published for d in self.devices)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            now = time.time()
            for dev in self.devices:
                dev.step(now)

    def start(self) -> "SimFleet":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for dev in self.devices:
            dev.close(2.0)
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> "SimFleet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT of the broker")
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--prefix", default="fer-edge")
    p.add_argument("--minutes", type=float, default=5.0, help="how long to publish")
    p.add_argument("--faces-per-min", type=float, default=Rates.faces_per_min)
    p.add_argument("--stats-interval", type=float, default=Rates.stats_interval_s)
    p.add_argument("--summary-interval", type=float, default=Rates.summary_interval_s)
    p.add_argument("--aggregate-every", type=int, default=0, help="every Nth device is aggregate-only (0: none)")
    args = p.parse_args(argv)
    host, _, port = args.broker.rpartition(":")
    mqtt = MqttConfig(host=host, port=int(port), prefix=args.prefix, reconnect_min_s=0.2, reconnect_max_s=2.0)
    rates = Rates(args.faces_per_min, stats_interval_s=args.stats_interval, summary_interval_s=args.summary_interval)
    with SimFleet(mqtt, args.devices, rates, aggregate_every=args.aggregate_every) as fleet:
        time.sleep(args.minutes * 60)
        print(f"{args.devices} devices published {fleet.published} events in {args.minutes:g} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
