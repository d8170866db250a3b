"""Benchmark: the dashboard with 50 simulated devices at their default rates, through a real mosquitto.

    nice -n 5 python bench/dashboard.py [--devices 50] [--minutes 10] [--sample-s 30]

What runs: mosquitto on loopback (tests/helpers/broker.py), N simulated devices (bench/devices.py:
the real MqttSink with its SQLite queue; stats and summaries every 60 s, 6 faces per minute per
camera), the real `fer-edge dashboard` process, and its page in a real headless Chromium
(fleet view, as on a kiosk).

Message-to-screen latency: every event carries `epoch`, the time it was created on the device.
The page records, for each live event, the time of the animation frame that drew it minus that
epoch (window.ferDash.latency): queue + broker + dashboard server + server-sent event + render.
Baseline in the same run: a plain paho subscriber on the same broker, measuring creation ->
on_message the same way (what any MQTT consumer gets); the ratio column compares with it.

Page memory: Chromium's JS heap (CDP Performance.getMetrics JSHeapUsedSize, after a forced
garbage collection) and DOM node count, sampled every --sample-s; the dashboard server's RSS too.
A page whose memory is bounded shows a flat line after the first minutes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.devices import Rates, SimFleet  # noqa: E402
from edge.config.mqtt import MqttConfig  # noqa: E402
from tests.helpers.broker import Broker, free_port  # noqa: E402
from tests.helpers.browser import browser_problem, chrome, wait_until  # noqa: E402

TAKE_LATENCY = "const d = window.ferDash; const l = d.latency.splice(0); d.latencyNext = 0; return l;"


class BaselineSubscriber:
    """paho on the same broker: creation (event epoch) -> on_message, in ms."""

    def __init__(self, broker: Broker, prefix: str) -> None:
        self.latency: list[float] = []
        self.measuring = False
        self._lock = threading.Lock()
        self.client = broker.client()
        self.client.on_connect = lambda c, *a: c.subscribe(f"{prefix}/+/events", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        now = time.time()
        if self.measuring:
            epoch = json.loads(msg.payload)["epoch"]
            with self._lock:
                self.latency.append((now - epoch) * 1000.0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def page_memory(driver) -> dict[str, float]:
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    shown = driver.execute_script("return document.getElementsByTagName('*').length")
    return {"heap_mb": metrics["JSHeapUsedSize"] / 2**20, "nodes": metrics["Nodes"], "elements": shown}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--minutes", type=float, default=10.0, help="how long the page stays open (memory after N min)")
    p.add_argument("--sample-s", type=float, default=30.0, help="seconds between memory samples")
    p.add_argument("--warmup-s", type=float, default=10.0, help="latency is not counted during the first seconds")
    p.add_argument("--scale", type=float, default=1.0,
                   help="rates x this: faces per minute x K, stats and summaries every 60/K s (at least 1 s); "
                        "K=60 fills the page's bounds within minutes (a stress run, not a realistic fleet)")
    args = p.parse_args(argv)
    if (why := browser_problem()):
        print(f"bench/dashboard.py: {why}", file=sys.stderr)
        return 2
    prefix = "fer-edge"
    with Broker(persistence=False) as broker:
        mqtt = MqttConfig(**broker.mqtt_config(prefix=prefix))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "edge.cli", "dashboard", "--broker", f"127.0.0.1:{broker.port}",
                                   "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        baseline = BaselineSubscriber(broker, prefix)
        rates = Rates(faces_per_min=Rates.faces_per_min * args.scale, stats_interval_s=max(1.0, 60 / args.scale),
                      summary_interval_s=max(1.0, 60 / args.scale))
        fleet = SimFleet(mqtt, args.devices, rates).start()
        samples: list[dict[str, float]] = []
        page_lat: list[float] = []
        try:
            with chrome() as driver:
                driver.execute_cdp_cmd("Performance.enable", {})
                url = f"http://127.0.0.1:{port}/"
                wait_until(lambda: urllib.request.urlopen(url + "healthz", timeout=2).status == 200, 20, "the server")
                driver.get(url)
                wait_until(lambda: driver.execute_script("return window.ferDash.devices.size") >= args.devices, 60,
                           f"{args.devices} devices on the page")
                time.sleep(args.warmup_s)
                driver.execute_script(TAKE_LATENCY)
                baseline.measuring = True
                t0 = time.monotonic()
                end = t0 + args.minutes * 60
                server_ps = psutil.Process(server.pid)
                while True:
                    now = time.monotonic()
                    page_lat += driver.execute_script(TAKE_LATENCY)
                    mem = page_memory(driver)
                    samples.append({"min": (now - t0) / 60, **mem, "rss_mb": server_ps.memory_info().rss / 2**20,
                                    "received": driver.execute_script("return window.ferDash.received"),
                                    "published": fleet.published})
                    if now >= end:
                        break
                    time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                shown = driver.execute_script("return window.ferDash.devices.size")
        finally:
            baseline.measuring = False
            fleet.close()
            baseline.close()
            server.terminate()
            server.wait(10)
    base = baseline.latency
    print(f"\n{args.devices} simulated devices (bench/devices.py, rates x {args.scale:g}: stats and summaries every "
          f"{rates.summary_interval_s:g} s, {rates.faces_per_min:g} faces/min per camera), {args.minutes:g} min, "
          f"{fleet.published} events published, {shown} devices on the page\n")
    print("| path | events | p50 ms | p95 ms | max ms | p50 ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    b50 = pct(base, 0.5)
    for name, lat in (("MQTT subscriber, paho (baseline)", base), ("dashboard page: server + SSE + render", page_lat)):
        print(f"| {name} | {len(lat)} | {pct(lat, 0.5):.1f} | {pct(lat, 0.95):.1f} | {max(lat, default=float('nan')):.1f} "
              f"| {pct(lat, 0.5) / b50:.2f} |")
    print("\n| minute | page JS heap MB | DOM nodes (CDP, incl. detached) | elements shown | server RSS MB "
          "| updates received by the page |")
    print("|---:|---:|---:|---:|---:|---:|")
    for s in samples:
        print(f"| {s['min']:.1f} | {s['heap_mb']:.2f} | {s['nodes']:.0f} | {s['elements']} | {s['rss_mb']:.1f} "
              f"| {s['received']:.0f} |")
    first, last = samples[0], samples[-1]
    half = samples[len(samples) // 2:]
    slope = ((half[-1]["heap_mb"] - half[0]["heap_mb"]) / (half[-1]["min"] - half[0]["min"])
             if len(half) > 1 and half[-1]["min"] > half[0]["min"] else float("nan"))
    print(f"\nJS heap after {last['min']:.1f} min: {last['heap_mb']:.2f} MB, {last['heap_mb'] / first['heap_mb']:.2f} x "
          f"the first sample; over the later half it changed by {slope:+.3f} MB per minute "
          f"(mean {statistics.mean(s['heap_mb'] for s in half):.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
