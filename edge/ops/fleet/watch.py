"""`fer-edge fleet events`: follow every device's events, each printed once.

Delivery is at least once (a device re-sends what the broker did not acknowledge before a lost
connection), so the same event can arrive twice; it keeps its ``id``, and this command prints the
first copy only. The ids seen are remembered in a bounded set (the newest 100 000).
"""
from __future__ import annotations

import json
import queue
import sys
import time
from collections import OrderedDict

from edge.ops.fleet.operator import Broker, Connection
from edge.formatting import compact_json

REMEMBER = 100_000


class Deduplicator:
    """True the first time an id is seen (within the last ``size`` ids), False after."""

    def __init__(self, size: int = REMEMBER) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def first(self, event_id: str) -> bool:
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            self.duplicates += 1
            return False
        self._seen[event_id] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


def follow_events(broker: Broker, device: str = "+", count: int = 0, timeout: float = 0.0,
                  session: str | None = None) -> int:
    """Print each distinct event as a JSON line until ``count`` events or ``timeout`` s (0: forever)."""
    got: queue.Queue[bytes] = queue.Queue()
    conn = Connection(broker) if session is None else _persistent(broker, session)
    try:
        conn.subscribe(f"{broker.prefix}/{device}/events", lambda _t, p, _r: got.put(p), qos=1)
        seen = Deduplicator()
        printed = 0
        deadline = time.monotonic() + timeout if timeout else None
        while not count or printed < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                payload = got.get(timeout=min(left, 0.5) if left is not None else 0.5)
            except queue.Empty:
                continue
            try:
                event = json.loads(payload)
            except ValueError:
                continue
            key = event.get("id") or f"{event.get('device')}:{event.get('seq')}"
            if seen.first(str(key)):
                sys.stdout.write(compact_json(event) + "\n")
                sys.stdout.flush()
                printed += 1
        if seen.duplicates:
            print(f"fer-edge fleet events: {seen.duplicates} duplicate(s) dropped", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()
    return 0


def _persistent(broker: Broker, session: str) -> Connection:
    # a fixed client id and clean_session=False: the broker keeps QoS 1 events while we are away
    return Connection(broker, client_id=f"fer-edge-fleet-{session}", clean_session=False)
