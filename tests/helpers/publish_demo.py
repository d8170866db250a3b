"""Publish a deterministic stream of N events through the real sink, from its own process.

    python -m tests.helpers.publish_demo --config publish.yaml --count 2000 --rate 500 [--hold]

The config file holds the publishing sections of config.yaml (device, events, mqtt, queue,
homeassistant; other keys are ignored). Event k (k = 0, 1, ...) is a pure function of k, and a
restarted demo resumes at k = the queue's persisted sequence counter: every event enters the
queue exactly once even when the previous run was killed with SIGKILL, which is what the
at-least-once tests need (tests/test_mqtt_kill.py). A test and benchmark driver, not part of the
runtime package. With ``--hold`` it keeps the connection open
after sending until SIGTERM/SIGINT (the last-will tests); SIGTERM always closes cleanly
(`stopped` on the status topic).
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from edge.config.events import EventsConfig
from edge.config.homeassistant import HomeAssistantConfig
from edge.config.mqtt import MqttConfig
from edge.config.queue import QueueConfig
from edge.events import Event, Summary
from edge.publish.mqtt import MqttSink
from edge.publish.sink import build_sink

LABELS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def demo_event(k: int, camera: str = "cam0") -> Event:
    """The k-th event of the demo stream: faces appear, change emotion and leave; every 50th is a summary."""
    ts = 1_700_000_000.0 + k * 0.04
    if k % 50 == 49:
        return Event("summary", camera, ts, summary=Summary(2.0, ts - 2.0, {"happiness": 2, "neutral": 1}, 3))
    track, phase = divmod(k, 3)
    label, before = LABELS[k % len(LABELS)], LABELS[(k - 1) % len(LABELS)]
    scores = {c: (0.65 if c == label else 0.05) for c in LABELS}
    box = (10.0 + track % 100, 20.0, 64.0, 64.0)
    kind = ("face_appeared", "emotion_changed", "face_left")[phase]
    return Event(kind, camera, ts, track_id=track, label=label, score=0.65, scores=scores, box=box,
                 previous_label=before if kind == "emotion_changed" else None,
                 duration_s=1.5 if kind == "face_left" else None)


def load_publish_config(path: Path) -> dict[str, Any]:
    """The publishing sections of a YAML file as keyword arguments of build_sink()."""
    data = yaml.safe_load(path.read_text()) or {}
    device = data.get("device", "demo")
    return {"device": str(device.get("id", "demo") if isinstance(device, dict) else device),
            "events": EventsConfig(**data.get("events", {})), "mqtt": MqttConfig(**data.get("mqtt", {})),
            "queue": QueueConfig(**data.get("queue", {})),
            "homeassistant": HomeAssistantConfig(**data.get("homeassistant", {}))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.helpers.publish_demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, required=True, help="YAML with device/events/mqtt/queue/homeassistant")
    p.add_argument("--count", type=int, default=1000, help="events in the whole stream (over all restarts)")
    p.add_argument("--rate", type=float, default=0, help="events per second (0: as fast as possible)")
    p.add_argument("--batch", type=int, default=1, help="events per queue transaction")
    p.add_argument("--hold", action="store_true", help="stay connected after sending, until SIGTERM")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for the queue to empty")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sink = build_sink(**load_publish_config(args.config))
    # Resume where the queue's counter says the previous run stopped: no event is queued twice.
    start = sink.queue.last_seq if isinstance(sink, MqttSink) else 0
    t0, k = time.monotonic(), start
    while k < args.count and not stop.is_set():
        n = min(args.batch, args.count - k)
        sink.publish_all(demo_event(i) for i in range(k, k + n))
        k += n
        if args.rate > 0:
            stop.wait(max(0.0, t0 + (k - start) / args.rate - time.monotonic()))
    drained = False
    if isinstance(sink, MqttSink):
        deadline = time.monotonic() + args.drain_timeout
        while not stop.is_set() and time.monotonic() < deadline:
            if sink.queue.depth == 0 and sink.connected:
                drained = True
                break
            stop.wait(0.02)
    if args.hold:
        stop.wait()
    left = sink.queue.depth if isinstance(sink, MqttSink) else 0
    sink.close(timeout=2.0)
    print(json.dumps({"resumed_at": start, "queued_now": k - start, "drained": drained, "left_in_queue": left}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
