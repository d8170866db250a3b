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

Which config runs, and every change to it (SIGHUP, ``<prefix>/<device>/config/set``, model
updates), is the control plane's business (:mod:`edge.control.plane`): it talks to this service
through :class:`~edge.control.runtime.Runtime` only (build parts, swap them, reopen the sink,
reconfigure the processor). The parts the pipeline thread runs with: :mod:`edge.service.parts`;
health and stats: :mod:`edge.service.health`.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from functools import partial
from pathlib import Path
from types import FrameType

from edge.cameras import CameraSet
from edge.config import AppConfig, ConfigError
from edge.control.plane import ControlPlane, RollbackFailed
from edge.control.runtime import ApplyError, Progress
from edge.events import Event
from edge.exitcodes import EXIT_FAILED, EXIT_MODEL, EXIT_OK, EXIT_USAGE
from edge.frame_processor import FrameResult
from edge.preview import MjpegServer, annotate
from edge.publish import EventSink
from edge.service.health import ProgressWatch, collect_stats, status_line
from edge.service.notify import Notifier, watchdog_interval
from edge.service.parts import Parts, build_parts, close_parts, open_sink
from edge.security import security_warnings
from edge.service.state_lock import hold_state_directory
from edge.service.worker import PipelineThread
from edge.sources import Source
from edge.types import Frame

log = logging.getLogger("edge.service")

TICK_S = 0.5                  # the main loop's longest sleep (watchdog pings need a finer one)


