"""The operator's MQTT side of ``fer-edge fleet``: connect, read the fleet's retained state, wait for answers.

Everything is read from what devices publish, retained, under ``<prefix>/<device>/``:
``status`` (online/offline/stopped, software version), ``stats`` (last seen, model), ``config/state``
(config version, groups, outcome of the last config message) and ``model/state`` (model updates).
Nothing here needs a database or a server beside the broker.
"""
from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

# CONNACK codes that mean "who are you" rather than "cannot reach" (MQTT 3.1.1 4/5, MQTT 5 0x86/0x87)
AUTH_CODES = (4, 5, 0x86, 0x87, 0x8C)
WATCHED = ("status", "stats", "config/state", "config/layers", "model/state")


class FleetError(RuntimeError):
    """A problem the operator must fix (broker unreachable, credentials, no such device); one line."""


@dataclass
class Broker:
    """Where the fleet's broker is and how to log in."""

    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "fer-edge"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    tls: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class DeviceView:
    """What the retained topics say about one device."""

    id: str
    status: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)     # config/layers: the file and each remote layer
    last_seen: float | None = None          # epoch of the newest of these messages

    @property
    def name(self) -> str:
        """device.name (from its stats), else the id."""
        return str(self.stats.get("name") or self.id)

    @property
    def state(self) -> str:
        return str(self.status.get("state") or "unknown")

    @property
    def groups(self) -> list[str]:
        return list(self.config.get("groups") or self.stats.get("groups") or [])

    def row(self) -> dict[str, Any]:
        """The `fleet list` row (also the --json object)."""
        model = self.model.get("model") or self.stats.get("model")
        return {"device": self.id, "name": self.stats.get("name") or None, "location": self.stats.get("location") or None,
                "online": self.status.get("state") == "online",
                "state": self.status.get("state"), "version": self.status.get("version") or self.stats.get("version"),
                "model": model, "config_version": self.config.get("version"), "config_ok": self.config.get("ok"),
                "config_error": self.config.get("error") if self.config.get("ok") is False else None,
                "groups": self.groups, "last_seen": self.last_seen}


class Connection:
    """A connected paho client for one operator command; ``close()`` (or ``with``) disconnects."""

    def __init__(self, broker: Broker, timeout: float = 5.0, client_id: str | None = None,
                 clean_session: bool = True) -> None:
        self.broker = broker
        self.client = paho.Client(CallbackAPIVersion.VERSION2, clean_session=clean_session,
                                  client_id=client_id or f"fer-edge-fleet-{uuid.uuid4().hex[:10]}")
        if broker.tls or broker.ca_file:
            self.client.tls_set(ca_certs=broker.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        self._handlers: list[tuple[str, Callable[[str, bytes, bool], None]]] = []
        self._lock = threading.Lock()
        self._subacks: dict[int, threading.Event] = {}
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        try:
            self.client.connect(broker.host, broker.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise FleetError(f"cannot reach the broker at {broker.address} ({exc.strerror or exc}); "
                             "check --host/--port and that the broker runs") from None
        self.client.loop_start()
        if not self._connected.wait(timeout) or self._refused:
            self.close()
            raise FleetError(self._refused or f"the broker at {broker.address} did not answer within {timeout:g} s")

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            if reason.value in AUTH_CODES:
                self._refused = (f"the broker at {self.broker.address} refused the login ({reason}): check "
                                 "--username/--password (or FER_EDGE_MQTT_USERNAME/FER_EDGE_MQTT_PASSWORD)")
            else:
                self._refused = f"the broker at {self.broker.address} refused the connection: {reason}"
        self._connected.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        for pattern, handler in list(self._handlers):
            if paho.topic_matches_sub(pattern, msg.topic):
                handler(msg.topic, bytes(msg.payload), bool(msg.retain))

    def subscribe(self, pattern: str | list[str], handler: Callable[[str, bytes, bool], None], qos: int = 1,
                  timeout: float = 20.0) -> None:
        """Call ``handler(topic, payload, retained)`` for every message on ``pattern`` (one or several filters, one
        SUBSCRIBE); returns once the broker confirmed. The timeout is generous: a broker delivering the
        retained messages of thousands of devices to an earlier subscription answers late."""
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        self._handlers += [(p, handler) for p in patterns]
        with self._lock:          # the SUBACK may come before subscribe() returns: register under the lock
            _, mid = self.client.subscribe([(p, qos) for p in patterns])
            done = self._subacks.setdefault(mid, threading.Event())
        if not done.wait(timeout):
            raise FleetError(f"the broker at {self.broker.address} did not confirm the subscription to "
                             f"{', '.join(patterns)} within {timeout:g} s")
        if self._refused:
            raise FleetError(self._refused)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if any(getattr(r, "is_failure", False) for r in reasons):
            self._refused = "the broker refused a subscription (does its ACL let this user read the fleet's topics?)"
        with self._lock:
            self._subacks.setdefault(mid, threading.Event()).set()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout: float = 10.0) -> None:
        """Publish and wait for the broker's acknowledgement."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise FleetError(f"could not publish to {topic}: {exc}") from None
        if not info.is_published():
            raise FleetError(f"the broker at {self.broker.address} did not acknowledge the message on {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Fleet:
    """The retained state of every device under the prefix, kept up to date while connected."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.prefix = conn.broker.prefix
        self.devices: dict[str, DeviceView] = {}
        self.cond = threading.Condition()
        self.listeners: list[Callable[[str, str, dict[str, Any]], None]] = []
        self.received = 0                    # retained messages so far (settle() waits until it stops growing)
        conn.subscribe([f"{self.prefix}/+/{sub}" for sub in WATCHED], self._on_message)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        rest = topic[len(self.prefix) + 1:]
        device, _, kind = rest.partition("/")
        if device == "group" or not payload:
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        with self.cond:
            # only the retained snapshot counts: live stats from a busy fleet never pause for 0.5 s,
            # and counting them made every command wait the full ``longest``
            self.received += int(retained)
            view = self.devices.setdefault(device, DeviceView(device))
            setattr(view, {"status": "status", "stats": "stats", "config/state": "config",
                           "config/layers": "layers", "model/state": "model"}[kind], data)
            seen = data.get("epoch") or _epoch(data.get("ts"))
            if seen and (view.last_seen is None or seen > view.last_seen):
                view.last_seen = seen
            if not retained:        # a retained copy was published before we listened: never an answer
                for listener in self.listeners:
                    listener(device, kind, data)
            self.cond.notify_all()

    def settle(self, quiet: float = 0.5, longest: float = 15.0) -> None:
        """Wait until retained messages stop arriving (``quiet`` s without one), at most ``longest`` s."""
        deadline = time.monotonic() + longest
        seen = -1
        while time.monotonic() < deadline:
            with self.cond:
                now = self.received
            if now == seen:
                return
            seen = now
            time.sleep(quiet)

    def members(self, group: str) -> list[str]:
        """Devices whose config/state lists ``group``."""
        with self.cond:
            return sorted(d for d, v in self.devices.items() if group in v.groups)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` (called under the lock) holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True


def _epoch(ts: Any) -> float | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
