"""The MQTT publisher: a paho-mqtt 2.x client fed in order from the durable queue by one sender thread.

``publish()`` only appends to the SQLite queue and returns: the pipeline never waits for the
network. The sender thread moves events from the queue to the broker through a delivery window
(edge/publish/delivery.py: in order, at most ``mqtt.max_inflight`` unacknowledged, deleted once
acknowledged). Availability (`status`) uses a retained last will.

The sink also listens to its own `status` topic: a status message of another process instance
under the same device id (edge/publish/duplicate.py) is reported loudly, and this process goes on
with a new paho client under a client id of its own, so that the two stop disconnecting each other.
"""
from __future__ import annotations

import logging
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Iterable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from edge.config.events import EventsConfig
from edge.config.homeassistant import HomeAssistantConfig
from edge.config.mqtt import ENV_PASSWORD, ENV_USERNAME, MqttConfig
from edge.events import Event, publishable
from edge.formatting import compact_json
from edge.publish.delivery import DeliveryWindow
from edge.publish.discovery import Announced
from edge.publish.duplicate import DuplicateWatch
from edge.publish.instance import INSTANCE_ID, STARTED_EPOCH, STARTED_MONOTONIC
from edge.publish.mqtt_client import WILL_QOS, connect_properties, default_client_id, make_client
from edge.publish.payloads import encode, stats_payload, status_payload
from edge.publish.queue import EventQueue, QueueError
from edge.publish.ratelimit import LogEvery
from edge.publish.side import SIDE_QOS, SideChannel
from edge.publish.state import RetainedState
from edge.publish.topics import Topics, check_topic_level

log = logging.getLogger(__name__)


