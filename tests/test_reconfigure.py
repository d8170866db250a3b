"""A config change, planned and carried out without a running service (edge/control/reconfigure.py)."""
from __future__ import annotations

import pytest

from edge.config import AppConfig, load_text
from edge.control.runtime import ApplyError
from edge.control.reconfigure import PersistError, apply_change, execute, plan_change


def cfg(text: str = "") -> AppConfig:
    return load_text(text).config


class FakeAnalyzer:
    closed = False

    def close(self) -> None:
        self.closed = True


class FakeSource:
    closed = False

    def close(self) -> None:
        self.closed = True


class FakeParts:
    def __init__(self, analyzer=None) -> None:
        self.analyzer, self.source, self.preview = analyzer or FakeAnalyzer(), FakeSource(), None


class Recorder:
    """Stands in for the service: records what execute() asks of it (edge.control.runtime.Runtime)."""

    def __init__(self, fail: str | None = None) -> None:
        self.parts, self.calls, self.fail = FakeParts(), [], fail

    def _call(self, name: str, *args) -> None:
        self.calls.append(name)
        if self.fail == name:
            raise ApplyError(f"{name} failed")

    def release_preview(self) -> None:
        self._call("release_preview")

    def build_parts(self, cfg, new_analyzer):
        self._call("build_parts")
        self.built = FakeParts(None if new_analyzer else self.parts.analyzer)
        return self.built

    def discard_parts(self, parts) -> None:
        parts.source.close()
        if parts.analyzer is not self.parts.analyzer:
            parts.analyzer.close()

    def reopen_sink(self, new, old) -> None:
        self._call("reopen_sink")

    def listen(self, cfg) -> None:
        self._call("listen")

    def swap_parts(self, parts) -> None:
        self._call("swap_parts")
        self.parts = parts

    def reconfigure_processor(self, cfg) -> None:
        self._call("reconfigure_processor")

    def set_cameras(self, current, removed) -> None:
        self._call("set_cameras")
        self.cameras = (current, removed)


def test_plan_names_what_each_change_needs():
    base = cfg()
    assert plan_change(base, base).changed == frozenset()
    live = plan_change(base, cfg("tracking: {min_hits: 2}"))
    assert live.reconfigure_processor and not live.restart_pipeline and not live.reopen_sink
    models = plan_change(base, cfg("detector: {type: haar}"))
    assert models.restart_pipeline and models.new_analyzer and not models.reconfigure_processor
    source = plan_change(base, cfg("source: {uri: clip.mp4}"))
    assert source.restart_pipeline and not source.new_analyzer
    events = plan_change(base, cfg("events: {aggregate_only: true}"))       # both the processor and the sink
    assert events.reconfigure_processor and events.reopen_sink
    assert plan_change(base, cfg("stats: {interval_s: 5}")).live_settings == {"stats"}
    assert plan_change(base, cfg("service: {remote_config: {enabled: true}}")).subscribe


def test_execute_builds_before_it_swaps_and_reuses_the_models_for_a_new_source():
    svc = Recorder()
    analyzer = svc.parts.analyzer
    actions = execute(plan_change(cfg(), cfg("source: {uri: clip.mp4}")), cfg(), cfg("source: {uri: clip.mp4}"), svc)
    assert svc.calls == ["build_parts", "swap_parts", "set_cameras"]      # the sink hears of the cameras last
    assert svc.parts.analyzer is analyzer and actions == ["pipeline restarted (source)"]
    assert svc.cameras[1] == []        # the same camera id, another source: nothing to retire


def test_a_sink_that_cannot_open_closes_the_new_parts_and_keeps_the_old():
    svc = Recorder(fail="reopen_sink")
    old_parts = svc.parts
    new = cfg("detector: {type: haar}\ndevice: {id: other}")
    with pytest.raises(ApplyError):
        execute(plan_change(cfg(), new), cfg(), new, svc)
    assert svc.calls == ["build_parts", "reopen_sink"] and svc.parts is old_parts
    assert not old_parts.source.closed and not old_parts.analyzer.closed
    assert svc.built.source.closed and svc.built.analyzer.closed


def test_a_failed_write_puts_the_old_config_back():
    svc = Recorder()
    new = cfg("tracking: {min_hits: 2}")

    def write() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(PersistError) as exc:
        apply_change(svc, cfg(), new, write)
    assert exc.value.cause.errno == 28
    assert svc.calls == ["reconfigure_processor", "reconfigure_processor"]      # there and back again
