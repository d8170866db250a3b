"""The MQTT publisher: a paho-mqtt 2.x client fed in order from the durable queue by one sender thread.

``publish()`` only appends to the SQLite queue and returns: the pipeline never waits for the
network. The sender thread keeps at most ``mqtt.max_inflight`` events unacknowledged at the
broker, always in sequence order, and deletes each one from the queue when its PUBACK/PUBCOMP
arrives (QoS 0: when written to the socket). Order is kept across reconnections: paho re-sends
its unacknowledged messages first (in their original order) and the sender publishes nothing
newer until those are acknowledged. Availability (`status`) uses a retained last will.
"""
from __future__ import annotations

import json
import logging
import os
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import Field, SecretStr, field_validator

from edge import __version__
from edge.config_base import StrictModel
from edge.events import SCHEMA_VERSION, Event, EventsConfig, iso_utc, publishable
from edge.publish.discovery import HomeAssistantConfig, availability_message, camera_messages
from edge.publish.queue import EventQueue, QueueError
from edge.publish.ratelimit import LogEvery
from edge.publish.state import EmotionMix

log = logging.getLogger(__name__)

# status, state, discovery and other retained messages are re-sent on every connection, so QoS 0
# loses nothing that matters, and it keeps them out of the broker's receive quota (mosquitto allows
# 20 unacknowledged QoS>0 messages per client and drops a client that exceeds it with QoS 2 events).
SIDE_QOS = 0
WILL_QOS = 1
ENV_USERNAME = "FER_EDGE_MQTT_USERNAME"
ENV_PASSWORD = "FER_EDGE_MQTT_PASSWORD"


class TlsConfig(StrictModel):
    """Section `mqtt.tls`: encrypt the connection and, optionally, authenticate with a client certificate."""

    enabled: bool = Field(False, description="Connect with TLS (port 8883 unless mqtt.port says otherwise).")
    ca_file: str | None = Field(None, description="PEM file of the certificate authority that signed the broker's "
                                                  "certificate; empty: the system's trusted CAs.")
    cert_file: str | None = Field(None, description="PEM client certificate, for brokers that require one.")
    key_file: str | None = Field(None, description="PEM private key of the client certificate.")
    insecure: bool = Field(False, description="Skip the check that the broker's certificate names mqtt.host. "
                                              "Only for testing; it allows a man in the middle.")


class MqttConfig(StrictModel):
    """Section `mqtt`: the broker, the topics and the delivery guarantees."""

    enabled: bool = Field(True, description="Publish over MQTT. With false, or an empty host, events are written "
                                            "to stdout as JSON lines instead.")
    host: str = Field("", description="Broker host name or address; empty: no MQTT (stdout JSON lines).")
    port: int | None = Field(None, ge=1, le=65535, description="Broker port; empty: 1883, or 8883 with TLS.")
    prefix: str = Field("fer-edge", description="First level of every topic: <prefix>/<device>/events, ...")
    client_id: str = Field("", description="MQTT client id; empty: fer-edge-<device>. Must be unique per broker: "
                                           "a second client with the same id disconnects the first.")
    username: str | None = Field(None, description=f"User name; empty: the {ENV_USERNAME} environment variable.")
    password: SecretStr | None = Field(None, description=f"Password; empty: the {ENV_PASSWORD} environment variable "
                                                         "(better than writing it into this file).")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of events. 1 (default): at least once. 2: exactly once per "
                                                 "connection. 0: no acknowledgement, events can be lost.")
    protocol: Literal["3.1.1", "5"] = Field("3.1.1", description="MQTT protocol version.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="Keep-alive; the broker declares the device offline "
                                                            "(last will) after about 1.5 times this without traffic.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")
    reconnect_min_s: float = Field(1.0, gt=0, description="First wait before reconnecting; doubles per failure.")
    reconnect_max_s: float = Field(60.0, gt=0, description="Longest wait between reconnection attempts.")
    max_inflight: int = Field(20, ge=1, le=1000, description="Events sent but not yet acknowledged. Order is kept "
                                                             "at any value; 1 trades throughput for the least "
                                                             "re-sending after a lost connection. With QoS 2 keep it "
                                                             "at most the broker's limit (mosquitto: "
                                                             "max_inflight_messages, 20).")
    log_interval_s: float = Field(60.0, ge=0.1, description="At most one log line per this many seconds about an "
                                                            "unreachable or refusing broker.")

    @field_validator("prefix")
    @classmethod
    def _topic_level(cls, v: str) -> str:
        if not v or any(c in v for c in "+#\0") or v.startswith("/") or v.endswith("/"):
            raise ValueError("must be a topic prefix without '+', '#', or a leading/trailing '/', e.g. 'fer-edge'")
        return v


