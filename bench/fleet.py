"""Benchmark: N simulated devices against one mosquitto on loopback, until something gives.

    nice -n 5 python bench/fleet.py [--seconds 20] [--steps 200:6,200:60,500:6,1000:6,1000:30,2000:6]

Each device is the real publishing half of ``fer-edge run`` (bench/devices.py, shared with the
dashboard benchmark): MqttSink with its own paho client, sender thread and SQLite queue, plus the
fleet config code (edge/control/messages.py: signature, serial, layers, validation) answering a group
config push on the retained ``config/state``. No camera pipeline. A step N:F is N devices whose
cameras see F new faces per minute (6: bench/devices.py's busy shop entrance at the config's
default summary and stats intervals; each face gives face_appeared, emotion changes, face_left):

  offered      events/s the simulator asked the devices to publish
  delivered    events/s a separate subscriber (mosquitto_sub, QoS 1) received, first event to last
  ratio        delivered / offered, measured in the same step (1.00: the broker kept up)
  lost         events missing by seq (each device's 1..last seq against what the subscriber got)
  dup          events received twice (at-least-once re-sends; same id)
  broker CPU   mosquitto's CPU time / wall time over the step (100 % = one core), and its peak RSS
  push->all    a signed group config push (fer-edge fleet's own code) until every device answered
  apply ms     CPU time one device spent on it (signature, serial, merge, validation, answer): mean / max;
               a real device spends it on its own CPU, here all devices share the machine's cores, which
               is why push->all grows with N here
  sim pass     the simulator's slowest pass over all devices (tick 0.1 s; it shares the cores with the broker)

"Something gives" when lost > 0, ratio < 0.95, a push is not acknowledged by every device, or
devices cannot connect; the step is marked and the run stops there. A simulator that cannot keep
its schedule is noted (its offered rate is then lower than nominal) but does not stop the run. The machine's cores are shared
with the simulator itself, so the table says where *this* set-up gives, and which side gave.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import psutil  # noqa: E402

from tests.helpers.broker import Broker  # noqa: E402
from devices import Rates, SimDevice, SimFleet  # noqa: E402
from edge.config import ConfigError, Document, validate_document  # noqa: E402
from edge.config.mqtt import MqttConfig  # noqa: E402
from edge.control.messages import Duplicate, FleetConfig, state_payload  # noqa: E402
from edge.control.layers import LayerStore  # noqa: E402
from edge.ops.fleet.operator import Broker as FleetBroker, Connection, Fleet  # noqa: E402
from edge.ops.fleet.push import send_and_wait, sign_body  # noqa: E402
from edge.formatting import one_line  # noqa: E402
from edge.control.signing import ReplayGuard  # noqa: E402

SECRET = "bench-fleet-secret"
PREFIX = "fer-edge"


class RemoteConfigAgent:
    """The remote-config half of a device on a SimDevice: group + device topics -> FleetConfig -> config/state.

    The service hands each message to its main loop; here the work (signature, serial, merge,
    validation) runs in the device's paho thread, which is the same code and cost.
    """

    def __init__(self, dev: SimDevice, folder: Path, groups: list[str]) -> None:
        self.dev, self.groups = dev, groups
        doc = {"device": {"id": dev.id, "groups": groups},
               "service": {"remote_config": {"enabled": True, "require_signature": True}}}
        self.base = self.loaded = validate_document(Document(doc, {}, f"{dev.id}.yaml"), ENV)
        self.fleet = FleetConfig(folder / f"{dev.id}.yaml", LayerStore(folder / f"{dev.id}-layers.json"), dev.id,
                                 ReplayGuard(folder / f"{dev.id}-serials.json"))
        self.lock = threading.Lock()
        self.apply_ms: list[float] = []       # CPU ms from a message's receipt to its answer being queued
        self._state(None, None, None)
        for topic, layer in self.fleet.topics(PREFIX, dev.id, groups).items():
            dev.sink.subscribe_topic(topic, lambda payload, layer=layer: self.on_message(layer, payload))

    def on_message(self, layer: str, payload: bytes) -> None:
        t0 = time.thread_time()      # CPU of this thread: what a device with its own CPU would spend
        try:
            self._handle(layer, payload)
        finally:
            self.apply_ms.append(1000 * (time.thread_time() - t0))

    def _handle(self, layer: str, payload: bytes) -> None:
        with self.lock:
            try:
                prepared = self.fleet.prepare(layer, payload, self.base, self.loaded.config.service.remote_config, ENV)
            except Duplicate as dup:
                self._state(None, layer, dup.signed.serial, "duplicate")
                return
            except ConfigError as exc:
                self._state(one_line(exc), layer, getattr(exc, "serial", None), "rejected")
                return
            self.fleet.commit(prepared)
            self.loaded = prepared.loaded
            self._state(None, layer, prepared.serial, "applied")

    def _state(self, error: str | None, layer: str | None, serial: int | None, status: str | None = None) -> None:
        self.dev.sink.publish_retained("config/state", state_payload(
            self.loaded.version, error, serial=serial, origin=layer, groups=self.groups, require_signature=True,
            status=status))


ENV = {"FER_EDGE_CONFIG_SECRET": SECRET}


@dataclass
class Row:
    devices: int
    rate: float
    offered: float = 0.0
    delivered: float = 0.0
    lost: int = 0
    dup: int = 0
    broker_cpu: float = 0.0
    broker_rss_mb: float = 0.0
    push_s: float | None = None
    push_ok: int = 0
    sim_late_s: float = 0.0
    connected: int = 0
    gave: str = ""
    note: str = ""
    apply_ms: tuple[float, float] = (0.0, 0.0)    # one device's handling of the push: mean, max

    @property
    def ratio(self) -> float:
        return self.delivered / self.offered if self.offered else 0.0


class BrokerProbe:
    """Samples mosquitto's CPU time and RSS once a second (psutil)."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._cpu0 = sum(self.proc.cpu_times()[:2])
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)

    def stop(self) -> tuple[float, float]:
        """(CPU % of one core, peak RSS MB) since start."""
        self._stop.set()
        self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
        cpu = (sum(self.proc.cpu_times()[:2]) - self._cpu0) / (time.monotonic() - self._t0)
        return 100.0 * cpu, self.peak_rss / 1e6