class Service:
    """``fer-edge run``: the main loop. ``run()`` returns the process exit code.

    Threads, signals, the systemd watchdog and stats; the parts and the sink it runs with. It is the
    :class:`~edge.control.runtime.Runtime` of its control plane (``self.control``).
    """

    def __init__(self, cfg_path: str | Path | None, notifier: Notifier | None = None, *, demo: bool = False) -> None:
        self.path = Path(cfg_path) if cfg_path is not None else None     # None: the built-in defaults
        self.demo = demo                        # --demo: the built-in clip instead of the configured source
        self.notifier = notifier or Notifier()
        self.control = ControlPlane(self.path, self, wake=self._wake_up)
        self.parts: Parts | None = None
        self.sink: EventSink | None = None
        self._sink_lock = threading.Lock()      # held while publishing and while the sink is swapped
        self._frame_lock = threading.Lock()     # held by the pipeline thread for each frame
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._worker: PipelineThread | None = None
        self.watch = ProgressWatch(time.monotonic())
        self._frames = 0                        # frames processed (all time)
        self._faces_in_view = 0
        self._startup_error: str | None = None  # e.g. "config.yaml invalid; running config.yaml.1"

    @property
    def cfg(self) -> AppConfig:
        """The running config."""
        return self.control.config

    def _wake_up(self) -> None:
        self._wake.set()

    def start(self) -> None:
        """Load the config (falling back to the newest good backup), build the parts, start the pipeline.

        Raises ConfigError when no config file is usable, ApplyError when the parts cannot be built.
        """
        self.notifier.status("starting")
        fallback = self.control.load()
        self._state_lock = hold_state_directory(self.cfg.device.id)    # one service per state directory
        self._startup_error = self.control.open() or fallback
        _set_log_level(self.cfg)
        for warning in security_warnings(self.cfg):
            log.warning("security: %s", warning)
        parts = self.build_parts(self.cfg)
        try:
            self.sink = open_sink(self.cfg)
        except ApplyError:
            close_parts(parts)
            raise
        self.parts = parts
        self.listen(self.cfg)
        self._start_worker()
        self.control.publish_state(self._startup_error, status="startup")
        self.notifier.ready(self._status_line())
        running = self.control.running
        log.info("running: %s -> %s; config %s (version %s)", parts.source.describe(),
                 type(self.sink).__name__, running.source, running.version[:12])

    def _start_worker(self) -> None:
        assert self.parts is not None
        self.watch.restart(time.monotonic())
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
        self.watch.moved(time.monotonic())
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
            if self._reload_requested and not self.control.busy:      # a probation ends first
                self._reload_requested = False
                self._reload_from_file()
            self.control.handle_pending()
            try:
                self.control.tick(time.monotonic())
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
        healthy, status = self.watch.check(now, source, self.cfg.service.watchdog.stall_timeout_s)
        if status is not None:
            self.notifier.status(status or self._status_line())
        return healthy

    def _stats_interval(self) -> float:
        interval = self.cfg.stats.interval_s
        return interval if interval > 0 else float("inf")

    def _publish_stats(self) -> None:
        stats = collect_stats(self._frames, self._faces_in_view, self._version(), self.parts, self._frame_lock,
                              self.cfg.device)
        assert self.sink is not None
        with self._sink_lock:
            self.sink.publish_stats(stats)
        self.notifier.status(self._status_line(stats.get("input_fps")))

    def _status_line(self, fps: float | None = None) -> str:
        # Delivery trouble (queue file not writable, duplicate device id) goes first: it is what
        # `systemctl status` must show while frames keep being processed.
        return status_line(self._frames, self._faces_in_view, self._version(), fps,
                           self.sink.problem() if self.sink is not None else None)

    def _version(self) -> str | None:
        return self.control.running.version if self.control.running else None

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

    def shutdown(self) -> None:
        """Stop capture, emit the last events, flush the queue, close. Bounded by service.stop_timeout_s."""
        budget = self.cfg.service.stop_timeout_s if self.control.running else 5.0
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

    def _reload_from_file(self) -> None:
        """SIGHUP: the control plane loads the file again; on any problem what runs now keeps running."""
        self.notifier.reloading()
        self.control.reload()
        self.notifier.ready(self._status_line())

    # ---- edge.control.runtime.Runtime: what the control plane asks of the service ----

    def progress(self) -> Progress:
        """Frames processed, broker link and last errors (a change on probation is judged by them)."""
        sink = self.sink
        source = self.parts.source if self.parts is not None else None
        # several cameras: a change proves itself once every camera has delivered (CameraSet.fewest_frames)
        frames = source.fewest_frames() if isinstance(source, CameraSet) else self._frames
        return Progress(frames, sink is not None and sink.connected, sink.last_error if sink else None,
                        source.stats.last_error if source is not None else None)

    def config_applied(self, cfg: AppConfig) -> None:
        """A new config runs: the log level and the status line follow it."""
        _set_log_level(cfg)
        self.notifier.status(self._status_line())

    def listen(self, cfg: AppConfig) -> None:
        """The control plane subscribes the open sink to its topics (when ``cfg`` enables remote config)."""
        if self.sink is not None:
            self.control.listen(self.sink, cfg)

    def set_cameras(self, current: list[str], removed: list[str]) -> None:
        """The control plane's word on which cameras run now, passed to the sink."""
        with self._sink_lock:
            if self.sink is not None:
                self.sink.set_cameras(current, removed)

    def release_preview(self) -> None:
        """Close the running preview server: its port may be the one the new server wants."""
        if self.parts is not None and self.parts.preview is not None:
            self.parts.preview.close()
            self.parts.preview = None

    def build_parts(self, cfg: AppConfig, new_analyzer: bool = True) -> Parts:
        """New parts for ``cfg`` (ApplyError if they cannot be built); with ``demo``, its source is the demo.

        Unless ``new_analyzer``, they share the running parts' analyzer (the models stay loaded).
        """
        reuse = self.parts.analyzer if not new_analyzer and self.parts is not None else None
        return build_parts(cfg, reuse_analyzer=reuse, demo=self.demo)

    def discard_parts(self, parts: Parts) -> None:
        """Close parts built for a change that was not put in place (a shared analyzer stays open)."""
        close_parts(parts, keep_analyzer=self.parts is not None and parts.analyzer is self.parts.analyzer)

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
                self.listen(old)
                raise
        self.listen(new)

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

    def publish_retained(self, subtopic: str, payload: dict[str, object]) -> None:
        """Keep ``payload`` retained on ``<prefix>/<device>/<subtopic>`` (the control plane's config/state)."""
        if self.sink is not None:
            with self._sink_lock:
                self.sink.publish_retained(subtopic, payload)


def _set_log_level(cfg: AppConfig) -> None:
    logging.getLogger().setLevel(cfg.logging.level)


def _publish_preview(server: MjpegServer, frame: Frame, result: FrameResult, cfg: AppConfig) -> None:
    # Annotating is a copy and a few boxes: cheap next to detection; JPEG encoding, the costly
    # part, happens in the server only while someone watches.
    server.publish(annotate(frame.image, result.tracks, cfg.preview))