@dataclass(frozen=True)
class Topics:
    """Every topic of one device (documented in docs/mqtt.md)."""

    prefix: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    def state(self, camera: str) -> str:
        return f"{self.base}/state/{camera}"

    def sub(self, name: str) -> str:
        """A further topic below the device, e.g. ``config/state``."""
        return f"{self.base}/{name.strip('/')}"


def check_topic_level(value: str, what: str) -> str:
    """Return ``value`` if it can be one MQTT topic level, else raise ValueError naming ``what``."""
    if not value or any(c in value for c in "/+#\0"):
        raise ValueError(f"{what} {value!r} cannot be used in MQTT topics: it must be non-empty, without '/', '+' or '#'")
    return value


def status_payload(state: str, device: str) -> bytes:
    """The retained availability message (schema edge/schemas/status.schema.json)."""
    now = time.time()
    return json.dumps({"v": SCHEMA_VERSION, "state": state, "device": device, "version": __version__,
                       "ts": iso_utc(now), "epoch": round(now, 3)}, separators=(",", ":")).encode()


def stats_payload(device: str, started: float, stats: dict[str, Any], publisher: dict[str, Any]) -> dict[str, Any]:
    """The stats message (schema edge/schemas/stats.schema.json) from the service's figures and the publisher's.

    ``fps`` per stage and ``dropped_frames`` are derived from the processor's ``stage_ms`` and
    ``dropped`` when the service does not give them; ``started`` is a time.monotonic() value.
    """
    now = time.time()
    derived: dict[str, Any] = {}
    if "fps" not in stats and isinstance(stats.get("stage_ms"), dict):
        derived["fps"] = {k: round(1000.0 / ms, 1) for k, ms in stats["stage_ms"].items() if ms}
    if "dropped_frames" not in stats and isinstance(stats.get("dropped"), int):
        derived["dropped_frames"] = stats["dropped"]
    return {"v": SCHEMA_VERSION, "device": device, "version": __version__, "ts": iso_utc(now), "epoch": round(now, 3),
            "uptime_s": round(time.monotonic() - started, 1), **derived, **stats, **publisher}


def make_client(cfg: MqttConfig, device: str, topics: Topics) -> paho.Client:
    """A configured paho client: id, protocol, TLS, credentials, last will, backoff. Not yet connected.

    Raises ValueError naming the setting when a TLS file cannot be used.
    """
    v5 = cfg.protocol == "5"
    kwargs: dict[str, Any] = {"protocol": paho.MQTTv5 if v5 else paho.MQTTv311}
    if not v5:
        kwargs["clean_session"] = True      # the queue, not the broker session, is what makes delivery durable
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id or f"fer-edge-{device}", **kwargs)
    if cfg.tls.enabled:
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(cfg.tls, key)
            if path and not os.path.isfile(path):
                raise ValueError(f"mqtt.tls.{key}: {path} not found")
        try:
            client.tls_set(ca_certs=cfg.tls.ca_file or None, certfile=cfg.tls.cert_file or None,
                           keyfile=cfg.tls.key_file or None, cert_reqs=ssl.CERT_REQUIRED)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"mqtt.tls: cannot use the certificate files ({exc}); check ca_file, cert_file "
                             f"and key_file are PEM and the key matches the certificate") from None
        client.tls_insecure_set(cfg.tls.insecure)
    username = cfg.username or os.environ.get(ENV_USERNAME)
    password = cfg.password.get_secret_value() if cfg.password else os.environ.get(ENV_PASSWORD)
    if username:
        client.username_pw_set(username, password)
    client.will_set(topics.status, status_payload("offline", device), qos=WILL_QOS, retain=True)
    client.reconnect_delay_set(cfg.reconnect_min_s, max(cfg.reconnect_min_s, cfg.reconnect_max_s))
    client.max_inflight_messages_set(0)     # unlimited in paho: the sender thread bounds what is in flight
    return client