def subscriber(port: int, out: Path) -> subprocess.Popen:
    """mosquitto_sub (C, its own process) writing every event payload to ``out``; returns once subscribed."""
    p = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", f"{PREFIX}/+/events",
                          "-q", "1", "-i", f"bench-fleet-sub-{os.getpid()}-{time.monotonic_ns()}"],
                         stdout=open(out, "wb"))
    time.sleep(0.5)
    return p


def count_events(path: Path, last_seq: dict[str, int]) -> tuple[int, int, int]:
    """(distinct events received, lost by seq, duplicates by id)."""
    seen: dict[str, set[int]] = {}
    ids: set[str] = set()
    dup = 0
    for line in path.read_bytes().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev["id"] in ids:
            dup += 1
            continue
        ids.add(ev["id"])
        seen.setdefault(ev["device"], set()).add(ev["seq"])
    lost = sum(len(set(range(1, last + 1)) - seen.get(dev, set())) for dev, last in last_seq.items())
    return len(ids), lost, dup


def group_push(port: int, devices: list[str], timeout: float) -> tuple[float | None, int]:
    """Push a signed change to group 'all' with fer-edge fleet's code; (seconds until all answered, how many did)."""
    with Connection(FleetBroker("127.0.0.1", port, PREFIX)) as conn:
        fleet = Fleet(conn)
        fleet.wait(lambda: len(fleet.devices) >= len(devices), 30)
        body = f"tracking:\n  ema_half_life_s: {0.3 + (time.time_ns() % 1000) / 10000:.4f}\n".encode()
        payload, serial = sign_body(body, SECRET, "group/all")
        answers = send_and_wait(fleet, f"{PREFIX}/group/all/config/set", payload, devices, serial, timeout)
        ok = sum(a.took_it for a in answers)
        slowest = max((a.after_s for a in answers if a.after_s is not None), default=None)
        return (slowest if ok == len(devices) else None), ok


