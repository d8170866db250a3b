"""The current emotion mix per camera, derived from the event stream (retained `state/<camera>` topic)."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

from edge.events import SCHEMA_VERSION, Event, iso_utc


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
