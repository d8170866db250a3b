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
from edge.publish.discovery import availability_message, camera_messages
from edge.publish.topics import Topics


class EmotionMix:
    """Faces in view per camera and their current labels, kept up to date from events.

    face_appeared adds a face, emotion_changed relabels it, face_left removes it; summary events
    change nothing. The sink publishes :meth:`payload` whenever :meth:`update` reports a change.
    """

    def __init__(self) -> None:
        self._faces: dict[str, dict[int, tuple[str, float]]] = {}    # camera -> track -> (label, score)
        self._ts: dict[str, float] = {}

    def add_camera(self, camera: str) -> bool:
        """Know a camera before its first face (so its empty state is published); True if new."""
        if camera in self._faces:
            return False
        self._faces[camera] = {}
        self._ts[camera] = time.time()
        return True

    @property
    def cameras(self) -> list[str]:
        return list(self._faces)

    def update(self, event: Event) -> bool:
        """Apply one event; True when the camera's state changed."""
        if event.type == "summary" or event.track_id is None:
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
                "mix": {k: round(c / n, 4) for k, c in sorted(counts.items())}}


class RetainedState:
    """The retained per-camera state and discovery messages of one device, and what is still unsent.

    Thread-safe: events arrive from the pipeline thread, connections from paho's, sending happens
    on the sender thread.
    """

    def __init__(self, device: str, topics: Topics, homeassistant: HomeAssistantConfig,
                 cameras: Iterable[str] = ()) -> None:
        self.device, self.topics, self.ha_cfg = device, topics, homeassistant
        self._mix = EmotionMix()
        self._lock = threading.Lock()
        self._dirty: set[str] = set()          # cameras whose retained state must be (re)published
        self._announced: set[str] = set()      # cameras whose discovery config went out on this connection
        self._device_announced = False         # Home Assistant availability sensor sent on this connection
        for cam in cameras:
            self._mix.add_camera(cam)
            self._dirty.add(cam)

    def update(self, events: Iterable[Event]) -> bool:
        """Follow the events; True when some camera's state changed (it is then due to be sent)."""
        with self._lock:
            changed = {e.camera for e in events if self._mix.update(e)}
            self._dirty |= changed
        return bool(changed)

    def connected(self) -> None:
        """A new connection: every camera's state and every discovery message are due again."""
        with self._lock:
            self._announced.clear()
            self._device_announced = False
            self._dirty |= set(self._mix.cameras)

    def due(self) -> list[tuple[str, str]]:
        """The (topic, payload) messages to publish now, retained; each only once until due again."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            if not dirty:
                return []
            msgs: list[tuple[str, dict[str, Any]]] = []
            if self.ha_cfg.enabled:
                if not self._device_announced:
                    msgs.append(availability_message(self.ha_cfg, self.device, self.topics.status))
                    self._device_announced = True
                for camera in sorted(dirty - self._announced):
                    msgs += camera_messages(self.ha_cfg, self.device, camera, self.topics.state(camera),
                                            self.topics.status)
                    self._announced.add(camera)
            msgs += [(self.topics.state(camera), self._mix.payload(camera, self.device)) for camera in sorted(dirty)]
        return [(topic, compact_json(payload)) for topic, payload in msgs]
