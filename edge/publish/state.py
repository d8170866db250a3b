"""What the retained per-camera topics say: the emotion mix (`state/<camera>`) and Home Assistant discovery.

:class:`EmotionMix` follows the event stream; :class:`RetainedState` knows which cameras changed
and which discovery messages a connection still needs, and hands the sender the messages to
publish (the builders of the discovery messages are in edge/publish/discovery.py).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from edge.config.homeassistant import HomeAssistantConfig
from edge.events import SCHEMA_VERSION, Event, iso_utc
from edge.formatting import compact_json
from edge.publish.discovery import Announced, camera_messages, device_messages
from edge.publish.topics import Topics

#: a camera's retained state is published at most once per this many seconds (the first at once, and the
#: newest state always follows): a crowd changing it several times a second must not churn Home
#: Assistant's recorder or the dashboards
STATE_MIN_INTERVAL_S = 2.0
#: removed cameras whose retained topics are emptied on every connection (the oldest are forgotten)
MAX_RETIRED = 64


class EmotionMix:
    """Faces in view per camera and their current labels, kept up to date from events.

    face_appeared adds a face, emotion_changed relabels it, face_left removes it; a summary sets the
    camera's ``share`` (each emotion's % of the face-time over its interval; ``emotions`` are listed
    even at 0) and ``people`` (distinct faces it counted). The sink publishes :meth:`payload` whenever
    :meth:`update` reports a change. :meth:`lag` is how old each camera's newest event is.
    """

    def __init__(self, emotions: Iterable[str] = ()) -> None:
        self._faces: dict[str, dict[int, tuple[str, float]]] = {}    # camera -> track -> (label, score)
        self._ts: dict[str, float] = {}
        self._newest: dict[str, float] = {}                          # camera -> newest event's time
        self._summary: dict[str, dict[str, Any]] = {}                # camera -> share, people, interval_s
        self.emotions = tuple(emotions)

    def newest(self) -> float:
        """The newest event's time of any camera (0 before the first)."""
        return max(self._newest.values(), default=0.0)

    def add_camera(self, camera: str) -> bool:
        """Know a camera before its first face (so its empty state is published); True if new."""
        if camera in self._faces:
            return False
        self._faces[camera] = {}
        self._ts[camera] = time.time()
        return True

    def remove_camera(self, camera: str) -> bool:
        """Forget a camera the service no longer runs; True if it was known."""
        known = camera in self._faces
        for table in (self._faces, self._ts, self._newest, self._summary):
            table.pop(camera, None)
        return known

    @property
    def cameras(self) -> list[str]:
        return list(self._faces)

    def update(self, event: Event) -> bool:
        """Apply one event; True when the camera's state changed."""
        self._newest[event.camera] = max(self._newest.get(event.camera, 0.0), event.ts)
        if event.type == "summary" and event.summary is not None:
            self.add_camera(event.camera)
            seconds = {k: v for k, v in event.summary.seconds.items() if v > 0}
            total = sum(seconds.values())
            share = {k: 0.0 for k in self.emotions}
            share.update({k: round(100.0 * v / total, 1) for k, v in seconds.items()} if total else {})
            self._summary[event.camera] = {"share": share if total else None, "people": event.summary.faces,
                                           "interval_s": round(event.summary.interval_s, 3)}
            return True
        if event.track_id is None:
            return False
        self.add_camera(event.camera)
        faces = self._faces[event.camera]
        before = faces.get(event.track_id)
        if event.type == "face_left":
            faces.pop(event.track_id, None)
        else:
            faces[event.track_id] = (event.label or "unknown", float(event.score or 0.0))
        self._ts[event.camera] = event.ts
        after = faces.get(event.track_id)
        return (before and before[0]) != (after and after[0])

    def payload(self, camera: str, device: str) -> dict[str, Any]:
        """The retained state message of one camera (schema edge/schemas/state.schema.json)."""
        faces = self._faces.get(camera, {})
        counts = Counter(label for label, _ in faces.values())
        weight = Counter()
        for label, score in faces.values():
            weight[label] += score
        # Most faces wins; a tie goes to the label with the higher summed confidence, then by name.
        dominant = max(counts, key=lambda k: (counts[k], weight[k], k)) if counts else None
        n = len(faces)
        ts = self._ts.get(camera, time.time())
        return {"v": SCHEMA_VERSION, "device": device, "camera": camera, "ts": iso_utc(ts), "epoch": round(ts, 3),
                "faces": n, "dominant": dominant, "counts": dict(sorted(counts.items())),
                "mix": {k: round(c / n, 4) for k, c in sorted(counts.items())}, **self._summary.get(camera, {})}

    def lag(self, now: float) -> dict[str, float]:
        """Seconds since each camera's newest event or summary (event time): how far it is behind real time."""
        return {cam: round(max(0.0, now - t), 1) for cam, t in self._newest.items()}


