"""`fer-edge dashboard` as a process against a real mosquitto: page, event stream, de-dup, broker restart, auth, TLS,
and the command line's one-line errors."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from conftest import REPO  # noqa: E402
from conftest_dashboard import DashboardProcess, Stream, get  # noqa: E402
from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402

from edge.ops.dashboard.server import Subscriber  # noqa: E402

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed (apt install mosquitto)")


def publisher(broker: Broker):
    c = broker.client()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def status(device: str, state: str) -> str:
    return json.dumps({"v": 1, "state": state, "device": device, "version": "0.1.0",
                       "ts": "2025-12-01T10:00:00.000Z", "epoch": time.time()})


def event(device: str, event_id: str, seq: int) -> str:
    return json.dumps({"v": 1, "id": event_id, "seq": seq, "device": device, "camera": "cam0", "type": "face_appeared",
                       "ts": "2025-12-01T10:00:00.000Z", "epoch": time.time(), "track_id": seq, "label": "neutral",
                       "score": 0.7, "scores": {"neutral": 0.7}, "box": [0, 0, 10, 10]})


def wait_connected(dash: DashboardProcess, timeout: float = 15.0, connected: bool = True) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        broker = dash.fleet()["broker"]
        if broker["connected"] == connected:
            return broker
        time.sleep(0.1)
    raise AssertionError(f"broker connected={connected} not reached: {dash.fleet()['broker']}; {dash.output()[-1500:]}")


def test_page_is_self_contained_and_serves_nothing_outside_its_folder(tmp_path):
    with Broker() as broker:
        dash = DashboardProcess("--broker", f"127.0.0.1:{broker.port}", log_dir=tmp_path).wait_ready()
        try:
            code, headers, body = get(dash.url)
            assert code == 200 and headers["Content-Type"].startswith("text/html")
            assert "default-src 'self'" in headers["Content-Security-Policy"]
            for name in (b"app.js", b"views.js", b"chart.js", b"style.css"):
                assert name in body
                assert get(dash.url + name.decode())[0] == 200
            assert b"http" not in body.lower().replace(b'http-equiv', b'')     # nothing from a CDN
            for bad in ("../command.py", "..%2Fcommand.py", "static/../model.py", ".hidden.js", "model.py"):
                assert get(dash.url + bad)[0] == 404, bad
        finally:
            assert dash.close() == 0


@pytest.mark.slow
def test_stream_sends_a_snapshot_then_each_change_once(tmp_path):
    with Broker() as broker:
        pub = publisher(broker)
        pub.publish("fer-edge/early/status", status("early", "online"), qos=1, retain=True).wait_for_publish(5)
        dash = DashboardProcess("--broker", f"127.0.0.1:{broker.port}", log_dir=tmp_path).wait_ready()
        try:
            wait_connected(dash)
            stream = Stream(dash.url)
            snap = stream.next()
            assert snap["t"] == "snapshot" and snap["broker"]["connected"]
            assert [d["id"] for d in snap["devices"]] == ["early"]          # retained: seen at once
            a, b = str(uuid.uuid4()), str(uuid.uuid4())
            for payload in (event("cam1", a, 1), event("cam1", a, 1), event("cam1", b, 2)):   # a re-delivery of a
                pub.publish("fer-edge/cam1/events", payload, qos=1).wait_for_publish(5)
            ids = [stream.until(lambda m: m["t"] == "event")["data"]["id"] for _ in range(2)]
            assert ids == [a, b]
            assert dash.fleet()["counters"]["duplicates"] == 1
            pub.publish("fer-edge/cam1/events", b"{broken", qos=1).wait_for_publish(5)
            pub.publish("fer-edge/cam1/status", status("cam1", "stopped"), qos=1, retain=True).wait_for_publish(5)
            assert stream.until(lambda m: m["t"] == "status")["data"]["state"] == "stopped"
            assert dash.fleet()["counters"]["rejected"] == {"not JSON": 1}
            assert "ignored a message: fer-edge/cam1/events: not JSON" in dash.output()
            stream.close()
        finally:
            pub.loop_stop()
            dash.close()


@pytest.mark.slow
def test_survives_a_broker_restart_and_says_so_meanwhile(tmp_path):
    with Broker() as broker:
        pub = publisher(broker)
        pub.publish("fer-edge/d1/status", status("d1", "online"), qos=1, retain=True).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()
        dash = DashboardProcess("--broker", f"127.0.0.1:{broker.port}", log_dir=tmp_path).wait_ready()
        try:
            wait_connected(dash)
            stream = Stream(dash.url, timeout=30)
            stream.next()
            broker.stop()
            lost = stream.until(lambda m: m["t"] == "broker")
            assert not lost["connected"] and "lost" in lost["error"]
            assert not dash.fleet()["broker"]["connected"]
            broker.start()
            back = stream.until(lambda m: m["t"] == "broker" and m["connected"])
            assert back["error"] is None
            # the retained messages come again on the new connection
            assert stream.until(lambda m: m["t"] == "status")["device"] == "d1"
            stream.close()
        finally:
            dash.close()


@pytest.mark.slow
def test_credentials_and_tls_as_a_device_uses_them(tmp_path):
    with Broker(tls=True, users={"dash": "s3cret"}) as broker:
        common = ("--broker", f"localhost:{broker.port}", "--ca-file", broker.ca_file, "--username", "dash")
        good = DashboardProcess(*common, env={"FER_EDGE_MQTT_PASSWORD": "s3cret"}, log_dir=tmp_path).wait_ready()
        bad = DashboardProcess(*common, env={"FER_EDGE_MQTT_PASSWORD": "wrong"}, log_dir=tmp_path).wait_ready()
        # the same through a device's config file: its mqtt section (password from the environment)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"device": {"id": "d1"}, "mqtt": {
            "host": "localhost", "port": broker.port, "username": "dash", "password": "${DASH_PW}",
            "tls": {"enabled": True, "ca_file": broker.ca_file}}}))
        from_file = DashboardProcess("--config", str(config), env={"DASH_PW": "s3cret"}, log_dir=tmp_path).wait_ready()
        try:
            assert wait_connected(from_file)["address"] == f"localhost:{broker.port}"
            from_file.close()
            assert wait_connected(good)["address"] == f"localhost:{broker.port}"
            deadline = time.monotonic() + 15
            while not (bad.fleet()["broker"]["error"] or "") and time.monotonic() < deadline:
                time.sleep(0.1)
            error = bad.fleet()["broker"]["error"]
            assert "refused" in error and "user name and password" in error, error
            assert "wrong" not in bad.output() and "s3cret" not in good.output()
        finally:
            for dash in (good, bad, from_file):
                dash.close()


@pytest.mark.parametrize("args, code, says", [
    ((), 2, "no broker: give --broker HOST[:PORT]"),
    (("--broker", "localhost:port"), 2, "--broker localhost:port: the port must be a number"),
    (("--broker", "127.0.0.1", "--ca-file", "/nonexistent/ca.crt"), 2, "mqtt.tls.ca_file: /nonexistent/ca.crt not found"),
    (("--broker", "127.0.0.1", "--prefix", "a/#"), 2, "mqtt.prefix:"),
    (("--config", "/nonexistent/config.yaml"), 2, "/nonexistent/config.yaml"),
])
def test_bad_command_lines_say_what_to_change_in_one_line(tmp_path, args, code, says):
    dash = DashboardProcess(*args, log_dir=tmp_path)
    assert dash.proc.wait(30) == code
    out = dash.output().strip()
    assert out.startswith("fer-edge dashboard: ") and says in out and len(out.splitlines()) == 1, out


def test_a_port_in_use_exits_3():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = subprocess.run([sys.executable, "-m", "edge.cli", "dashboard", "--broker", "127.0.0.1", "--port",
                            str(taken.getsockname()[1])], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "cannot listen on 127.0.0.1:" in r.stderr and "--port" in r.stderr, r.stderr


def test_a_page_that_falls_behind_is_dropped_not_buffered_forever():
    page = Subscriber(size=3)
    for k in range(3):
        page.put(str(k))
    assert page.take(0.1) == ["0", "1", "2"]
    for k in range(4):
        page.put(str(k))
    assert page.take(0.1) is None          # the page reconnects and starts again from a snapshot
