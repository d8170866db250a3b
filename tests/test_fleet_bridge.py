"""A bridged deployment: device on a site mosquitto, bridged to a central one; cut the link 10 s, lose nothing.

    device (MqttSink, QoS 1) -> site broker  ==bridge==>  relay (cuttable)  ->  central broker
                                                                               ^- subscriber, fer-edge fleet list

The link is cut by a TCP relay between the brokers (both brokers keep running, as in a WAN outage):
every connection through it is closed and new ones refused for 10 s. The site broker queues the
bridge's QoS 1 messages meanwhile (bridge cleansession false) and forwards them when it reconnects.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO  # noqa: E402
from tests.helpers.broker import HOST, Broker, free_port, mosquitto_available  # noqa: E402

from edge.config.mqtt import MqttConfig  # noqa: E402
from edge.publish.mqtt import MqttSink  # noqa: E402
from edge.publish.queue import EventQueue  # noqa: E402

pytestmark = [pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto"),
              pytest.mark.slow]
PREFIX = "fer-edge"
CUT_S = 10.0


class Relay:
    """A TCP relay 127.0.0.1:port -> target that can be cut (connections closed, new ones refused)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server((HOST, self.port))
        self.listener.settimeout(0.2)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            if self.cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self.cut.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def cut_link(self) -> None:
        self.cut.set()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets.clear()

    def restore(self) -> None:
        self.cut.clear()

    def close(self) -> None:
        self.closed = True
        self.cut_link()
        self.listener.close()


class SiteBroker(Broker):
    """A mosquitto whose config bridges the fleet's topics (both ways, QoS 1) to ``central_port``."""

    def __init__(self, central_port: int) -> None:
        self.central_port = central_port
        super().__init__(persistence=False)

    def _write_config(self) -> None:
        super()._write_config()
        bridge = [f"connection central-{self.port}", f"address {HOST}:{self.central_port}",
                  f"topic {PREFIX}/# both 1", "cleansession false", "restart_timeout 1 2",
                  "keepalive_interval 5", "try_private true", f"remote_clientid site-{self.port}"]
        conf = self.dir / "mosquitto.conf"
        conf.write_text(conf.read_text() + "\n".join(bridge) + "\n")


def _bridge_connected(site: Broker, central: Broker, timeout: float = 15.0) -> bool:
    """True once a message published on the site broker arrives on the central one."""
    probe = central.subscribe_collect(f"{PREFIX}/probe", persistent=False)
    pub = site.client()
    pub.connect(HOST, site.port)
    pub.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pub.publish(f"{PREFIX}/probe", b"x", qos=1)
            if probe.wait_for(1, timeout=0.5):
                return True
        return False
    finally:
        pub.loop_stop()
        pub.disconnect()
        probe.close()


def test_bridge_outage_of_10_s_loses_nothing(tmp_path):
    with Broker(persistence=False) as central:
        relay = Relay(central.port)
        site = SiteBroker(relay.port).start()
        try:
            assert _bridge_connected(site, central), "the bridge never connected:\n" + site.log_text()[-2000:]
            events = central.subscribe_collect(f"{PREFIX}/+/events")          # persistent session, QoS 1
            sink = MqttSink("site-cam-1", MqttConfig(**site.mqtt_config(prefix=PREFIX)),
                            EventQueue(tmp_path / "queue.db"))
            _events_for(sink, 3.0)                           # before the cut
            relay.cut_link()
            cut_at = time.monotonic()
            during = _events_for(sink, CUT_S)                # the device keeps publishing to its site broker
            assert time.monotonic() - cut_at >= CUT_S
            relay.restore()
            _events_for(sink, 3.0)                           # after
            total = sink.queue.last_seq
            assert events.wait_for(lambda m: len({json.loads(x.payload)["seq"] for x in m}) >= total, timeout=60), \
                f"central got {len(events.messages)} of {total} events:\n" + site.log_text()[-2000:]
            seqs = sorted({e["seq"] for e in events.json()})
            assert seqs == list(range(1, total + 1)), "a seq gap: events lost across the bridge outage"
            assert during > 50, "too few events were published during the cut to show anything"
            assert "central" in site.log_text()                 # the bridge really went down and came back

            out = subprocess.run([sys.executable, "-m", "edge.ops.fleet.command", "--port", str(central.port),
                                  "--prefix", PREFIX, "list", "--json"], cwd=REPO, capture_output=True,
                                 text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            rows = {r["device"]: r for r in json.loads(out.stdout)}
            assert rows["site-cam-1"]["online"] is True, rows
            sink.close(2.0)
        finally:
            site.close()
            relay.close()


def _events_for(sink: MqttSink, seconds: float, rate_hz: float = 20.0) -> int:
    """Publish events at ``rate_hz`` for ``seconds``; return how many."""
    from edge.events import Event

    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sink.publish(Event("face_appeared", "cam0", time.time(), track_id=n, label="neutral", score=0.9,
                           box=(1.0, 2.0, 30.0, 30.0)))
        n += 1
        time.sleep(1.0 / rate_hz)
    return n