class RetainedState:
    """The retained per-camera state and discovery messages of one device, and what is still unsent.

    Thread-safe: events arrive from the pipeline thread, connections from paho's, sending happens
    on the sender thread.
    """

    def __init__(self, device: str, topics: Topics, homeassistant: HomeAssistantConfig,
                 cameras: Iterable[str] = (), who: Announced = Announced(),
                 min_interval_s: float = STATE_MIN_INTERVAL_S) -> None:
        self.device, self.topics, self.ha_cfg, self.who = device, topics, homeassistant, who
        self.min_interval_s = min_interval_s
        self._mix = EmotionMix(who.emotions)
        self._sent: dict[str, float] = {}       # camera -> time.monotonic() its state was last published
        self._lock = threading.Lock()
        self._dirty: set[str] = set()          # cameras whose retained state must be (re)published
        self._announced: set[str] = set()      # cameras whose discovery config went out on this connection
        self._device_announced = False         # Home Assistant availability sensor sent on this connection
        self._retired: dict[str, list[str]] = {}   # removed camera -> its retained topics, emptied on each connection
        self._retire_due = False
        for cam in cameras:
            self._mix.add_camera(cam)
            self._dirty.add(cam)

    def update(self, events: Iterable[Event]) -> bool:
        """Follow the events; True when some camera's state changed (it is then due to be sent)."""
        with self._lock:
            changed = {e.camera for e in events if self._mix.update(e)}
            self._dirty |= changed
        return bool(changed)

    def newest_event_ts(self) -> float:
        """The time of the newest event followed: `stopped` is not stamped before it (a video's media time runs ahead)."""
        with self._lock:
            return self._mix.newest()

    def set_cameras(self, current: Iterable[str], removed: Iterable[str]) -> None:
        """The cameras the service runs now: new ones are announced, removed ones retired.

        A retired camera's retained state and Home Assistant discovery configs are emptied (an empty
        retained message deletes it; Home Assistant then removes the entities), and emptied again
        on every later connection, in case the broker was away or a stale copy comes back.
        """
        with self._lock:
            for camera in removed:
                if self._mix.remove_camera(camera):
                    self._dirty.discard(camera)
                    self._announced.discard(camera)
                    discovery = camera_messages(self.ha_cfg, self.device, camera, "", "", self.who) \
                        if self.ha_cfg.enabled else []
                    self._retired[camera] = [self.topics.state(camera)] + [topic for topic, _ in discovery]
            for camera in current:
                self._retired.pop(camera, None)
                if self._mix.add_camera(camera):
                    self._dirty.add(camera)
            while len(self._retired) > MAX_RETIRED:
                self._retired.pop(next(iter(self._retired)))
            self._retire_due = bool(self._retired)

    def connected(self) -> None:
        """A new connection: every camera's state and every discovery message are due again, at once."""
        with self._lock:
            self._retire_due = bool(self._retired)
            self._announced.clear()
            self._device_announced = False
            self._sent.clear()
            self._dirty |= set(self._mix.cameras)

    def lag(self) -> dict[str, float]:
        """Seconds since each camera's newest event (the stats message's ``lag_s``)."""
        with self._lock:
            return self._mix.lag(time.time())

    def due(self) -> list[tuple[str, str]]:
        """The (topic, payload) messages to publish now, retained; each only once until due again.

        A camera published less than ``min_interval_s`` ago waits (it stays due; the sender looks again
        within half a second), so its newest state goes out at a bounded rate.
        """
        now = time.monotonic()
        with self._lock:
            retire = [(topic, "") for topics in self._retired.values() for topic in topics] if self._retire_due else []
            self._retire_due = False
            dirty = {c for c in self._dirty if now - self._sent.get(c, -1e9) >= self.min_interval_s}
            self._dirty -= dirty
            if not dirty:
                return retire
            for camera in dirty:
                self._sent[camera] = now
            msgs: list[tuple[str, dict[str, Any]]] = []
            if self.ha_cfg.enabled:
                if not self._device_announced:
                    msgs += device_messages(self.ha_cfg, self.device, self.topics.status, self.who)
                    self._device_announced = True
                for camera in sorted(dirty - self._announced):
                    msgs += camera_messages(self.ha_cfg, self.device, camera, self.topics.state(camera),
                                            self.topics.status, self.who)
                    self._announced.add(camera)
            msgs += [(self.topics.state(camera), self._mix.payload(camera, self.device)) for camera in sorted(dirty)]
        return retire + [(topic, compact_json(payload)) for topic, payload in msgs]