PER_WORKER = 100      # paho's loop uses select(): one process cannot hold sockets past fd 1024 (~145 devices)


def step(n: int, faces_per_min: float, seconds: float, folder: Path) -> Row:
    """One row: N devices in worker processes, events for ``seconds`` with a group push in the middle."""
    row = Row(n, faces_per_min)
    with Broker(persistence=False) as broker:
        events_file = folder / f"events-{n}-{faces_per_min}.jsonl"
        sub = subscriber(broker.port, events_file)
        sizes = [min(PER_WORKER, n - k) for k in range(0, n, PER_WORKER)]
        workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(w), str(size), str(faces_per_min),
                                     str(seconds), str(broker.port), str(folder / f"q-{n}-{faces_per_min}-{w}")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                   for w, size in enumerate(sizes)]
        try:
            row.connected = sum(_read(w)["connected"] for w in workers)
            if row.connected < n:
                row.gave = f"only {row.connected} of {n} devices connected"
                return row
            ids = [f"w{w:02d}-{i:03d}" for w, size in enumerate(sizes) for i in range(size)]
            probe = BrokerProbe(broker.proc.pid)
            result: dict[str, tuple] = {}
            pusher = threading.Thread(target=lambda: (time.sleep(seconds / 2),
                                                      result.update(push=group_push(broker.port, ids, 60))))
            t0 = time.monotonic()
            for w in workers:
                w.stdin.write("go\n")
                w.stdin.flush()
            pusher.start()
            ran = [_read(w) for w in workers]
            offered_s = time.monotonic() - t0
            emitted = sum(r["emitted"] for r in ran)
            row.sim_late_s = max(r["pass_s"] for r in ran)
            drained = [_read(w) for w in workers]      # each worker waits (60 s at most) until its queues are empty
            drained_s = time.monotonic() - t0
            pusher.join()
            row.broker_cpu, row.broker_rss_mb = probe.stop()
            time.sleep(1.5)                           # the subscriber writes what it got
            row.offered = emitted / offered_s
            last = {dev: seq for d in drained for dev, seq in d["last_seq"].items()}
            got, row.lost, row.dup = count_events(events_file, last)
            row.delivered = got / drained_s
            row.push_s, row.push_ok = result.get("push", (None, 0))
            apply_ms = sorted(ms for d in drained for ms in d["apply_ms"])
            row.apply_ms = (sum(apply_ms) / len(apply_ms), apply_ms[-1]) if apply_ms else (0.0, 0.0)
            queued = sum(d["queued"] for d in drained)
            if queued:
                row.gave = f"{queued} events still queued 60 s after the end"
            elif row.lost:
                row.gave = f"{row.lost} lost"
            elif row.push_s is None:
                row.gave = f"push acknowledged by {row.push_ok} of {n}"
            elif row.ratio < 0.95:
                row.gave = f"delivered only {row.ratio:.0%} of offered"
            if row.sim_late_s > 1.0:      # noted, not a stop: 'offered' is what the simulator managed
                row.note = f"simulator saturated (a pass took {row.sim_late_s:.1f} s)"
        finally:
            for w in workers:
                try:
                    w.stdin.close()
                except OSError:
                    pass
            for w in workers:
                try:
                    w.wait(30)
                except subprocess.TimeoutExpired:
                    w.kill()
            sub.terminate()
            sub.wait()
    return row


