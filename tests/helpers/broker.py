"""A real mosquitto broker for tests and benchmarks: free loopback port, generated config, stop/start on the same port.

    from tests.helpers.broker import Broker    # the repository root is on sys.path (tests/helpers/__init__.py)

    with Broker() as b:                        # plain MQTT, anonymous, persistence on
        sub = b.subscribe_collect("fer-edge/+/events")   # subscribed (SUBACK seen) when it returns
        cfg = MqttConfig(**b.mqtt_config(prefix="fer-edge"))
        ...
        b.stop(); b.start()                    # outage: same port, sessions and queued messages kept
        sub.wait_for(lambda msgs: len(msgs) >= 10, timeout=5)
        sub.json()                             # payloads parsed as JSON

    with Broker(tls=True, users={"edge": "s3cret"}, client_certs=True) as b:
        b.ca_file, b.client_cert_file, b.client_key_file   # made by `openssl` for this broker only

Collectors use a persistent session (clean_session false, QoS 1), so a subscriber misses nothing
across a broker restart: that is the setup docs/mqtt.md recommends to dashboards. Everything lives
in a temporary directory removed on exit; ``b.log_text()`` returns mosquitto's log.
"""
from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HOST = "127.0.0.1"


def mosquitto_available() -> bool:
    """True when the mosquitto broker binary is installed (apt install mosquitto)."""
    return os.access(MOSQUITTO, os.X_OK)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _run(cmd: list[str], cwd: Path) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for localhost/127.0.0.1 and a client certificate (openssl CLI)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(["openssl", "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
          "-subj", "/CN=fer-edge test CA"], folder)
    (folder / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn, ext in (("server", "localhost", ["-extfile", "server.ext"]), ("client", "fer-edge-test-client", [])):
        _run(["openssl", "req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}"], folder)
        _run(["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *ext], folder)
    return {n: folder / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


@dataclass
class Message:
    """One message a collector received."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    received: float     # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.payload)


class Collector:
    """A subscriber that records every message on a topic filter (persistent session, reconnects by itself)."""

    def __init__(self, broker: "Broker", topic: str, qos: int = 1, persistent: bool = True,
                 timeout: float = 10.0) -> None:
        self.topic, self.qos = topic, qos
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = broker.client(client_id=f"collector-{uuid.uuid4().hex[:12]}", clean_session=not persistent)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async(HOST, broker.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise RuntimeError(f"collector could not subscribe to {topic} on port {broker.port}")

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, self.qos)

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, time.monotonic()))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Message]], bool] | int, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(messages)`` holds (an int n means: at least n messages); False on timeout."""
        test = (lambda m: len(m) >= predicate) if isinstance(predicate, int) else predicate
        deadline = time.monotonic() + timeout
        with self._cond:
            while not test(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    def json(self, topic: str | None = None) -> list[Any]:
        """Payloads parsed as JSON, optionally only those on one exact topic."""
        with self._cond:
            return [m.json() for m in self.messages if topic is None or m.topic == topic]

    def on(self, topic: str) -> list[Message]:
        """Messages received on one exact topic."""
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Broker:
    """mosquitto on a free 127.0.0.1 port; plain, or TLS with a generated CA; optional users and client certs."""

    def __init__(self, tls: bool = False, users: dict[str, str] | None = None, client_certs: bool = False,
                 persistence: bool = True) -> None:
        if not mosquitto_available():
            raise RuntimeError(f"mosquitto not found at {MOSQUITTO}: apt install mosquitto")
        self.tls, self.users, self.client_certs, self.persistence = tls, dict(users or {}), client_certs, persistence
        self.dir = Path(tempfile.mkdtemp(prefix="fer-edge-broker-"))
        self.port = free_port()
        self.host = HOST
        self.proc: subprocess.Popen | None = None
        self._collectors: list[Collector] = []
        self.ca_file = self.client_cert_file = self.client_key_file = None
        self._write_config()

    # ---- configuration ----

    def _write_config(self) -> None:
        lines = [f"listener {self.port} {HOST}", f"allow_anonymous {'false' if self.users else 'true'}",
                 f"log_dest file {self.dir / 'mosquitto.log'}", "log_type error", "log_type warning",
                 "log_type notice", "log_type information", "max_queued_messages 0"]
        if os.geteuid() == 0:
            lines.append(f"user {getpass.getuser()}")    # do not drop to user 'mosquitto': it could not read dir
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/"]
        if self.users:
            pw = self.dir / "passwd"
            pw.touch(mode=0o600)
            for name, password in self.users.items():
                _run(["mosquitto_passwd", "-b", str(pw), name, password], self.dir)
            lines.append(f"password_file {pw}")
        if self.tls:
            certs = make_certificates(self.dir / "certs")
            self.ca_file = str(certs["ca.crt"])
            self.client_cert_file, self.client_key_file = str(certs["client.crt"]), str(certs["client.key"])
            lines += [f"cafile {certs['ca.crt']}", f"certfile {certs['server.crt']}", f"keyfile {certs['server.key']}"]
            if self.client_certs:
                lines.append("require_certificate true")
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    @property
    def credentials(self) -> tuple[str, str] | None:
        """The first configured user and password, used by collectors and mqtt_config()."""
        return next(iter(self.users.items()), None)

    def mqtt_config(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for edge.publish.mqtt.MqttConfig that reach this broker (fast reconnects)."""
        cfg: dict[str, Any] = {"host": HOST, "port": self.port, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                               "log_interval_s": 5.0}
        if self.credentials:
            cfg["username"], cfg["password"] = self.credentials
        if self.tls:
            cfg["tls"] = {"enabled": True, "ca_file": self.ca_file}
            if self.client_certs:
                cfg["tls"].update(cert_file=self.client_cert_file, key_file=self.client_key_file)
        cfg.update(overrides)
        return cfg

    # ---- life cycle ----

    def start(self, timeout: float = 10.0) -> "Broker":
        """Start mosquitto (again) on the same port and wait until it accepts connections."""
        if self.proc and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err.strip()} {self.log_text()[-800:]}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {HOST}:{self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM: it saves sessions and queued messages to its persistence file)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        """stop() then start() on the same port."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def close(self) -> None:
        """Close collectors, stop the broker, delete its directory."""
        for c in self._collectors:
            try:
                c.close()
            except Exception:
                pass
        self.stop()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_text(self) -> str:
        """mosquitto's log so far (for assertion messages)."""
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    # ---- clients ----

    def client(self, client_id: str | None = None, clean_session: bool = True,
               credentials: tuple[str, str] | None = None) -> paho.Client:
        """An unconnected paho client set up for this broker (TLS, client cert and the first user as configured)."""
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
                        clean_session=clean_session)
        if self.tls:
            c.tls_set(ca_certs=self.ca_file, certfile=self.client_cert_file if self.client_certs else None,
                      keyfile=self.client_key_file if self.client_certs else None)
        creds = credentials or self.credentials
        if creds:
            c.username_pw_set(*creds)
        c.reconnect_delay_set(0.1, 0.5)
        return c

    def subscribe_collect(self, topic: str, qos: int = 1, persistent: bool = True) -> Collector:
        """A :class:`Collector` subscribed to ``topic`` (closed with the broker)."""
        c = Collector(self, topic, qos, persistent)
        self._collectors.append(c)
        return c
