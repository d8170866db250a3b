"""The long-running service: source -> FrameProcessor -> sink, supervised by systemd.

Two threads do the work:

* the **pipeline thread** reads frames from the source, runs :class:`~edge.frame_processor.FrameProcessor`
  on each, and hands the events to the sink (durable queue + MQTT, or stdout);
* the **main thread** supervises: it answers signals (SIGTERM/SIGINT stop, SIGHUP reloads the
  config file), applies remote config messages, publishes stats, and talks to systemd
  (READY, STATUS, and WATCHDOG only while the pipeline makes progress).

The pipeline stays in its own thread so that a stuck camera read or a hung model call can
neither block shutdown nor fake liveness: the main thread keeps running, sees that no frame was
processed for ``service.watchdog.stall_timeout_s``, and stops the WATCHDOG pings; systemd then
kills and restarts the service (``WatchdogSec=`` in systemd/fer-edge.service).

Config changes (SIGHUP or ``<prefix>/<device>/config/set``) are applied by section
(:mod:`edge.service.reconfigure`); remote messages go through :mod:`edge.service.changes`
(signatures, replays, probation; saved in the state directory, never in the local file). Any
failure puts the previous config back, running, and the outcome is published, retained, on
``config/state``. The parts the pipeline thread
runs with: :mod:`edge.service.parts`; health and stats: :mod:`edge.service.health`.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType

from edge.config import AppConfig, ConfigError, LoadedConfig, load_file
from edge.fleet import agent as fleet_agent
from edge.events import Event
from edge.exitcodes import EXIT_FAILED, EXIT_MODEL, EXIT_OK, EXIT_USAGE
from edge.face_analyzer import FaceAnalyzer
from edge.formatting import one_line
from edge.frame_processor import FrameResult
from edge.preview import MjpegServer, annotate
from edge.publish import EventSink, StdoutSink
from edge.service.health import ProgressWatch, collect_stats, status_line
from edge.service.notify import Notifier, watchdog_interval
from edge.service.parts import ApplyError, Parts, build_parts, close_parts, open_sink
from edge.security import security_warnings
from edge.service.changes import (RemoteChanges, RollbackFailed, TooLarge, config_state, open_remote_changes,
                                  put_in_place)
from edge.service.remote_config import ConfigInbox, load_with_fallback
from edge.service.state_lock import hold_state_directory
from edge.service.worker import PipelineThread
from edge.sources import Source
from edge.types import Frame

log = logging.getLogger("edge.service")

TICK_S = 0.5                  # the main loop's longest sleep (watchdog pings need a finer one)
MAX_PENDING_MESSAGES = 8      # config messages waiting to be applied; more are rejected as 'busy'


class Service:
    """``fer-edge run``: the main loop. ``run()`` returns the process exit code."""

    def __init__(self, cfg_path: str | Path, notifier: Notifier | None = None, *, demo: bool = False) -> None:
        self.path = Path(cfg_path)
        self.demo = demo                        # --demo: the built-in clip instead of the configured source
        self.notifier = notifier or Notifier()
        self.loaded: LoadedConfig | None = None
        self.base: LoadedConfig | None = None   # the local file; self.loaded = it + the remote layers
        self.changes: RemoteChanges | None = None
        self.parts: Parts | None = None
        self.sink: EventSink | None = None
        self._sink_lock = threading.Lock()      # held while publishing and while the sink is swapped
        self._frame_lock = threading.Lock()     # held by the pipeline thread for each frame
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._inbox = ConfigInbox(MAX_PENDING_MESSAGES)
        self._worker: PipelineThread | None = None
        self.progress = ProgressWatch(time.monotonic())
        self._frames = 0                        # frames processed (all time)
        self._faces_in_view = 0
        self._startup_error: str | None = None  # e.g. "config.yaml invalid; running config.yaml.1"

    @property
    def cfg(self) -> AppConfig:
        assert self.loaded is not None
        return self.loaded.config

    def start(self) -> None:
        """Load the config (falling back to the newest good backup), build the parts, start the pipeline.

        Raises ConfigError when no config file is usable, ApplyError when the parts cannot be built.
        """
        self.notifier.status("starting")
        self.base, self._startup_error = load_with_fallback(self.path)
        self._state_lock = hold_state_directory(self.base.config.device.id)    # one service per state directory
        self.changes, problem = open_remote_changes(self, self.path, self.base.config.device.id)
        self.loaded = self.changes.fleet.running(self.base)
        self._startup_error = self.changes.recover() or problem or self._startup_error
        _set_log_level(self.cfg)
        for warning in security_warnings(self.cfg):
            log.warning("security: %s", warning)
        parts = self.build_parts(self.cfg, None)
        try:
            self.sink = open_sink(self.cfg)
        except ApplyError:
            close_parts(parts)
            raise
        self.parts = parts
        self.subscribe(self.cfg)
        self._start_worker()
        self.publish_config_state(self._startup_error, status="startup")
        self.notifier.ready(self._status_line())
        log.info("running: %s -> %s; config %s (version %s)", parts.source.describe(),
                 type(self.sink).__name__, self.loaded.source, self.loaded.version[:12])

    def subscribe(self, cfg: AppConfig) -> None:
        """Take config messages from the sink when ``cfg`` enables remote config (MQTT only)."""
        rc = cfg.service.remote_config
        if not rc.enabled or self.sink is None:
            return
        sink = self.sink
        if isinstance(sink, StdoutSink):
            log.warning("service.remote_config.enabled, but MQTT is not configured (mqtt.host): "
                        "remote config is off")
            return
        fleet_agent.subscribe_fleet(self, sink, cfg)      # config/set of the device and its groups, model/set

    def _start_worker(self) -> None:
        assert self.parts is not None
        self.progress.restart(time.monotonic())
        source = self.parts.source
        self._worker = PipelineThread(source, partial(self._process, source), self._wake).start()

    def _process(self, source: Source, frame: Frame) -> bool:
        """One frame of ``source``'s pipeline thread (under the frame lock); False when its parts were replaced."""
        with self._frame_lock:
            parts = self.parts
            if parts is None or parts.source is not source:
                return False
            result = parts.processor.process(frame, time.time() if source.live else None)
            if parts.preview is not None:
                _publish_preview(parts.preview, frame, result, self.cfg)
            if result.events:
                assert self.sink is not None
                with self._sink_lock:
                    self.sink.publish_all(result.events)
            self._frames += 1
            self._faces_in_view = len(result.tracks)
        self.progress.moved(time.monotonic())
        return True

    def _stop_worker(self, timeout: float) -> bool:
        """Stop the pipeline thread and its source; False when it did not finish within ``timeout``."""
        worker, self._worker = self._worker, None
        if worker is None:
            if self.parts is not None:
                self.parts.source.close()
            return True
        return worker.stop(timeout)

    def run(self) -> int:
        """Start, supervise until SIGTERM/SIGINT (or a file source ends), stop. Returns the exit code."""
        self._install_signals()
        try:
            self.start()
        except ConfigError as exc:
            log.error("no usable config:\n%s", exc)
            self.notifier.status(f"config error: {str(exc).splitlines()[0]}")
            return EXIT_USAGE
        except ApplyError as exc:
            log.error("%s", exc)
            self.notifier.status(str(exc))
            if self.sink is not None:
                self.sink.close(1.0)
            return EXIT_MODEL
        code = EXIT_OK
        ping_every = watchdog_interval()
        next_ping = 0.0
        next_stats = time.monotonic() + self._stats_interval()
        while not self._stop_requested:
            self._wake.wait(min(TICK_S, ping_every or TICK_S))
            self._wake.clear()
            if self._stop_requested:
                break
            if self._reload_requested and not self.changes.busy:      # a probation ends first
                self._reload_requested = False
                self._reload_from_file()
            self._apply_pending_messages()
            fleet_agent.tick(self)
            try:
                self.changes.tick(time.monotonic())
            except RollbackFailed as exc:
                log.error("stopping: %s", exc)
                code = EXIT_FAILED
                break
            worker = self._worker
            if worker is not None and worker.error is not None:
                log.error("stopping: the pipeline failed (%s); systemd restarts the service", worker.error)
                code = EXIT_FAILED
                break
            if worker is not None and worker.ended:
                log.info("the source ended (%s frames); stopping", self._frames)
                break
            now = time.monotonic()
            healthy = self._check_progress(now)
            if ping_every and healthy and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + ping_every
            if now >= next_stats:
                self._publish_stats()
                next_stats = now + self._stats_interval()
        self.shutdown()
        return code

    def _check_progress(self, now: float) -> bool:
        """True while the pipeline made progress recently enough to keep the watchdog fed."""
        source = self.parts.source if self.parts else None
        healthy, status = self.progress.check(now, source, self.cfg.service.watchdog.stall_timeout_s)
        if status is not None:
            self.notifier.status(status or self._status_line())
        return healthy

    def _stats_interval(self) -> float:
        interval = self.cfg.stats.interval_s
        return interval if interval > 0 else float("inf")

    def _publish_stats(self) -> None:
        stats = collect_stats(self._frames, self._faces_in_view, self.loaded.version if self.loaded else None,
                              self.parts, self._frame_lock, self.cfg.device)
        assert self.sink is not None
        with self._sink_lock:
            self.sink.publish_stats(stats)
        self.notifier.status(self._status_line(stats.get("input_fps")))

    def _status_line(self, fps: float | None = None) -> str:
        # Delivery trouble (queue file not writable, duplicate device id) goes first: it is what
        # `systemctl status` must show while frames keep being processed.
        return status_line(self._frames, self._faces_in_view, self.loaded.version if self.loaded else None, fps,
                           self.sink.problem() if self.sink is not None else None)


    def _install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self._stop_requested = True
            self._wake.set()

        def reload(signum: int, _frame: FrameType | None) -> None:
            self._reload_requested = True
            self._wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def request_stop(self) -> None:
        """Stop the main loop (as SIGTERM does), from any thread."""
        self._stop_requested = True
        self._wake.set()

    def shutdown(self) -> None:
        """Stop capture, emit the last events, flush the queue, close. Bounded by service.stop_timeout_s."""
        budget = self.cfg.service.stop_timeout_s if self.loaded else 5.0
        deadline = time.monotonic() + budget
        self.notifier.stopping()
        self.notifier.status("stopping")
        stopped = self._stop_worker(timeout=min(2.0, budget / 2))
        if self.parts is not None:
            if stopped:
                self._emit(self.parts.processor.close())     # face_left for faces still in view, last summary
            close_parts(self.parts)
        if self.sink is not None:
            with self._sink_lock:
                self.sink.close(max(0.5, deadline - time.monotonic()))
        log.info("stopped after %d frames", self._frames)

    def _emit(self, events: list[Event]) -> None:
        if events and self.sink is not None:
            with self._sink_lock:
                self.sink.publish_all(events)

    @property
    def frames(self) -> int:
        """Frames processed so far (all time)."""
        return self._frames

    def on_config_message(self, payload: bytes, layer: str = fleet_agent.DEVICE_LAYER) -> None:
        """paho's thread: hand a message for ``layer`` over (a too-large one unread); publishing here could deadlock."""
        too_large = len(payload) > self.cfg.service.remote_config.max_payload_bytes
        self._inbox.put(layer, TooLarge(len(payload)) if too_large else bytes(payload))
        self._wake.set()

    def _apply_pending_messages(self) -> None:
        dropped = self._inbox.dropped()
        if dropped:
            log.error("%d config messages dropped: more than %d were waiting", dropped, MAX_PENDING_MESSAGES)
            self.publish_config_state(f"busy: {dropped} config message(s) dropped unread; send again later",
                                      status="rejected")
        while not self.changes.busy:                 # during a probation, messages wait in the inbox
            item = self._inbox.next()
            if item is None:
                return
            self.changes.handle(item[1], item[0])

    def _reload_from_file(self) -> bool:
        """SIGHUP: load the file again; on any problem keep running what runs now."""
        self.notifier.reloading()
        try:
            self.base = load_file(self.path)
            loaded = self.changes.fleet.running(self.base)
        except ConfigError as exc:
            log.error("reload (SIGHUP) rejected, still running version %s:\n%s", self.loaded.version[:12], exc)
            self.publish_config_state(one_line(exc), status="rejected", origin="file")
            self.notifier.ready(self._status_line())
            return False
        origin = f"{self.path} (SIGHUP)"
        try:
            self.apply_config(loaded, origin)
            self.publish_config_state(None, status="applied", origin="file")
        except ApplyError as exc:
            log.error("config from %s not applied, still running version %s: %s", origin, self.loaded.version[:12], exc)
            self.publish_config_state(f"not applied: {exc}", status="rejected", origin="file")
        self.notifier.ready(self._status_line())
        return self.loaded is loaded

    def apply_config(self, new: LoadedConfig, origin: str, save: Callable[[], None] | None = None) -> list[str]:
        """Put ``new`` in place, then ``save()`` it (when given): edge.service.changes.put_in_place."""
        actions = put_in_place(self, new, origin, save)
        self.changes.fleet.device_id = new.config.device.id
        _set_log_level(new.config)
        self.notifier.status(self._status_line())
        return actions

    # ---- what edge.service.reconfigure.execute uses (reconfigure.Reconfigurable) ----

    def release_preview(self) -> None:
        """Close the running preview server: its port may be the one the new server wants."""
        if self.parts is not None and self.parts.preview is not None:
            self.parts.preview.close()
            self.parts.preview = None

    def build_parts(self, cfg: AppConfig, reuse_analyzer: FaceAnalyzer | None) -> Parts:
        """New parts for ``cfg`` (ApplyError if they cannot be built); with ``demo``, its source is the demo."""
        return build_parts(cfg, reuse_analyzer=reuse_analyzer, demo=self.demo)

    def reopen_sink(self, new: AppConfig, old: AppConfig) -> None:
        """Close the sink, open one for ``new``; on failure the one for ``old`` is open again (ApplyError)."""
        with self._sink_lock:
            assert self.sink is not None
            # Same broker and status topic: say nothing (the new connection renews `online`), or a
            # dashboard sees stopped -> online for a change that never took the device away.
            same_topic = (new.mqtt.host, new.mqtt.port, new.mqtt.prefix, new.device.id) == \
                (old.mqtt.host, old.mqtt.port, old.mqtt.prefix, old.device.id)
            self.sink.close(1.0, status=None if same_topic else "stopped")
            try:
                self.sink = open_sink(new)
            except ApplyError:
                self.sink = open_sink(old)
                self.subscribe(old)
                raise
        self.subscribe(new)

    def swap_parts(self, parts: Parts) -> None:
        """Stop the pipeline thread, end the old parts' tracks (face_left, summary), start with ``parts``."""
        old_parts = self.parts
        assert old_parts is not None
        self._stop_worker(timeout=2.0)
        self._emit(old_parts.processor.close())
        close_parts(old_parts, keep_analyzer=parts.analyzer is old_parts.analyzer)
        self.parts = parts
        self._start_worker()

    def reconfigure_processor(self, cfg: AppConfig) -> None:
        """Apply processor settings between two frames: the faces in view keep their tracks."""
        assert self.parts is not None
        if not self._frame_lock.acquire(timeout=5.0):
            raise ApplyError("the pipeline is stuck in a frame; not applied")
        try:
            self.parts.processor.reconfigure(cfg)
        finally:
            self._frame_lock.release()

    def publish_config_state(self, error: str | None, **fields: object) -> None:
        """Retained ``config/state``: the running version, the last error (or null), and ``fields``."""
        payload = config_state(self.loaded, self.base, self.changes, error, **fields)
        if self.sink is not None:
            with self._sink_lock:
                self.sink.publish_retained("config/state", payload)


def _set_log_level(cfg: AppConfig) -> None:
    logging.getLogger().setLevel(cfg.logging.level)


def _publish_preview(server: MjpegServer, frame: Frame, result: FrameResult, cfg: AppConfig) -> None:
    # Annotating is a copy and a few boxes: cheap next to detection; JPEG encoding, the costly
    # part, happens in the server only while someone watches.
    server.publish(annotate(frame.image, result.tracks, cfg.preview))
