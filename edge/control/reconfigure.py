"""A config change on a running service: changed sections -> a :class:`Plan` -> its execution.

Changes are applied by section: tracking, quality, schedule and events reconfigure the frame
processor between two frames (the faces in view keep their tracks); device, mqtt, queue,
homeassistant and events reopen the sink (the queue file keeps what was not sent); source,
detector, align, model and preview restart the pipeline thread with new parts.

:func:`plan_change` is pure (two configs in, what must happen out); :func:`execute` carries a plan
out through the :class:`~edge.control.runtime.Runtime` interface (the service, or a recording stand-in
in tests), building everything new before the old is let go, so a failure leaves the old running.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from edge.config import AppConfig
from edge.control.runtime import ApplyError, Runtime

log = logging.getLogger("edge.service")

#: Which sections each part of the running service depends on.
ANALYZER_SECTIONS = frozenset({"detector", "align", "model"})
PIPELINE_SECTIONS = frozenset({"source", "cameras", "preview"}) | ANALYZER_SECTIONS
PROCESSOR_SECTIONS = frozenset({"tracking", "quality", "schedule", "events"})
SINK_SECTIONS = frozenset({"device", "mqtt", "queue", "homeassistant", "events"})


@dataclass(frozen=True)
class Plan:
    """What a config change needs, from the sections that differ."""

    changed: frozenset[str]
    subscribe: bool = False           # remote config turned on while the sink stays
    detector_searches: bool = False   # the cameras' profiles need other searches of the shared detector

    @property
    def restart_pipeline(self) -> bool:
        """New source, preview or models: a new pipeline thread with new parts."""
        return bool(self.changed & PIPELINE_SECTIONS)

    @property
    def new_analyzer(self) -> bool:
        """The models change (else a restarted pipeline reuses the running analyzer)."""
        return bool(self.changed & ANALYZER_SECTIONS) or self.detector_searches

    @property
    def reconfigure_processor(self) -> bool:
        """Only processor settings change: applied between two frames, the faces keep their tracks."""
        return not self.restart_pipeline and bool(self.changed & PROCESSOR_SECTIONS)

    @property
    def reopen_sink(self) -> bool:
        """The sink is closed and opened again (the queue file keeps what was not sent)."""
        return bool(self.changed & SINK_SECTIONS)

    @property
    def live_settings(self) -> frozenset[str]:
        """Sections read afresh where they are used (stats, logging, service): nothing to rebuild."""
        return self.changed - PIPELINE_SECTIONS - PROCESSOR_SECTIONS - SINK_SECTIONS


def plan_change(old: AppConfig, new: AppConfig) -> Plan:
    """The plan that puts ``new`` in place of ``old``."""
    changed = frozenset(name for name in AppConfig.model_fields if getattr(old, name) != getattr(new, name))
    subscribe = new.service.remote_config.enabled and not old.service.remote_config.enabled
    searches = "cameras" in changed and old.shared_detector().profile != new.shared_detector().profile
    return Plan(changed, subscribe=subscribe, detector_searches=searches)


def execute(plan: Plan, old: AppConfig, new: AppConfig, target: Runtime) -> list[str]:
    """Carry out ``plan``; the actions taken, for the log. ApplyError leaves ``old`` running."""
    actions: list[str] = []
    parts = None
    # 1. Build what is new before touching what runs (models may be missing, ports taken).
    if plan.restart_pipeline:
        if "preview" in plan.changed:
            target.release_preview()
        parts = target.build_parts(new, plan.new_analyzer)
    # 2. The sink: the queue file allows one user, so the old one closes first.
    if plan.reopen_sink:
        try:
            target.reopen_sink(new, old)
        except ApplyError:
            if parts is not None:
                target.discard_parts(parts)
            raise
        actions.append("sink reopened")
    elif plan.subscribe:
        target.listen(new)
    # 3. Swap the pipeline parts, or reconfigure the processor in place.
    if parts is not None:
        target.swap_parts(parts)
        actions.append("pipeline restarted (" + ", ".join(sorted(plan.changed & PIPELINE_SECTIONS)) + ")")
    elif plan.reconfigure_processor:
        target.reconfigure_processor(new)
        actions.append("processor reconfigured live (" + ", ".join(sorted(plan.changed & PROCESSOR_SECTIONS)) + ")")
    if plan.live_settings:
        actions.append("settings updated live (" + ", ".join(sorted(plan.live_settings)) + ")")
    if plan.changed & {"source", "cameras"}:
        current = [c.source.name for c in new.camera_configs()]
        removed = [c.source.name for c in old.camera_configs() if c.source.name not in current]
        target.set_cameras(current, removed)
        if removed:
            actions.append("cameras retired (" + ", ".join(removed) + ")")
    return actions


class PersistError(ApplyError):
    """The new config ran, but its file could not be written: the previous config was put back."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def apply_change(target: Runtime, old: AppConfig, new: AppConfig,
                 write: Callable[[], None] | None = None) -> list[str]:
    """Put ``new`` in place of ``old``, then ``write()`` it to disk (when given); the actions taken.

    ApplyError: ``old`` still runs. PersistError: the write failed (OSError) and ``old`` was put
    back, so what runs and what is on disk agree.
    """
    actions = execute(plan_change(old, new), old, new, target)
    if write is not None:
        try:
            write()
        except OSError as exc:
            try:
                execute(plan_change(new, old), new, old, target)
            except ApplyError as back:
                log.error("and the previous config could not be put back: %s", back)
            raise PersistError(exc) from None
    return actions
