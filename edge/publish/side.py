"""A sink's side channel: retained messages and subscriptions that every connection gets again.

The control plane keeps ``config/state``, ``config/layers`` and ``model/state`` retained and listens
on ``config/set`` and ``model/set`` (edge/control/); the duplicate-id alarm is retained too. The
main thread adds them at any time, while paho's network thread may be connecting: ``connected``
sends the whole set under the lock and marks the connection live there, so a message stored at any
moment goes out once, and never before an older copy of itself. Marking the connection live only
after ``on_connect`` returned once lost a ``config/state`` stored in between until the next
reconnection.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import paho.mqtt.client as paho

# status, state, discovery and other retained messages are re-sent on every connection, so QoS 0
# loses nothing that matters, and it keeps them out of the broker's receive quota (mosquitto allows
# 20 unacknowledged QoS>0 messages per client and drops a client that exceeds it with QoS 2 events).
SIDE_QOS = 0


class SideChannel:
    """Retained messages by topic and message callbacks by topic, for the sink's current paho client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retained: dict[str, bytes] = {}
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._client: paho.Client | None = None
        self._live = False              # the current connection has had the retained set

    def attach(self, client: paho.Client) -> None:
        """Use ``client`` from now on (not yet connected); a subscription added meanwhile lands on it."""
        with self._lock:
            for topic, callback in self._subscriptions.items():
                client.message_callback_add(topic, _deliver(callback))
            self._client, self._live = client, False

    def keep(self, topic: str, data: bytes) -> None:
        """Keep ``data`` retained on ``topic``: sent now where the connection is live, and on every connection."""
        with self._lock:
            self._retained[topic] = data
            if self._live and self._client is not None:
                self._client.publish(topic, data, qos=SIDE_QOS, retain=True)   # paho only queues it

    def subscribe(self, topic: str, callback: Callable[[bytes], None]) -> None:
        """Call ``callback(payload)`` (in paho's thread) for messages on ``topic``, on this and later connections."""
        with self._lock:
            self._subscriptions[topic] = callback
            client = self._client
            if client is not None:
                client.message_callback_add(topic, _deliver(callback))
        # Always: `connected` may have walked the list just before the line above; while not connected
        # paho only answers MQTT_ERR_NO_CONN (and `connected` subscribes).
        if client is not None:
            client.subscribe(topic, qos=1)

    def connected(self, client: paho.Client) -> None:
        """paho's thread, on a new connection: subscribe, then send the retained set and go live."""
        with self._lock:
            topics = list(self._subscriptions)
        for topic in topics:     # before the retained ones: whoever sees config/state can send config/set
            client.subscribe(topic, qos=1)
        with self._lock:
            for topic, data in self._retained.items():
                client.publish(topic, data, qos=SIDE_QOS, retain=True)
            self._live = True

    def lost(self) -> None:
        """The connection ended (or is being closed): nothing more until the next ``connected``."""
        with self._lock:
            self._live = False


def _deliver(callback: Callable[[bytes], None]) -> Callable[[paho.Client, Any, Any], None]:
    """A paho message callback that hands ``callback`` the payload only."""
    return lambda _client, _userdata, msg: callback(msg.payload)