class MqttSink:
    """Durable, ordered MQTT publication of events, plus status, stats, per-camera state and discovery."""

    def __init__(self, device: str, cfg: MqttConfig, queue: EventQueue, events: EventsConfig | None = None,
                 homeassistant: HomeAssistantConfig | None = None, cameras: Iterable[str] = ()) -> None:
        self.device = check_topic_level(device, "device id")
        self.cfg = cfg
        self.events_cfg = events or EventsConfig()
        self.ha_cfg = homeassistant or HomeAssistantConfig()
        self.queue = queue
        self.topics = Topics(cfg.prefix, device)
        self.address = f"{cfg.host}:{self.port}"
        self.sent = 0                 # events acknowledged since start
        self.reconnects = 0
        self.connect_attempts = 0
        self.enqueue_errors = 0
        self.last_error: str | None = None
        self._started = time.monotonic()
        self._mix = EmotionMix()
        self._mix_lock = threading.Lock()
        self._dirty: set[str] = set()          # cameras whose retained state must be (re)published
        for cam in cameras:
            self._mix.add_camera(check_topic_level(cam, "camera id"))
            self._dirty.add(cam)
        self._announced: set[str] = set()      # cameras whose discovery config went out on this connection
        self._retained: dict[str, bytes] = {}  # further retained topics, re-sent on every connection
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._cond = threading.Condition()
        self._wake = False
        self._halt = False
        self._acks: deque[int] = deque()       # mids acknowledged by the broker (filled by paho's thread)
        self._inflight: dict[int, int] = {}    # mid -> seq, sender thread only, in publish order
        self._cursor = 0                       # highest seq handed to paho
        self._window = cfg.max_inflight        # events in flight at most (lowered by an MQTT 5 broker's limit)
        self._acked: list[int] = []            # acknowledged, not yet deleted from the queue
        self._last_delete = time.monotonic()
        self._connected = False
        self._ever_connected = False
        self._resync = False                   # after a lost connection: wait until paho re-sent the in-flight ones
        self._qos0_lost = False
        # one line per interval and kind of trouble, however often paho retries
        self._log_unreachable = LogEvery(log, cfg.log_interval_s, logging.WARNING)
        self._log_refused = LogEvery(log, cfg.log_interval_s, logging.ERROR)
        self._log_lost = LogEvery(log, cfg.log_interval_s, logging.WARNING)
        self._log_queue = LogEvery(log, cfg.log_interval_s, logging.ERROR)
        self._device_announced = False         # Home Assistant availability sensor sent on this connection

        self.client = make_client(cfg, device, self.topics)
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect_async(cfg.host, self.port, cfg.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._thread.start()
        if queue.depth:
            log.info("MQTT: %d events from before the last stop are queued and will be sent first", queue.depth)

    @property
    def port(self) -> int:
        return self.cfg.port or (8883 if self.cfg.tls.enabled else 1883)

    @property
    def connected(self) -> bool:
        return self._connected

    # ---- the pipeline's side: never blocks on the network ----

    def publish(self, event: Event) -> None:
        """Queue one event for delivery (returns once it is committed to the queue file)."""
        self.publish_all((event,))

    def publish_all(self, events: Iterable[Event]) -> None:
        """Queue several events in one transaction, in order."""
        events = list(events)
        with self._mix_lock:
            changed = {e.camera for e in events if self._mix.update(e)}
        out = publishable(events, self.events_cfg)
        if out:
            try:
                self.queue.append(out, self.device)
            except QueueError as exc:
                self.enqueue_errors += len(out)
                self._log_queue("%s (%d events could not be queued since start)", exc, self.enqueue_errors)
        if out or changed:
            with self._cond:
                self._dirty |= changed
                self._wake = True
                self._cond.notify()

    def stats(self) -> dict[str, Any]:
        """The publisher's part of the stats message: queue and connection."""
        return {"queue": {"depth": self.queue.depth, "max_events": self.queue.max_events,
                          "dropped": self.queue.dropped, "oldest_age_s": _round(self.queue.oldest_age_s())},
                "mqtt": {"connected": self._connected, "sent": self.sent, "reconnects": self.reconnects,
                         "last_error": self.last_error}}

    def publish_stats(self, stats: dict[str, Any]) -> dict[str, Any]:
        """Publish a health report (retained, QoS 0; skipped while disconnected) and return it.

        ``stats`` holds the service's figures (the processor's snapshot: stage_ms, inference_ms,
        faces_per_minute, dropped, input_fps, ...; cpu_temp_c, ...); see :func:`stats_payload`.
        """
        payload = stats_payload(self.device, self._started, stats, self.stats())
        if self._connected:
            self.client.publish(self.topics.stats, json.dumps(payload, separators=(",", ":")), qos=0, retain=True)
        return payload

    def publish_retained(self, subtopic: str, payload: dict[str, Any] | str | bytes) -> None:
        """Keep a retained message on ``<prefix>/<device>/<subtopic>`` (e.g. ``config/state``), re-sent on reconnect."""
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload, separators=(",", ":")).encode())
        topic = self.topics.sub(subtopic)
        self._retained[topic] = data
        if self._connected:
            self.client.publish(topic, data, qos=SIDE_QOS, retain=True)

    def subscribe(self, subtopic: str, callback: Callable[[bytes], None]) -> None:
        """Call ``callback(payload)`` (in paho's thread: keep it short) for messages on ``<prefix>/<device>/<subtopic>``."""
        topic = self.topics.sub(subtopic)
        self._subscriptions[topic] = callback
        self.client.message_callback_add(topic, lambda _c, _u, msg: callback(msg.payload))
        if self._connected:
            self.client.subscribe(topic, qos=1)

    def close(self, timeout: float = 5.0) -> None:
        """Send what the queue holds for up to ``timeout`` s, say `stopped`, disconnect. Unsent events stay queued."""
        deadline = time.monotonic() + timeout
        while self._connected and self.queue.depth and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._cond:
            self._halt = True
            self._cond.notify()
        self._thread.join(timeout=2.0)
        if self._connected:
            info = self.client.publish(self.topics.status, status_payload("stopped", self.device), qos=SIDE_QOS,
                                       retain=True)
            try:
                info.wait_for_publish(max(0.2, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self._connected = False
        self.client.disconnect()       # a clean DISCONNECT: the broker discards the last will
        self.client.loop_stop()
        self.queue.close()

    # ---- paho's callbacks (its network thread) ----

    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        self.connect_attempts += 1
        # refresh the will's timestamp: it says when this connection was opened
        client.will_set(self.topics.status, status_payload("offline", self.device), qos=WILL_QOS, retain=True)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            hint = ""
            if reason.value in (4, 5, 0x86, 0x87, 0x8C):   # bad user name or password / not authorized
                hint = f" - check mqtt.username and mqtt.password (or {ENV_USERNAME}/{ENV_PASSWORD})"
            self.last_error = f"broker {self.address} refused the connection: {reason}{hint}"
            self._log_refused("MQTT %s; %d events stay queued, retrying", self.last_error, self.queue.depth)
            return
        if self._ever_connected:
            self.reconnects += 1
        log.info("MQTT connected to %s (%d events queued)", self.address, self.queue.depth)
        self._ever_connected = True
        self.last_error = None
        # An MQTT 5 broker says how many unacknowledged messages it accepts; never send more.
        receive_max = getattr(properties, "ReceiveMaximum", None)
        self._window = min(self.cfg.max_inflight, receive_max) if receive_max else self.cfg.max_inflight
        for report in (self._log_unreachable, self._log_refused, self._log_lost):
            report.reset()      # a new outage is reported at once
        client.publish(self.topics.status, status_payload("online", self.device), qos=SIDE_QOS, retain=True)
        for topic, data in self._retained.items():
            client.publish(topic, data, qos=SIDE_QOS, retain=True)
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        with self._cond:
            self._announced.clear()
            self._device_announced = False
            self._dirty |= set(self._mix.cameras)
            self._connected = True
            self._wake = True
            self._cond.notify()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        exc = sys.exc_info()[1]     # paho calls this from inside its `except OSError` block
        why = f"{type(exc).__name__}: {exc}" if exc else "connection failed"
        if isinstance(exc, ssl.SSLError):
            why += " - check mqtt.tls.ca_file and that the broker's certificate names mqtt.host"
        self.last_error = f"cannot reach broker {self.address} ({why})"
        self._log_unreachable("MQTT %s; %d events queued, retrying every %g s at most", self.last_error,
                       self.queue.depth, max(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
            self._resync = True
            self._qos0_lost = self.cfg.qos == 0
            self._wake = True
            self._cond.notify()
        if was and not self._halt:
            self.last_error = f"connection to {self.address} lost ({reason})"
            self._log_lost("MQTT %s; queueing, reconnecting", self.last_error)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if reason.is_failure:   # MQTT 5 only: the broker refused this message (e.g. ACL); retrying will not help
            log.error("MQTT broker refused message %d: %s", mid, reason)
        with self._cond:
            self._acks.append(mid)
            self._wake = True
            self._cond.notify()

    # ---- the sender thread ----

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                if not self._wake and not self._halt:
                    self._cond.wait(0.5)
                if self._halt:
                    self._flush_acked()
                    return
                self._wake = False
                acks, self._acks = self._acks, deque()
                qos0_lost, self._qos0_lost = self._qos0_lost, False
            try:
                self._apply_acks(acks)
                if qos0_lost:       # QoS 0 messages cut off by a disconnect are gone: send them again
                    self._flush_acked()
                    self._inflight.clear()
                    self._cursor = 0
                if self._connected:
                    self._send_state()
                    self._fill_window()
            except Exception:   # keep the sender alive whatever happens; the events stay queued
                log.exception("MQTT sender error; retrying")
                time.sleep(0.5)

    def _apply_acks(self, acks: Iterable[int]) -> None:
        done = [self._inflight.pop(mid) for mid in acks if mid in self._inflight]
        self._acked.extend(done)
        self.sent += len(done)
        # Delete acknowledged events in batches (one commit each): a crash before the commit only
        # means those events are sent once more, with their ids, which at-least-once allows.
        if self._acked and (len(self._acked) >= 64 or not self._inflight
                            or time.monotonic() - self._last_delete > 0.2):
            self._flush_acked()
        if self._resync and not self._inflight and self._connected:
            self._resync = False

    def _flush_acked(self) -> None:
        acked, self._acked = self._acked, []
        self.queue.remove(acked)
        self._last_delete = time.monotonic()

    def _fill_window(self) -> None:
        if self._resync:
            return      # paho is re-sending older events; newer ones wait so that order holds
        room = self._window - len(self._inflight)
        if room <= 0:
            return
        rows = self.queue.peek(self._cursor, room)
        for row in rows:
            if not self._connected or self._resync:
                return
            info = self.client.publish(self.topics.events, row.payload, qos=self.cfg.qos)
            if self.cfg.qos == 0 and info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return      # not written; sent again from the cursor after reconnecting
            self._inflight[info.mid] = row.seq
            self._cursor = row.seq
        if len(rows) == room:
            with self._cond:
                self._wake = True   # more may wait; look again once acknowledgements come

    def _send_state(self) -> None:
        with self._cond:
            dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        if self.ha_cfg.enabled:
            msgs = []
            if not self._device_announced:
                msgs.append(availability_message(self.ha_cfg, self.device, self.topics.status))
                self._device_announced = True
            for camera in sorted(dirty - self._announced):
                msgs += camera_messages(self.ha_cfg, self.device, camera, self.topics.state(camera),
                                        self.topics.status)
                self._announced.add(camera)
            for topic, payload in msgs:
                self.client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=SIDE_QOS, retain=True)
        for camera in sorted(dirty):
            with self._mix_lock:
                payload = self._mix.payload(camera, self.device)
            self.client.publish(self.topics.state(camera), json.dumps(payload, separators=(",", ":")),
                                qos=SIDE_QOS, retain=True)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
