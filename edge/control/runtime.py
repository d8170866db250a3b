"""The one interface between the control plane and the running service.

The control plane (edge/control/plane.py) decides which config runs; the service
(edge/service/supervisor.py) owns the threads, the pipeline parts and the sink. Everything the
control plane asks of the service is a method of :class:`Runtime`: build parts, swap them, reopen
the sink, reconfigure the processor, publish a retained answer, and say how the pipeline is doing
(for a change on probation). The parts are opaque here: the control plane never looks inside them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from edge.config import AppConfig


class ApplyError(RuntimeError):
    """A valid config that could not be put in place (model missing, queue file locked...)."""


@dataclass(frozen=True)
class Progress:
    """What a change on probation is judged by: frames processed, the broker link, the last errors."""

    frames: int                       # frames processed so far (all time)
    connected: bool                   # the sink is connected to its broker
    sink_error: str | None = None     # the sink's last connection error
    source_error: str | None = None   # the source's last error (why no frame came)


class Runtime(Protocol):
    """What the control plane needs of the running service (implemented by ``Service``)."""

    def build_parts(self, cfg: AppConfig, new_analyzer: bool) -> Any:
        """New pipeline parts for ``cfg`` (the running models reused unless ``new_analyzer``); ApplyError if not."""

    def discard_parts(self, parts: Any) -> None:
        """Close parts that were built but will not run (the running models stay open)."""

    def release_preview(self) -> None:
        """Close the running preview server (its port may be the one the new one wants)."""

    def swap_parts(self, parts: Any) -> None:
        """Stop the pipeline thread, end the old parts' tracks, start again with ``parts``."""

    def reconfigure_processor(self, cfg: AppConfig) -> None:
        """Apply processor settings between two frames; ApplyError if the pipeline is stuck."""

    def reopen_sink(self, new: AppConfig, old: AppConfig) -> None:
        """Close the sink and open one for ``new``; on ApplyError the one for ``old`` is open again."""

    def listen(self, cfg: AppConfig) -> None:
        """Subscribe the open sink to the control topics of ``cfg`` (remote config turned on)."""

    def set_cameras(self, current: list[str], removed: list[str]) -> None:
        """Tell the sink which cameras run now (removed ones lose their retained state and entities)."""

    def publish_retained(self, subtopic: str, payload: dict[str, Any]) -> None:
        """Keep ``payload`` retained on ``<prefix>/<device>/<subtopic>`` (config/state, model/state)."""

    def progress(self) -> Progress:
        """Frames processed, broker link and last errors, for a change on probation."""

    def config_applied(self, cfg: AppConfig) -> None:
        """A new config runs: log level and status line follow it."""
