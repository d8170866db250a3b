"""Issue 25.6: what the dashboard answers - Host names, a login beyond loopback, idle streams, dropped clients.

A real `fer-edge dashboard` process against a real mosquitto, spoken to over real sockets.
"""
from __future__ import annotations

import base64
import http.client
import socket
import struct
import time
from pathlib import Path

import pytest

from conftest_dashboard import DashboardProcess, Stream, get  # noqa: E402
from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed (apt install mosquitto)")

TOKEN = "correct-horse-battery-staple-42"


def request(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture
def broker():
    with Broker() as b:
        yield b


def start(broker: Broker, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> DashboardProcess:
    return DashboardProcess("--broker", f"127.0.0.1:{broker.port}", "--no-history", *args, env=env,
                            log_dir=tmp_path)


def test_only_expected_host_names_are_served(broker, tmp_path):
    dash = start(broker, tmp_path).wait_ready()
    try:
        port = dash.port
        for path in ("/api/fleet", "/", "/events", "/app.js"):
            code, _, body = request(port, path, {"Host": "attacker.example"})
            assert code == 421, (path, code, body[:200])
            assert b"--allow-host" in body
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
            assert request(port, "/api/fleet", {"Host": host})[0] == 200, host
        assert request(port, "/api/fleet", {"Host": "192.168.1.10"})[0] == 421, "loopback bind: no LAN names"
    finally:
        dash.close()
    other = start(broker, tmp_path, "--allow-host", "dash.example.lan").wait_ready()
    try:
        assert request(other.port, "/api/fleet", {"Host": f"dash.example.lan:{other.port}"})[0] == 200
        assert request(other.port, "/api/fleet", {"Host": "dash.example.lan.attacker.example"})[0] == 421
    finally:
        other.close()


def test_page_and_api_stay_reachable_with_64_idle_streams_open(broker, tmp_path):
    dash = start(broker, tmp_path).wait_ready()
    idle: list[socket.socket] = []
    try:
        for _ in range(64):        # connect, ask for the stream, never read a byte
            s = socket.create_connection(("127.0.0.1", dash.port), timeout=5)
            s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            idle.append(s)
        time.sleep(0.5)
        assert get(dash.url)[0] == 200
        assert get(dash.url + "api/fleet")[0] == 200
        stream = Stream(dash.url)
        assert stream.resp.status == 200, "a new page's stream must get a slot"
        assert "devices" in stream.next()
        stream.close()
    finally:
        for s in idle:
            s.close()
        code = dash.close()
    assert code == 0
    assert "Traceback" not in dash.log.read_text(), dash.log.read_text()[-3000:]


def test_dropped_clients_leave_no_traceback(broker, tmp_path):
    dash = start(broker, tmp_path).wait_ready()
    try:
        for partial in (b"GET /api/fl", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", b""):
            s = socket.create_connection(("127.0.0.1", dash.port), timeout=5)
            s.sendall(partial)
            time.sleep(0.1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # close with RST
            s.close()
        for _ in range(5):          # ask for the page and reset before reading it
            s = socket.create_connection(("127.0.0.1", dash.port), timeout=5)
            s.sendall(b"GET /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(0.5)
        assert get(dash.url + "healthz")[0] == 200
    finally:
        dash.close()
    out = dash.log.read_text()
    assert "Traceback" not in out and "ConnectionResetError" not in out, out[-3000:]


def test_beyond_loopback_a_login_is_required(broker, tmp_path):
    # no token: refused at start with one line saying what to do
    dash = start(broker, tmp_path, "--bind", "0.0.0.0")
    assert dash.proc.wait(20) == 2
    out = dash.output().strip()
    assert len(out.splitlines()) == 1 and "--token-file" in out and "--no-auth" in out, out
    dash.close()
    out = dash.log.read_text()

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    dash = start(broker, tmp_path, "--bind", "0.0.0.0", "--token-file", str(token_file))
    try:
        deadline = time.monotonic() + 20
        while request_ok(dash.port) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        port = dash.port
        code, headers, _ = request(port, "/api/fleet", {"Host": f"127.0.0.1:{port}"})
        assert code == 401 and headers["WWW-Authenticate"].startswith("Basic")
        basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
        assert request(port, "/api/fleet", {"Host": f"127.0.0.1:{port}", "Authorization": f"Basic {basic}"})[0] == 200
        assert request(port, "/", {"Host": "192.168.1.10", "Authorization": f"Bearer {TOKEN}"})[0] == 200
        wrong = base64.b64encode(b"anyone:not-the-token-at-all").decode()
        assert request(port, "/events", {"Host": "127.0.0.1", "Authorization": f"Basic {wrong}"})[0] == 401
        assert request(port, "/api/fleet", {"Host": "attacker.example", "Authorization": f"Bearer {TOKEN}"})[0] == 421
    finally:
        dash.close()
    assert TOKEN not in dash.log.read_text() and "not-the-token" not in dash.log.read_text()

    # the same token from the environment; --no-auth only by choice, and said loudly
    dash = start(broker, tmp_path, "--bind", "0.0.0.0", env={"FER_EDGE_DASHBOARD_TOKEN": TOKEN})
    try:
        deadline = time.monotonic() + 20
        while request_ok(dash.port) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert request(dash.port, "/api/fleet", {"Host": "127.0.0.1", "Authorization": f"Bearer {TOKEN}"})[0] == 200
    finally:
        dash.close()
    dash = start(broker, tmp_path, "--bind", "0.0.0.0", "--no-auth").wait_ready()
    try:
        assert request(dash.port, "/api/fleet", {"Host": "127.0.0.1"})[0] == 200
    finally:
        dash.close()
    assert "WITHOUT a login" in dash.log.read_text()


def request_ok(port: int) -> int | None:
    try:
        return request(port, "/healthz", {"Host": "127.0.0.1"})[0]
    except OSError:
        return None
