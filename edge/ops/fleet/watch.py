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

from edge.ops.fleet.operator import Broker, Connection, Fleet
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
                  session: str | None = None, group: str | None = None, types: set[str] | None = None,
                  readable: bool = False) -> int:
    """Print each distinct event until ``count`` events or ``timeout`` s (0: forever): a JSON line each, or with
    ``readable`` one line for people. ``group`` keeps the devices that list it, ``types`` those event types."""
    got: queue.Queue[bytes] = queue.Queue()
    conn = Connection(broker) if session is None else _persistent(broker, session)
    try:
        fleet = None
        if group or readable:            # names and groups come from the devices' retained messages
            fleet = Fleet(conn)
            fleet.settle()
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
            if not isinstance(event, dict) or (types and event.get("type") not in types):
                continue
            if group and fleet is not None and event.get("device") not in fleet.members(group):
                continue
            key = event.get("id") or f"{event.get('device')}:{event.get('seq')}"
            if seen.first(str(key)):
                sys.stdout.write((readable_line(event, fleet) if readable else compact_json(event)) + "\n")
                sys.stdout.flush()
                printed += 1
        if seen.duplicates:
            print(f"fer-edge fleet events: {seen.duplicates} duplicate(s) dropped", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()
    return 0


def readable_line(event: dict, fleet: Fleet | None = None) -> str:
    """``18:43:30  Lobby kiosk (lobby-cam-1) cam0  face #3 appeared: happiness 81%`` (local time)."""
    epoch = event.get("epoch")
    when = time.strftime("%H:%M:%S", time.localtime(epoch)) if isinstance(epoch, (int, float)) else "--:--:--"
    dev = str(event.get("device") or "?")
    view = fleet.devices.get(dev) if fleet is not None else None
    who = f"{view.name} ({dev})" if view is not None and view.name != dev else dev
    kind, track = event.get("type"), f"#{event.get('track_id')}"
    label, score = event.get("label"), event.get("score")
    pct = f" {round(score * 100)}%" if isinstance(score, (int, float)) else ""
    if kind == "face_appeared":
        what = f"face {track} appeared" + (f": {label}{pct}" if label else "")
    elif kind == "emotion_changed":
        what = f"face {track} {event.get('previous_label') or 'unread'} -> {label}{pct}"
    elif kind == "face_left":
        dwell = event.get("duration_s")
        what = f"face {track} left" + (f" after {dwell:.1f} s" if isinstance(dwell, (int, float)) else "")
    elif kind == "summary":
        s = event.get("summary") or {}
        secs = s.get("seconds") or {}
        total = sum(v for v in secs.values() if isinstance(v, (int, float)))
        mix = ", ".join(f"{k} {round(100 * v / total)}%" for k, v in sorted(secs.items(), key=lambda kv: -kv[1])
                        if total and v) or "no face"
        what = f"summary of {s.get('interval_s', '?')} s: {s.get('faces', 0)} face(s); {mix}"
    else:
        what = str(kind)
    return f"{when}  {who} {event.get('camera', '')}  {what}"


def _persistent(broker: Broker, session: str) -> Connection:
    # a fixed client id and clean_session=False: the broker keeps QoS 1 events while we are away
    return Connection(broker, client_id=f"fer-edge-fleet-{session}", clean_session=False)