def _read(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a simulator worker exited ({proc.poll()})")
    return json.loads(line)


def worker(index: int, n: int, faces_per_min: float, seconds: float, port: int, folder: Path) -> int:
    """One simulator process: ``n`` devices; talks to the parent by JSON lines on stdout, 'go' on stdin."""
    folder.mkdir(parents=True, exist_ok=True)
    mqtt = MqttConfig(host="127.0.0.1", port=port, prefix=PREFIX, reconnect_min_s=0.2, reconnect_max_s=2.0)
    agents: list[RemoteConfigAgent] = []
    fleet = SimFleet(mqtt, n, Rates(faces_per_min=faces_per_min), id_format=f"w{index:02d}-{{:03d}}", folder=folder,
                     seed=index + 1, on_device=lambda d: agents.append(
                         RemoteConfigAgent(d, folder, ["all", f"shop{len(agents) % 10}"])))
    try:
        print(json.dumps({"connected": _wait_connected(fleet, 120)}), flush=True)
        if sys.stdin.readline().strip() != "go":
            return 0
        published0 = fleet.published
        pass_s = _drive(fleet, seconds)
        print(json.dumps({"emitted": fleet.published - published0, "pass_s": pass_s}), flush=True)
        deadline = time.monotonic() + 60
        while sum(d.sink.queue.depth for d in fleet.devices) and time.monotonic() < deadline:
            time.sleep(0.2)
        print(json.dumps({"last_seq": {d.id: d.sink.queue.last_seq for d in fleet.devices},
                          "queued": sum(d.sink.queue.depth for d in fleet.devices),
                          "apply_ms": [ms for a in agents for ms in a.apply_ms]}), flush=True)
        sys.stdin.readline()                  # until the parent is done (push answers come from these devices)
    finally:
        fleet.close()
    return 0


def _wait_connected(fleet: SimFleet, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(d.sink.connected for d in fleet.devices):
        time.sleep(0.1)
    return sum(d.sink.connected for d in fleet.devices)


def _drive(fleet: SimFleet, seconds: float) -> float:
    """Step every device each tick for ``seconds`` (as SimFleet's thread does); return the slowest pass in s.

    A pass slower than the tick means the simulator, not the broker, is short of CPU.
    """
    worst, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        now = time.time()
        for dev in fleet.devices:
            dev.step(now)
        took = time.monotonic() - t
        worst = max(worst, took)
        time.sleep(max(0.0, fleet.tick_s - took))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="event phase per step")
    ap.add_argument("--steps", default="200:6,200:60,500:6,1000:6,1000:30,2000:6",
                    help="N:new-faces-per-minute-per-device, comma separated, run until one gives")
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        w, n, faces, seconds, port, folder = args.worker
        return worker(int(w), int(n), float(faces), float(seconds), int(port), Path(folder))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))     # ~5 files per simulated device
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.steps.split(","):
            n, rate = spec.split(":")
            row = step(int(n), float(rate), args.seconds, Path(tmp))
            rows.append(row)
            print(_line(row), flush=True)
            if row.gave:
                break
    print(f"\nfleet simulation: one mosquitto on loopback, {args.seconds:g} s of events per step, "
          f"{psutil.cpu_count()} cores shared by simulator and broker; ratio = delivered / offered (same step)\n")
    print(HEADER)
    print("|" + "|".join("---" for _ in HEADER.strip("|").split("|")) + "|")
    for row in rows:
        print(_line(row))
    return 0


HEADER = ("| devices | faces/min/device | offered ev/s | delivered ev/s | ratio | lost | dup | broker CPU | broker RSS MB "
          "| push->all s | pushed ok | device CPU ms/push mean/max | sim pass s | gave |")


def _line(r: Row) -> str:
    push = f"{r.push_s:.2f}" if r.push_s is not None else "-"
    return (f"| {r.devices} | {r.rate:g} | {r.offered:.0f} | {r.delivered:.0f} | {r.ratio:.2f} | {r.lost} | {r.dup} "
            f"| {r.broker_cpu:.0f} % | {r.broker_rss_mb:.1f} | {push} | {r.push_ok}/{r.devices} | {r.apply_ms[0]:.0f}/{r.apply_ms[1]:.0f} | {r.sim_late_s:.2f} "
            f"| {r.gave or r.note or '-'} |")


if __name__ == "__main__":
    sys.exit(main())
