"""The delivery window: which queued events are in flight at the broker, in order, and when they leave the queue.

The MQTT sink's sender thread owns one :class:`DeliveryWindow`. It hands paho at most ``window``
unacknowledged events, always in sequence order from the durable queue, and deletes events from
the queue in batches once the broker acknowledged them. After a lost connection paho re-sends its
unacknowledged messages first; the window publishes nothing newer until those are acknowledged
(``resync``), so order holds. Nothing here touches the network except ``publish``, given by the sink.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from edge.publish.queue import EventQueue

#: publish(payload) -> (paho message id, written): what the sink gives the window to send one event
Publish = Callable[[bytes], "tuple[int, bool]"]


class DeliveryWindow:
    """Events handed to paho and not yet acknowledged, and acknowledged ones not yet deleted from the queue."""

    def __init__(self, queue: EventQueue, window: int) -> None:
        self.queue = queue
        self.window = window          # events in flight at most (lowered by an MQTT 5 broker's limit)
        self.sent = 0                 # events acknowledged since start
        self.resync = False           # after a lost connection: wait until paho re-sent the in-flight ones
        self._inflight: dict[int, int] = {}    # mid -> seq, in publish order
        self._cursor = 0                       # highest seq handed to paho
        self._acked: list[int] = []            # acknowledged, not yet deleted from the queue
        self._last_delete = time.monotonic()
        self._last_retry = 0.0

    def retry_queue(self) -> None:
        """Events held in memory while the queue file refused writes: try to store them about once a second."""
        now = time.monotonic()
        if (self.queue.held or self.queue.last_error) and now - self._last_retry >= 1.0:
            self._last_retry = now
            self.queue.retry()

    def apply_acks(self, acks: Iterable[int], connected: bool) -> None:
        """Count the acknowledged message ids; delete their events from the queue in batches."""
        done = [self._inflight.pop(mid) for mid in acks if mid in self._inflight]
        self._acked.extend(done)
        self.sent += len(done)
        # Delete acknowledged events in batches (one commit each): a crash before the commit only
        # means those events are sent once more, with their ids, which at-least-once allows.
        if self._acked and (len(self._acked) >= 64 or not self._inflight
                            or time.monotonic() - self._last_delete > 0.2):
            self.flush_acked()
        if self.resync and not self._inflight and connected:
            self.resync = False

    def flush_acked(self) -> None:
        """Delete every acknowledged event from the queue (one transaction)."""
        acked, self._acked = self._acked, []
        self.queue.remove(acked)
        self._last_delete = time.monotonic()

    def restart(self) -> None:
        """Forget what is in flight: it is sent again from the queue (at least once, with its ids).

        For QoS 0 messages cut off by a disconnect, and for a new paho client whose message ids
        mean nothing to the old one.
        """
        self.flush_acked()
        self._inflight.clear()
        self._cursor = 0
        self.resync = False

    def fill(self, publish: Publish, connected: Callable[[], bool]) -> bool:
        """Hand paho the next events up to the window; True when more may be waiting in the queue."""
        if self.resync:
            return False      # paho is re-sending older events; newer ones wait so that order holds
        room = self.window - len(self._inflight)
        if room <= 0:
            return False
        rows = self.queue.peek(self._cursor, room)
        for row in rows:
            if not connected() or self.resync:
                return False
            mid, written = publish(row.payload)
            if not written:
                return False      # QoS 0, not written: sent again from the cursor after reconnecting
            self._inflight[mid] = row.seq
            self._cursor = row.seq
        return len(rows) == room
