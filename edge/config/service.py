"""Sections `service`, `stats` and `logging`: how the long-running service behaves (edge/service/)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from edge.config.base import ENV_NAME, StrictModel


class WatchdogConfig(StrictModel):
    """When the service counts as stuck (then it stops the systemd watchdog pings)."""

    stall_timeout_s: float = Field(20.0, gt=0, le=3600,
                                   description="Seconds without a processed frame (or a loop pass while "
                                               "idle) after which WATCHDOG pings stop and systemd "
                                               "restarts the service")


class RemoteConfigConfig(StrictModel):
    """Remote configuration over MQTT (``<topic>/config/set`` -> ``<topic>/config/state``)."""

    enabled: bool = Field(False, description="Subscribe to config/set and apply valid documents")
    max_payload_bytes: int = Field(65536, ge=256, le=1 << 20,
                                   description="Larger config messages are rejected unread (with MQTT 5 the "
                                               "broker is told to drop them: they never reach the device)")
    require_signature: bool = Field(False, description="Reject messages without a valid HMAC-SHA256 "
                                                       "signature line (see docs/config.md)")
    secret_env: str = Field("FER_EDGE_CONFIG_SECRET", pattern=rf"^{ENV_NAME}$",
                            description="Environment variable holding the shared HMAC secret")
    probation_s: float = Field(60.0, ge=1, le=3600,
                               description="A remote change of device, mqtt, queue, homeassistant or source must "
                                           "prove itself within this many seconds (broker connected, a frame "
                                           "processed), else the previous config comes back; the running "
                                           "config's value counts, not the message's")


class ServiceConfig(StrictModel):
    """The long-running service: watchdog, remote config, config backups, shutdown."""

    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig, description="Stall detection")
    remote_config: RemoteConfigConfig = Field(default_factory=RemoteConfigConfig,
                                              description="Remote configuration over MQTT")
    backups: int = Field(3, ge=0, le=20, description="Unused (kept so that existing files stay valid): the "
                                                     "service never writes the config file; remote changes "
                                                     "are saved in its state directory")
    stop_timeout_s: float = Field(5.0, gt=0, le=60, description="On SIGTERM: seconds allowed to stop "
                                                                 "capture and flush the event queue")


class StatsConfig(StrictModel):
    """Periodic statistics (fps, faces, per-stage timings, queue depth)."""

    interval_s: float = Field(60.0, ge=0, le=86400,
                              description="Seconds between stats messages and STATUS updates (0: off)")


class LoggingConfig(StrictModel):
    """Log output (to stderr, which systemd sends to the journal)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Least severe level logged")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value
