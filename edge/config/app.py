"""The whole config file: :class:`AppConfig`, one field per section, each section typed in its own module."""
from __future__ import annotations

from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, Field, model_validator

from edge.config.align import AlignConfig
from edge.config.base import StrictModel
from edge.config.cameras import CameraConfig, camera_overrides, camera_problems
from edge.config.detector import DetectorConfig
from edge.config.device import DeviceConfig
from edge.config.events import EventsConfig
from edge.config.homeassistant import HomeAssistantConfig
from edge.config.model import ModelConfig
from edge.config.mqtt import MqttConfig
from edge.config.preview import PreviewConfig
from edge.config.quality import QualityConfig
from edge.config.queue import QueueConfig
from edge.config.schedule import ScheduleConfig
from edge.config.service import LoggingConfig, ServiceConfig, StatsConfig
from edge.config.source import SourceConfig
from edge.config.tracking import TrackingConfig


class AppConfig(StrictModel):
    """fer-edge configuration: every section has defaults, so an empty document is a valid config."""

    device: DeviceConfig = Field(default_factory=DeviceConfig, description="Device identity")
    source: SourceConfig = Field(default_factory=SourceConfig, description="Where frames come from")
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=16,
                                        description="Several cameras in one service, each a `source` with its own "
                                                    "overrides (edge/config/cameras.py); empty: `source` is the one "
                                                    "camera")
    detector: DetectorConfig = Field(default_factory=lambda: _default_of(DetectorConfig),
                                     description="Face detector (chosen by `type`)")
    align: AlignConfig = Field(default_factory=AlignConfig, description="Face alignment and crop")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Emotion model")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="Face quality gates")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Tracking and smoothing")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="What runs on which frame")
    preview: PreviewConfig = Field(default_factory=PreviewConfig, description="Annotated preview")
    events: EventsConfig = Field(default_factory=EventsConfig, description="Which events are emitted")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT connection and topics")
    queue: QueueConfig = Field(default_factory=QueueConfig, description="Durable event queue")
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig,
                                               description="Home Assistant MQTT discovery")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="Service behaviour")
    stats: StatsConfig = Field(default_factory=StatsConfig, description="Periodic statistics")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging")

    @model_validator(mode="after")
    def _cameras_fit(self) -> "AppConfig":
        problems = camera_problems(self.cameras, "source" in self.model_fields_set)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def camera_configs(self) -> list["AppConfig"]:
        """One config per enabled camera: its source and overrides in place ([self] when `cameras` is empty)."""
        if not self.cameras:
            return [self]
        return [self.model_copy(update={**camera_overrides(cam), **self._camera_detector(cam)})
                for cam in self.cameras if cam.enabled]

    def _camera_detector(self, cam: CameraConfig) -> dict[str, Any]:
        """The detector section with ``cam``'s profile, when it has one of its own."""
        if cam.profile is None or cam.profile == self.detector.profile:
            return {}
        return {"detector": self.detector.model_copy(update={"profile": cam.profile})}

    def shared_detector(self) -> DetectorConfig:
        """The detector section the one shared detector is built with: the searches every camera needs.

        Cameras of one profile: that profile. Of several: `auto`, which holds the kiosk pass and
        the room search, and each camera runs the one its profile names.
        """
        profiles = {cam.detector.profile for cam in self.camera_configs()}
        profile = profiles.pop() if len(profiles) == 1 else "auto"
        return self.detector if profile == self.detector.profile else \
            self.detector.model_copy(update={"profile": profile})


def _default_of(annotation: Any) -> Any:
    """Default instance of a section type that may be a (discriminated) union: its first member."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation()
    for arg in get_args(annotation):
        try:
            return _default_of(arg)
        except TypeError:
            continue
    raise TypeError(f"no default for {annotation!r}")


def section_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models in a field's type: itself, or the members of a (discriminated) union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) is not None or isinstance(annotation, type(Union[int, str])):
        return [m for arg in get_args(annotation) for m in section_models(arg)]
    return []
