"""Benchmark: events per second into the durable queue, and through a real mosquitto on loopback.

    nice -n 10 python bench/mqtt.py [--events 5000]

Rows:
  queue append, 1 event per commit     what publish() costs the pipeline (SQLite WAL, synchronous=NORMAL)
  queue append, 50 events per commit   publish_all() of a busy frame
  paho alone (baseline)                plain paho QoS 1 publishing, no queue, no ordering window
  fer-edge, max_inflight=1/20/100      publish() -> queue -> sender -> broker -> subscriber, QoS 1
  fer-edge QoS 0                       the same without acknowledgements
The "through broker" rows time from the first publish() until a separate mosquitto_sub process has
received every event, so they include the queue, the sender, the broker and the subscriber. The
ratio column compares each row with the baseline measured in the same run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from tests.helpers.publish_demo import demo_event  # noqa: E402
from edge.config.mqtt import MqttConfig  # noqa: E402
from edge.publish.mqtt import MqttSink  # noqa: E402
from edge.publish.queue import EventQueue  # noqa: E402
from tests.helpers.broker import Broker  # noqa: E402


def bench_append(n: int, batch: int, folder: Path) -> float:
    """Events per second appended to a fresh queue, ``batch`` events per transaction."""
    q = EventQueue(folder / f"append-{batch}.db", max_events=10 * n)
    events = [demo_event(k) for k in range(n)]
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        q.append(events[i:i + batch], "bench")
    dt = time.perf_counter() - t0
    q.close()
    return n / dt


def subscriber(broker: Broker, topic: str, n: int) -> subprocess.Popen:
    """mosquitto_sub in its own process, exiting after ``n`` messages; returns once it is subscribed."""
    p = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic, "-q", "1",
                          "-C", str(n), "-i", f"bench-sub-{time.monotonic_ns()}"], stdout=subprocess.PIPE)
    time.sleep(0.3)     # let it connect and subscribe
    return p


def finish(p: subprocess.Popen, n: int, t0: float) -> float:
    out, _ = p.communicate(timeout=300)
    dt = time.perf_counter() - t0
    got = out.count(b"\n")
    if got != n:
        raise RuntimeError(f"subscriber got {got} of {n} messages")
    return n / dt


def bench_paho(broker: Broker, n: int) -> float:
    """Baseline: plain paho, QoS 1, no queue; the same payloads."""
    payloads = [demo_event(k).stamped("bench", k + 1).to_json() for k in range(n)]
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho")
    c.max_inflight_messages_set(20)     # paho's default window
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    sub = subscriber(broker, "bench/paho", n)
    t0 = time.perf_counter()
    infos = [c.publish("bench/paho", p, qos=1) for p in payloads]
    rate = finish(sub, n, t0)
    infos[-1].wait_for_publish(10)
    c.disconnect()
    c.loop_stop()
    return rate


def bench_sink(broker: Broker, n: int, folder: Path, **mqtt) -> float:
    """publish() -> queue -> sender -> broker -> a separate subscriber."""
    tag = "-".join(f"{k}{v}" for k, v in mqtt.items())
    device = f"bench{tag}".replace("_", "")
    sink = MqttSink(device, MqttConfig(host="127.0.0.1", port=broker.port, **mqtt),
                    EventQueue(folder / f"{device}.db", max_events=10 * n))
    deadline = time.monotonic() + 10
    while not sink.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    sub = subscriber(broker, f"fer-edge/{device}/events", n)
    events = [demo_event(k) for k in range(n)]
    t0 = time.perf_counter()
    for ev in events:
        sink.publish(ev)
    rate = finish(sub, n, t0)
    sink.close()
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5000, help="events per row")
    args = ap.parse_args()
    n = args.events
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, Broker(persistence=False) as broker:
        folder = Path(tmp)
        rows.append(("queue append, 1 event per commit", bench_append(n, 1, folder)))
        rows.append(("queue append, 50 events per commit", bench_append(n, 50, folder)))
        base = bench_paho(broker, n)
        rows.append(("paho alone, QoS 1, no queue (baseline)", base))
        for window in (1, 20, 100):
            rows.append((f"fer-edge QoS 1, max_inflight={window}", bench_sink(broker, n, folder, max_inflight=window)))
        rows.append(("fer-edge QoS 0, max_inflight=20", bench_sink(broker, n, folder, qos=0)))
    print(f"\n{n} events per row, loopback mosquitto, ratio = row / paho baseline (same run)\n")
    print(f"| {'path':<42} | {'events/s':>9} | {'ratio':>6} |")
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 8}|")
    for name, rate in rows:
        print(f"| {name:<42} | {rate:>9.0f} | {rate / base:>6.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
