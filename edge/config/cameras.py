"""Section `cameras`: several cameras in one service, each a `source` plus per-camera overrides.

`source:` alone stays valid and means one camera. With `cameras:`, each entry holds what `source`
holds (uri, kind, name, reopen and stall settings) and may override the sections that make sense
per camera: `quality` (which faces are classified), `schedule` (detect_every, classify_hz,
max_lag_s) and the detector's `profile` (kiosk, room or auto). The face detector and the emotion
model are loaded once and shared by all cameras (edge/cameras/): cameras of different profiles share
one detector that holds both searches, and each camera runs its own.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from edge.config.quality import QualityConfig
from edge.config.schedule import ScheduleConfig
from edge.config.source import SourceConfig

#: Sections a camera entry may override; the rest of its config is the file's.
CAMERA_OVERRIDES = ("quality", "schedule")


class CameraConfig(SourceConfig):
    """One entry of `cameras`: a source (as in section `source`) and its own overrides."""

    enabled: bool = Field(True, description="false: this camera is not opened (kept in the file, off).")
    quality: QualityConfig | None = Field(None, description="This camera's quality gates (empty: section "
                                          "`quality`), e.g. a far crowd camera with a lower min_face_px.")
    schedule: ScheduleConfig | None = Field(None, description="This camera's schedule (empty: section "
                                            "`schedule`), e.g. a lower classify_hz for a busy camera.")
    profile: Literal["auto", "kiosk", "room"] | None = Field(None, description="This camera's detector profile "
                                                             "(empty: detector.profile), e.g. `kiosk` for a "
                                                             "counter camera, `room` for a ceiling camera.")

    def source(self) -> SourceConfig:
        """The entry's source settings alone (what section `source` would hold for it)."""
        return SourceConfig(**self.model_dump(include=set(SourceConfig.model_fields)))


def camera_problems(cameras: list[CameraConfig], source_set: bool) -> list[str]:
    """What is wrong with a `cameras` list, one line each (empty when it is fine)."""
    problems = []
    if cameras and source_set:
        problems.append("give either `source` (one camera) or `cameras` (a list), not both: move the `source` "
                        "entry into `cameras`")
    seen: set[str] = set()
    for i, cam in enumerate(cameras):
        if cam.name in seen:
            problems.append(f"cameras[{i}].name {cam.name!r} is used twice: each camera needs its own name "
                            "(it is the camera id in events and in the topic state/<camera>)")
        seen.add(cam.name)
    if cameras and not any(cam.enabled for cam in cameras):
        problems.append("every camera has enabled: false: enable one, or the service has nothing to read")
    return problems


def camera_overrides(cam: CameraConfig) -> dict[str, Any]:
    """The sections ``cam`` overrides, by name, plus its source: an update for ``AppConfig.model_copy``."""
    update: dict[str, Any] = {"source": cam.source(), "cameras": []}
    for name in CAMERA_OVERRIDES:
        value = getattr(cam, name)
        if value is not None:
            update[name] = value
    return update