class MqttSink:
    """Durable, ordered MQTT publication of events, plus status, stats, per-camera state and discovery."""

    remote = True                     # messages can arrive (config/set, model/set): see EventSink

    def __init__(self, device: str, cfg: MqttConfig, queue: EventQueue, events: EventsConfig | None = None,
                 homeassistant: HomeAssistantConfig | None = None, cameras: Iterable[str] = (),
                 instance: str | None = None, who: Announced | None = None) -> None:
        self.device = check_topic_level(device, "device id")
        self.instance = instance or INSTANCE_ID
        self.cfg = cfg
        self.events_cfg = events or EventsConfig()
        self.queue = queue
        self.topics = Topics(cfg.prefix, device)
        self.address = f"{cfg.host}:{self.port}"
        self.reconnects = 0
        self.connect_attempts = 0
        self.enqueue_errors = 0
        self.last_error: str | None = None
        self._started = time.monotonic()
        who = replace(who or Announced(), stats_topic=self.topics.stats, events_topic=self.topics.events)
        self.state = RetainedState(device, self.topics, homeassistant or HomeAssistantConfig(),
                                   [check_topic_level(cam, "camera id") for cam in cameras], who)
        self.side = SideChannel()              # further retained topics and subscriptions, on every connection
        self.duplicates = DuplicateWatch(device, self.instance, STARTED_EPOCH)
        self._cond = threading.Condition()
        self._wake = False
        self._halt = False
        self._acks: deque[int] = deque()       # mids acknowledged by the broker (filled by paho's thread)
        self.delivery = DeliveryWindow(queue, cfg.max_inflight)    # the sender thread's
        self._connected = False
        self._ever_connected = False
        self._qos0_lost = False
        # one line per interval and kind of trouble, however often paho retries
        self._log_unreachable = LogEvery(log, cfg.log_interval_s, logging.WARNING)
        self._log_refused = LogEvery(log, cfg.log_interval_s, logging.ERROR)
        self._log_lost = LogEvery(log, cfg.log_interval_s, logging.WARNING)
        self._log_queue = LogEvery(log, cfg.log_interval_s, logging.ERROR)
        self._log_duplicate = LogEvery(log, cfg.log_interval_s, logging.ERROR)
        self._first_connection = True          # the retained status seen on it is an earlier run's
        self.client_id = default_client_id(cfg, device)
        self._rename_to: str | None = None     # set in paho's thread, carried out by the sender thread
        self.client: paho.Client
        self._start_client(self.client_id)
        self._thread = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._thread.start()
        if queue.depth:
            log.info("MQTT: %d events from before the last stop are queued and will be sent first", queue.depth)

    def _start_client(self, client_id: str) -> None:
        """Make this sink's client a new paho client under ``client_id`` and let it connect in its own thread."""
        client = make_client(self.cfg, self.device, self.topics, self.instance, client_id=client_id)
        client.message_callback_add(self.topics.status, self._on_status)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.side.attach(client)
        self.client = client
        client.connect_async(self.cfg.host, self.port, self.cfg.keepalive_s, properties=connect_properties(self.cfg))
        client.loop_start()

    def _switch_client(self, client_id: str) -> None:
        """Sender thread: go on with a new client under ``client_id``; what was in flight is sent again.

        The old client is stopped (its network thread joined) before anything is reset, so no late
        acknowledgement of an old message id can mark a message of the new client as delivered.
        """
        old = self.client
        self._connected = False    # the main thread publishes nothing on `old` from here on
        self.side.lost()
        old.disconnect()           # clean: the broker discards its will; the new connection says `online`
        old.loop_stop()
        with self._cond:
            self._acks.clear()     # ids of the old client
            self._qos0_lost = False
        self.delivery.restart()    # in-flight events go again (at least once, with their ids)
        self.client_id = client_id
        log.info("MQTT: connecting as client id %s from now on", client_id)
        self._start_client(client_id)

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
        changed = self.state.update(events)
        out = publishable(events, self.events_cfg)
        if out:
            try:
                self.queue.append(out, self.device, self.instance)
            except QueueError as exc:
                self.enqueue_errors += len(out)
                self._log_queue("%s (%d events could not be queued since start)", exc, self.enqueue_errors)
        if out or changed:
            self._wake_sender()

    def stats(self) -> dict[str, Any]:
        """The publisher's part of the stats message: queue and connection."""
        q = self.queue
        return {"queue": {"depth": q.depth, "max_events": q.max_events, "dropped": q.dropped,
                          "oldest_age_s": _round(q.oldest_age_s()), "held": q.held, "lost": q.lost,
                          "store_errors": q.store_errors, "last_error": q.last_error,
                          "recovery": q.recovery.as_dict() if q.recovery else None},
                "mqtt": {"connected": self._connected, "sent": self.delivery.sent, "reconnects": self.reconnects,
                         "last_error": self.last_error, "instance": self.instance,
                         "duplicate_instances": sorted(self.duplicates.others)}}

    def problem(self) -> str | None:
        """One line for the service's status when delivery is in trouble (queue not writable, duplicate id)."""
        q = self.queue
        if q.last_error is not None or q.held:
            return f"event queue not writable: {q.held} events held in memory, {q.lost} lost"
        if self.duplicates.others:
            return f"device id {self.device!r} used by another process too"
        if q.recovery is not None:
            return q.recovery.line()
        return None

    def set_cameras(self, current: list[str], removed: list[str]) -> None:
        """The cameras the service runs now: removed ones lose their retained state and Home Assistant entities."""
        self.state.set_cameras(current, removed)
        self._wake_sender()

    def publish_stats(self, stats: dict[str, Any]) -> dict[str, Any]:
        """Publish a health report (retained, QoS 0; skipped while disconnected) and return it.

        ``stats`` holds the service's figures (the processor's snapshot: stage_ms, inference_ms,
        faces_per_minute, dropped, input_fps, ...; cpu_temp_c, ...); see :func:`stats_payload`.
        """
        # uptime: of the process (a remote config change reopens the sink; that restart is pipeline_uptime_s)
        payload = stats_payload(self.device, STARTED_MONOTONIC, stats, {
            **self.stats(), "pipeline_uptime_s": round(time.monotonic() - self._started, 1), "lag_s": self.state.lag()})
        if self._connected:
            self.client.publish(self.topics.stats, compact_json(payload), qos=0, retain=True)
        return payload

    def publish_retained(self, subtopic: str, payload: dict[str, Any] | str | bytes) -> None:
        """Keep a retained message on ``<prefix>/<device>/<subtopic>`` (e.g. ``config/state``), re-sent on reconnect."""
        self.side.keep(self.topics.sub(subtopic), encode(payload))

    def subscribe(self, subtopic: str, callback: Callable[[bytes], None]) -> None:
        """Call ``callback(payload)`` (in paho's thread: keep it short) for messages on ``<prefix>/<device>/<subtopic>``."""
        self.subscribe_topic(self.topics.sub(subtopic), callback)

    def subscribe_topic(self, topic: str, callback: Callable[[bytes], None]) -> None:
        """Like :meth:`subscribe` for a whole topic (e.g. a group's ``<prefix>/group/<g>/config/set``)."""
        self.side.subscribe(topic, callback)

    def close(self, timeout: float = 5.0, status: str | None = "stopped") -> None:
        """Send what the queue holds for up to ``timeout`` s, say ``status``, disconnect. Unsent events stay queued.

        ``status=None`` says nothing: for a sink that is reopened at once on the same status topic,
        where `stopped` then `online` would only make dashboards flicker (the clean DISCONNECT
        discards the will, so the retained `online` stays until the new connection renews it).
        """
        deadline = time.monotonic() + timeout
        while self._connected and self.queue.depth and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._cond:
            self._halt = True
            self._cond.notify()
        self._thread.join(timeout=2.0)
        if self._connected and status:
            payload = status_payload(status, self.device, self.instance, self.state.newest_event_ts())
            info = self.client.publish(self.topics.status, payload, qos=SIDE_QOS, retain=True)
            try:
                info.wait_for_publish(max(0.2, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self._connected = False
        self.side.lost()
        self.client.disconnect()       # a clean DISCONNECT: the broker discards the last will
        self.client.loop_stop()
        self.queue.close()

    # ---- paho's callbacks (its network thread) ----

    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        self.connect_attempts += 1
        # refresh the will's timestamp: it says when this connection was opened
        client.will_set(self.topics.status, status_payload("offline", self.device, self.instance), qos=WILL_QOS,
                        retain=True)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            hint = ""
            if reason.value in (4, 5, 0x86, 0x87, 0x8C):   # bad user name or password / not authorized
                hint = f" - check mqtt.username and mqtt.password (or {ENV_USERNAME}/{ENV_PASSWORD})"
            self.last_error = f"broker {self.address} refused the connection: {reason}{hint}"
            self._log_refused("MQTT %s; %d events stay queued, retrying", self.last_error, self.queue.depth)
            return
        self._first_connection = not self._ever_connected
        if self._ever_connected:
            self.reconnects += 1
        log.info("MQTT connected to %s (%d events queued)", self.address, self.queue.depth)
        self._ever_connected = True
        self.last_error = None
        # An MQTT 5 broker says how many unacknowledged messages it accepts; never send more.
        receive_max = getattr(properties, "ReceiveMaximum", None)
        self.delivery.window = min(self.cfg.max_inflight, receive_max) if receive_max else self.cfg.max_inflight
        for report in (self._log_unreachable, self._log_refused, self._log_lost):
            report.reset()      # a new outage is reported at once
        # Our own status first: a status of another instance under this device id arrives on it.
        client.subscribe(self.topics.status, qos=0)
        client.publish(self.topics.status, status_payload("online", self.device, self.instance), qos=SIDE_QOS,
                       retain=True)
        self.side.connected(client)
        self.state.connected()
        with self._cond:
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
        self.side.lost()
        with self._cond:
            was = self._connected
            self._connected = False
            self.delivery.resync = True
            self._qos0_lost = self.cfg.qos == 0
            self._wake = True
            self._cond.notify()
        if was and not self._halt:
            self.last_error = f"connection to {self.address} lost ({reason})"
            self._log_lost("MQTT %s; queueing, reconnecting", self.last_error)

    def _on_status(self, client: paho.Client, userdata: Any, msg: Any) -> None:
        try:
            seen = self.duplicates.check(msg.payload, bool(msg.retain), self._first_connection)
            if seen is None:
                return
            other, state = seen
            client_id = self._rename_to or self.client_id
            if not client_id.endswith(f"-{self.instance}"):
                # Both processes would keep taking the shared client id from each other (the broker
                # disconnects the older connection): the sender thread goes on with a client of its own id.
                client_id = f"{client_id}-{self.instance}"
                with self._cond:    # the sender takes and clears it under the lock
                    self._rename_to = client_id
                self._wake_sender()
            self._log_duplicate("MQTT: %s", self.duplicates.message(client_id))
            alarm = encode(self.duplicates.alarm())
            topic = self.topics.sub("duplicate")
            self.side.keep(topic, alarm)
            if state != "online" and self._connected:      # its will or `stopped` must not hide that we are online
                client.publish(self.topics.status, status_payload("online", self.device, self.instance),
                               qos=SIDE_QOS, retain=True)
        except Exception:     # never let a bad message stop paho's network thread
            log.exception("MQTT: cannot handle a status message")

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if reason.is_failure:   # MQTT 5 only: the broker refused this message (e.g. ACL); retrying will not help
            log.error("MQTT broker refused message %d: %s", mid, reason)
        with self._cond:    # one lock per acknowledgement: the sender swaps the deque under it
            self._acks.append(mid)
            self._wake = True
            self._cond.notify()

    # ---- the sender thread ----

    def _wake_sender(self) -> None:
        """Have the sender thread look at the queue, the acknowledgements and the retained state now."""
        with self._cond:
            self._wake = True
            self._cond.notify()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                if not self._wake and not self._halt:
                    self._cond.wait(0.5)
                if self._halt:
                    self.delivery.flush_acked()
                    return
                self._wake = False
                acks, self._acks = self._acks, deque()
                qos0_lost, self._qos0_lost = self._qos0_lost, False
                rename, self._rename_to = self._rename_to, None
            try:
                if rename:
                    self._switch_client(rename)
                    acks = deque()     # the old client's message ids mean nothing to the new one
                self.delivery.retry_queue()
                self.delivery.apply_acks(acks, self._connected)
                if qos0_lost:       # QoS 0 messages cut off by a disconnect are gone: send them again
                    self.delivery.restart()
                if self._connected:
                    self._send_state()
                    if self.delivery.fill(self._publish_event, lambda: self._connected):
                        self._wake_sender()     # more may wait; look again once acknowledgements come
            except Exception:   # keep the sender alive whatever happens; the events stay queued
                log.exception("MQTT sender error; retrying")
                time.sleep(0.5)

    def _publish_event(self, payload: bytes) -> tuple[int, bool]:
        info = self.client.publish(self.topics.events, payload, qos=self.cfg.qos)
        return info.mid, self.cfg.qos != 0 or info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _send_state(self) -> None:
        for topic, payload in self.state.due():
            self.client.publish(topic, payload, qos=SIDE_QOS, retain=True)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
