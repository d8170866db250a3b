"""The dashboard's MQTT side: one paho subscriber under the prefix, feeding the Fleet model and the pages.

It connects with the same `mqtt` settings as a device (host, port, credentials, TLS, client
certificates; edge.publish.mqtt.make_client builds the client) but with its own client id and no
last will, and subscribes to the device topics it shows. It reconnects by itself forever
(paho's backoff), and on every (re)connection the broker re-sends the retained status, stats,
state and config messages, so a broker restart heals the picture without a page reload.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from typing import Any, Callable

import paho.mqtt.client as paho

from edge.ops.dashboard.model import Fleet
from edge.config.mqtt import MqttConfig
from edge.publish.topics import Topics
from edge.publish.mqtt_client import make_client
from edge.publish.ratelimit import LogEvery

log = logging.getLogger(__name__)

# what the page shows; never <prefix>/+/config/set (it may carry signed config the page has no use for)
SUBTOPICS = ("status", "stats", "state/+", "config/state", "events")


def subscriptions(prefix: str) -> list[str]:
    """The topic filters the dashboard subscribes to."""
    return [f"{prefix}/+/{sub}" for sub in SUBTOPICS]


class Feed:
    """paho subscriber -> :class:`Fleet` -> ``broadcast(change)``, all under ``lock``.

    ``broadcast`` is called with the model's change dicts (and ``{"t": "broker", ...}`` when the
    broker connection comes or goes) while ``lock`` is held, so a page that takes a snapshot
    under the same lock misses no change and sees none twice.
    """

    def __init__(self, cfg: MqttConfig, fleet: Fleet, broadcast: Callable[[dict], None],
                 lock: threading.Lock | None = None) -> None:
        self.cfg, self.fleet, self.broadcast = cfg, fleet, broadcast
        self.lock = lock or threading.Lock()
        self.connected = False
        self.error: str | None = None
        self.since = time.time()
        self.port = cfg.port or (8883 if cfg.tls.enabled else 1883)
        self.address = f"{cfg.host}:{self.port}"
        self._log_trouble = LogEvery(log, cfg.log_interval_s, logging.WARNING)
        self._log_rejected = LogEvery(log, cfg.log_interval_s, logging.WARNING)
        # own client id: reusing a device's would make the broker disconnect that device
        client_id = f"fer-edge-dashboard-{os.uname().nodename[:20]}-{uuid.uuid4().hex[:8]}"
        self.client = make_client(cfg.model_copy(update={"client_id": client_id}), "dashboard",
                                  Topics(cfg.prefix, "dashboard"))
        self.client.will_clear()               # the dashboard is not a device: no availability of its own
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> "Feed":
        """Connect in the background (returns at once; the page shows the broker's state)."""
        self.client.connect_async(self.cfg.host, self.port, self.cfg.keepalive_s)
        self.client.loop_start()
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def broker_view(self) -> dict[str, Any]:
        """The broker connection as the page shows it."""
        return {"t": "broker", "connected": self.connected, "address": self.address, "error": self.error,
                "since": self.since}

    # ---- paho's callbacks (its network thread) ----

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            hint = " - check the user name and password" if reason.value in (4, 5, 0x86, 0x87) else ""
            self._set_broker(False, f"broker {self.address} refused the connection: {reason}{hint}")
            self._log_trouble("dashboard: %s; retrying", self.error)
            return
        for topic in subscriptions(self.cfg.prefix):
            client.subscribe(topic, qos=1)
        log.info("dashboard: connected to %s, subscribed to %s/+/...", self.address, self.cfg.prefix)
        self._log_trouble.reset()
        self._set_broker(True, None)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        exc = sys.exc_info()[1]          # paho calls this from inside its `except OSError` block
        why = f"{type(exc).__name__}: {exc}" if exc else "connection failed"
        self._set_broker(False, f"cannot reach broker {self.address} ({why})")
        self._log_trouble("dashboard: %s; retrying", self.error)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.connected:
            self._set_broker(False, f"connection to {self.address} lost ({reason})")
            self._log_trouble("dashboard: %s; reconnecting", self.error)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            rejected = sum(self.fleet.rejected.values())
            change = self.fleet.ingest(msg.topic, bytes(msg.payload), bool(msg.retain))
            for device_id in self.fleet.evicted:
                self.broadcast({"t": "removed", "device": device_id})
            self.fleet.evicted.clear()
            if change is not None:
                change["rx"] = time.time()
                self.broadcast(change)
        if sum(self.fleet.rejected.values()) > rejected:
            self._log_rejected("dashboard: ignored a message: %s", self.fleet.last_rejection)

    def _set_broker(self, connected: bool, error: str | None) -> None:
        with self.lock:
            if connected != self.connected:
                self.since = time.time()
            self.connected, self.error = connected, error
            self.broadcast(self.broker_view())
