"""Per-stage wall time of the frame pipeline: the one list of stages and the one timer."""
from __future__ import annotations

import time

#: The stages of a processed frame, in the order they run (stats and benchmarks report these).
STAGES = ("detect", "track", "align", "classify", "events")


def lap_ms(start: float) -> float:
    """Milliseconds since ``start`` (a :func:`time.perf_counter` value)."""
    return (time.perf_counter() - start) * 1000.0


class StageClock:
    """Per-stage wall time: the last call's ms and running totals (for means in stats and benchmarks).

    A stage appears once it has been timed, so a clock shows only the stages its owner runs.
    """

    def __init__(self) -> None:
        self.last_ms: dict[str, float] = {}
        self.total_ms: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add_ms(self, stage: str, ms: float) -> None:
        """Count one call of ``stage`` that took ``ms`` milliseconds."""
        self.last_ms[stage] = ms
        self.total_ms[stage] = self.total_ms.get(stage, 0.0) + ms
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def add(self, stage: str, seconds: float) -> None:
        """Count one call of ``stage`` that took ``seconds``."""
        self.add_ms(stage, seconds * 1000.0)

    def mean_ms(self) -> dict[str, float]:
        """Mean ms per call of each stage that has run, in :data:`STAGES` order (others after)."""
        order = [s for s in STAGES if s in self.calls] + [s for s in self.calls if s not in STAGES]
        return {s: self.total_ms[s] / self.calls[s] for s in order if self.calls[s]}

    def reset(self) -> None:
        """Forget everything timed so far."""
        self.last_ms, self.total_ms, self.calls = {}, {}, {}
