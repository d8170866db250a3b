"""The `auto` camera profile: one detector that is fast at a kiosk and still finds far faces in a room.

A kiosk camera sees one or two faces within arm's length; a shop, lobby or ceiling camera sees many
faces 20-100 px high. The kiosk pass (BlazeFace short-range over the whole frame, ~1-2 ms) finds
the first kind only; the room search (BlazeFace full-range over the frame and its tiles, ~100-250 ms
for 1280x720 on one core) finds both. ``ProfileDetector`` runs the kiosk pass and adds the room
search only when it is needed:

- the kiosk pass found nobody (an empty kiosk, or a room whose faces are all small);
- a face too small for the kiosk pass was found within the last ``room_hold_s`` (a room camera
  stays on the room search while people are in view);
- ``room_probe_s`` passed since the last room search (far faces behind a near one).

Times are the frames' timestamps (media time for files, wall clock for cameras), so a file gives
the same detections every run. They are kept per camera: one detector serves every camera of a
service (edge/cameras/), and a crowd camera's far faces must not put a kiosk camera on the room search.
"""
from __future__ import annotations

import time

import numpy as np

from edge.config.detector import DetectorSection
from edge.detect.base import FaceDetector
from edge.types import Detection

#: A face narrower than this share of the frame's longer side is beyond the kiosk pass (short-range
#: BlazeFace sees faces down to about a seventh of it).
FAR_FRACTION = 1 / 7


class ProfileDetector:
    """Kiosk pass first, the room search when needed (see the module docstring)."""

    def __init__(self, kiosk: FaceDetector, room: FaceDetector, cfg: DetectorSection) -> None:
        self.kiosk, self.room, self.cfg = kiosk, room, cfg
        self.detector_id = f"{kiosk.detector_id}+auto:{room.detector_id}"   # starts with the backend, as others
        self.mode = "kiosk"                  # which search gave the last answer: kiosk | room
        self.room_runs = 0                   # room searches so far (for benchmarks and stats)
        self._last_room: dict[str, float] = {}   # camera -> time of its last room search
        self._last_far: dict[str, float] = {}    # camera -> time it last showed a face beyond the kiosk pass

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR image, timed by the wall clock (``detect_at`` takes a frame's timestamp)."""
        return self.detect_at(image, time.monotonic())

    def detect_at(self, image: np.ndarray, t: float, camera: str = "", profile: str | None = None) -> list[Detection]:
        """Faces in a BGR image taken at time ``t`` (seconds) by ``camera``, largest first.

        ``profile``: the camera's own (`cameras[].profile`): `kiosk` runs the kiosk pass only,
        `room` the room search only, `auto` (default: the section's) decides as described above.
        """
        profile = profile or self.cfg.profile
        if profile == "kiosk":
            self.mode = "kiosk"
            return self.kiosk.detect(image)
        if profile == "room":
            self.mode = "room"
            self.room_runs += 1
            return self.room.detect(image)
        last_room = self._last_room.setdefault(camera, t)   # the first probe comes room_probe_s after the start
        last_far = self._last_far.get(camera)
        holding = last_far is not None and t - last_far <= self.cfg.room_hold_s
        near: list[Detection] = []
        if not holding:
            near = self.kiosk.detect(image)
            probe_due = self.cfg.room_probe_s > 0 and t - last_room >= self.cfg.room_probe_s
            if near and not probe_due:
                self.mode = "kiosk"
                return near
        found = self.room.detect(image)
        self.room_runs += 1
        self._last_room[camera] = t
        far_px = max(image.shape[:2]) * FAR_FRACTION
        if any(d.box[2] < far_px for d in found):
            self._last_far[camera] = t
        self.mode = "room"
        # the room search covers near faces too (its whole-frame pass); keep the kiosk answer if it saw more
        return found if len(found) >= len(near) else near
