"""Probation of a remote config change that touches the sink or the source.

A remote message can cut a device off: a broker it cannot reach, a camera that does not open. Such
a change runs on probation: it must prove itself within ``service.remote_config.probation_s`` -
the broker connected (when the sink changed) and a frame processed (when the source changed).
Until then nothing is saved; if it does not, the service puts the previous config back, running,
and reports why on ``config/state`` (which reaches the broker once the old connection is back).

This module only decides; the service applies, saves and rolls back (edge/control/plane.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Sections whose change can cut the device off: the sink (broker, topics, queue) and the source.
SINK_SECTIONS = frozenset({"device", "mqtt", "queue", "homeassistant"})
SOURCE_SECTIONS = frozenset({"source", "cameras"})   # cameras: every camera must deliver a frame
WAITING, PASSED = "waiting", "passed"


@dataclass(frozen=True)
class Needs:
    """What a change must show before it counts as good."""

    broker: bool = False          # the (new) sink connected to its broker
    frames: bool = False          # the (new) source delivered a frame that was processed

    def __bool__(self) -> bool:
        return self.broker or self.frames


def needs_for(changed: set[str] | frozenset[str]) -> Needs:
    """The proofs a change of the ``changed`` sections must give (falsy: no probation)."""
    return Needs(broker=bool(changed & SINK_SECTIONS), frames=bool(changed & SOURCE_SECTIONS))


@dataclass
class Probation:
    """One change on probation: what must be shown, until when, and what comes back if it is not."""

    needs: Needs
    started: float                # time.monotonic() when applied
    timeout_s: float
    frames_at_start: int
    previous: Any                 # the LoadedConfig to put back
    version: str                  # the version on probation
    context: dict[str, Any] = field(default_factory=dict)   # the caller's: signed message, commit hook...

    @property
    def deadline(self) -> float:
        return self.started + self.timeout_s

    def verdict(self, now: float, connected: bool, frames: int) -> str:
        """``passed``, ``waiting``, or the reason it failed (once the deadline has passed)."""
        missing = self.missing(connected, frames)
        if not missing:
            return PASSED
        if now < self.deadline:
            return WAITING
        return "; ".join(missing)

    def missing(self, connected: bool, frames: int) -> list[str]:
        """What has not been shown yet (short phrases)."""
        out = []
        if self.needs.broker and not connected:
            out.append("the broker was not connected")
        if self.needs.frames and frames <= self.frames_at_start:
            out.append("no frame arrived from the source")
        return out


def failure_text(probation: Probation, reason: str, sink_error: str | None, source_error: str | None) -> str:
    """The one line published on config/state for a change that was rolled back."""
    details = [d for d in (sink_error if probation.needs.broker else None,
                           source_error if probation.needs.frames else None) if d]
    tail = f" ({'; '.join(details)})" if details else ""
    return (f"rolled back: version {probation.version[:12]} did not prove itself within "
            f"{probation.timeout_s:g} s (service.remote_config.probation_s): {reason}{tail}; the previous "
            "config runs again")
