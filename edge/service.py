"""The long-running service: source -> FrameProcessor -> sink, supervised by systemd.

Two threads do the work:

* the **pipeline thread** reads frames from the source, runs :class:`~edge.schedule.FrameProcessor`
  on each, and hands the events to the sink (durable queue + MQTT, or stdout);
* the **main thread** supervises: it answers signals (SIGTERM/SIGINT stop, SIGHUP reloads the
  config file), applies remote config messages, publishes stats, and talks to systemd
  (READY, STATUS, and WATCHDOG only while the pipeline makes progress).

The pipeline stays in its own thread so that a stuck camera read or a hung model call can
neither block shutdown nor fake liveness: the main thread keeps running, sees that no frame was
processed for ``service.watchdog.stall_timeout_s``, and stops the WATCHDOG pings; systemd then
kills and restarts the service (``WatchdogSec=`` in systemd/fer-edge.service).

Config changes (SIGHUP or ``<prefix>/<device>/config/set``) are applied by section: tracking,
quality, schedule and events reconfigure the frame processor between two frames (the faces in
view keep their tracks); device, mqtt, queue, homeassistant and events reopen the sink (the queue
file keeps what was not sent); source,
detector, align, model and preview restart the pipeline thread with new parts. Everything new is
built before the old is let go where possible, and any failure puts the previous config back,
both running and on disk. The outcome is published, retained, on ``config/state``.
"""
from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import AppConfig, ConfigError, LoadedConfig, load_file
from edge.notify import Notifier, watchdog_interval
from edge.remote_config import backup_path, prepare_update, write_config

log = logging.getLogger(__name__)

#: Which sections each part of the running service depends on.
ANALYZER_SECTIONS = frozenset({"detector", "align", "model"})
PIPELINE_SECTIONS = frozenset({"source", "preview"}) | ANALYZER_SECTIONS
PROCESSOR_SECTIONS = frozenset({"tracking", "quality", "schedule", "events"})
SINK_SECTIONS = frozenset({"device", "mqtt", "queue", "homeassistant", "events"})

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_MODEL = 0, 1, 2, 3
TICK_S = 0.5                  # the main loop's longest sleep (watchdog pings need a finer one)
MAX_PENDING_MESSAGES = 8      # config messages waiting to be applied; more are rejected as 'busy'


class ApplyError(RuntimeError):
    """A valid config that could not be put in place (model missing, queue file locked...)."""


class _MediaClock:
    """Maps a file's media time to epoch seconds: the wall clock at the first frame plus media time.

    Keeps time increasing when a looping file starts again at media time 0.
    """

    def __init__(self) -> None:
        self._offset: float | None = None
        self._last = float("-inf")

    def epoch(self, media_ts: float) -> float:
        if self._offset is None:
            self._offset = time.time() - media_ts
        ts = self._offset + media_ts
        if ts <= self._last:          # the file started again (loop): continue from the last frame
            self._offset = self._last + 0.04 - media_ts
            ts = self._offset + media_ts
        self._last = ts
        return ts


@dataclass
class Parts:
    """What the pipeline thread uses; replaced as a whole or in part on a config change."""

    analyzer: Any                 # edge.pipeline.FaceAnalyzer
    processor: Any                # edge.schedule.FrameProcessor
    source: Any = None            # edge.sources.Source (one per pipeline thread: a closed one cannot reopen)
    preview: Any = None           # edge.preview.MjpegServer, when preview.mjpeg.enabled


class Service:
    """``fer-edge run``: the main loop. ``run()`` returns the process exit code."""

    def __init__(self, cfg_path: str | Path, notifier: Notifier | None = None) -> None:
        self.path = Path(cfg_path)
        self.notifier = notifier or Notifier()
        self.loaded: LoadedConfig | None = None
        self.parts: Parts | None = None
        self.sink: Any = None
        self._sink_lock = threading.Lock()      # held while publishing and while the sink is swapped
        self._frame_lock = threading.Lock()     # held by the pipeline thread for each frame
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._messages: queue.Queue[bytes] = queue.Queue(MAX_PENDING_MESSAGES)
        self._dropped_messages = 0
        self._worker: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self._worker_error: BaseException | None = None
        self._source_ended = False
        self._last_progress = time.monotonic()
        self._stalled_reported = False
        self._last_failures = 0
        self._frames = 0                        # frames processed (all time)
        self._faces_in_view = 0
        self._startup_error: str | None = None  # e.g. "config.yaml invalid; running config.yaml.1"

    @property
    def cfg(self) -> AppConfig:
        assert self.loaded is not None
        return self.loaded.config

    # ------------------------------------------------------------------------------------------
    # Start-up
    # ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the config (falling back to the newest good backup), build the parts, start the pipeline.

        Raises ConfigError when no config file is usable, ApplyError when the parts cannot be built.
        """
        self.notifier.status("starting")
        self.loaded = self._load_startup_config()
        _set_log_level(self.cfg)
        parts = self._build_parts(self.cfg)
        try:
            self.sink = self._open_sink(self.cfg)
        except ApplyError:
            _close_parts(parts)
            raise
        self.parts = parts
        self._subscribe(self.sink, self.cfg)
        self._start_worker()
        self._publish_state(self._startup_error)
        self.notifier.ready(self._status_line())
        log.info("running: %s -> %s; config %s (version %s)", parts.source.describe(),
                 type(self.sink).__name__, self.loaded.source, self.loaded.version[:12])

    def _load_startup_config(self) -> LoadedConfig:
        # A hand-edited file that no longer validates must not keep the device down: fall back to
        # the newest backup that does, and say so loudly (log and config/state).
        try:
            return load_file(self.path)
        except ConfigError as first:
            for n in range(1, 21):
                candidate = backup_path(self.path, n)
                if not candidate.exists():
                    break
                try:
                    loaded = load_file(candidate)
                except ConfigError:
                    continue
                summary = str(first).splitlines()[0]
                self._startup_error = f"{summary} - running the previous config {candidate.name} instead"
                log.error("config %s is invalid:\n%s\nrunning the previous config %s (version %s)",
                          self.path, first, candidate, loaded.version[:12])
                return loaded
            raise

    def _build_parts(self, cfg: AppConfig, reuse_analyzer: Any = None) -> Parts:
        """Analyzer (models), processor, source and preview for ``cfg``; ApplyError with one line if not."""
        from edge.runtime import ModelError
        from edge.schedule import FrameProcessor
        from edge.sources import open_source

        try:
            analyzer = reuse_analyzer
            if analyzer is None:
                from edge.pipeline import FaceAnalyzer
                analyzer = FaceAnalyzer(cfg)
            processor = FrameProcessor(cfg, analyzer=analyzer)
        except (ModelError, OSError, ValueError) as exc:
            raise ApplyError(f"cannot load the models: {exc}") from None
        preview = None
        if cfg.preview.mjpeg.enabled:
            from edge.preview import MjpegServer
            try:
                preview = MjpegServer(cfg.preview.mjpeg).start()
            except OSError as exc:
                raise ApplyError(str(exc)) from None
        return Parts(analyzer, processor, open_source(cfg.source), preview)

    def _open_sink(self, cfg: AppConfig) -> Any:
        from edge.publish import make_sink
        from edge.publish.queue import QueueError

        try:
            return make_sink(cfg)
        except (QueueError, ValueError, OSError) as exc:
            raise ApplyError(f"cannot open the event sink: {exc}") from None

    def _subscribe(self, sink: Any, cfg: AppConfig) -> None:
        rc = cfg.service.remote_config
        if not rc.enabled:
            return
        from edge.publish.sink import StdoutSink
        if isinstance(sink, StdoutSink):
            log.warning("service.remote_config.enabled, but MQTT is not configured (mqtt.host): "
                        "remote config is off")
            return
        sink.subscribe("config/set", self._on_config_message)

    # ------------------------------------------------------------------------------------------
    # The pipeline thread
    # ------------------------------------------------------------------------------------------

    def _start_worker(self) -> None:
        assert self.parts is not None
        self._worker_stop = threading.Event()
        self._worker_error = None
        self._source_ended = False
        self._last_progress = time.monotonic()
        self._last_failures = 0
        self._worker = threading.Thread(target=self._work, args=(self.parts.source, self._worker_stop),
                                        name="pipeline", daemon=True)
        self._worker.start()

    def _work(self, source: Any, stop: threading.Event) -> None:
        clock = None if source.live else _MediaClock()
        try:
            for frame in source:
                if stop.is_set():
                    return
                if clock is not None:   # files carry media time; published events need real dates
                    frame.timestamp = clock.epoch(frame.timestamp)
                with self._frame_lock:
                    parts = self.parts
                    if parts is None or parts.source is not source:
                        return
                    result = parts.processor.process(frame, time.time() if source.live else None)
                    if parts.preview is not None:
                        _publish_preview(parts.preview, frame, result, self.cfg)
                    if result.events:
                        with self._sink_lock:
                            self.sink.publish_all(result.events)
                    self._frames += 1
                    self._faces_in_view = len(result.tracks)
                self._last_progress = time.monotonic()
            if not stop.is_set():
                self._source_ended = True
        except Exception as exc:     # the supervisor decides what happens next; keep the traceback
            log.exception("pipeline failed: %s", exc)
            self._worker_error = exc
        finally:
            self._wake.set()

    def _stop_worker(self, timeout: float) -> bool:
        """Stop the pipeline thread and its source; False when it did not finish within ``timeout``."""
        self._worker_stop.set()
        if self.parts is not None and self.parts.source is not None:
            self.parts.source.close()
        worker, self._worker = self._worker, None
        if worker is None:
            return True
        worker.join(timeout)
        if worker.is_alive():
            log.warning("the pipeline thread did not stop within %.1f s (stuck in a call); leaving it", timeout)
            return False
        return True

    # ------------------------------------------------------------------------------------------
    # The main loop
    # ------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Start, supervise until SIGTERM/SIGINT (or a file source ends), stop. Returns the exit code."""
        self._install_signals()
        try:
            self.start()
        except ConfigError as exc:
            log.error("no usable config:\n%s", exc)
            self.notifier.status(f"config error: {str(exc).splitlines()[0]}")
            return EXIT_CONFIG
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
            if self._reload_requested:
                self._reload_requested = False
                self._reload_from_file()
            self._apply_pending_messages()
            if self._worker_error is not None:
                log.error("stopping: the pipeline failed (%s); systemd restarts the service",
                          self._worker_error)
                code = EXIT_FAILED
                break
            if self._source_ended:
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
        """True while the pipeline made progress recently enough to keep the watchdog fed.

        Progress is a processed frame, or a failed (re)open attempt of the source: a source that
        backs off between attempts is recovering, not stuck. A live source gets its own stall
        timeout first (it notices a silent camera and reopens it) and its longest backoff on top.
        """
        source = self.parts.source if self.parts else None
        allowed = self.cfg.service.watchdog.stall_timeout_s
        if source is not None:
            failures = source.stats.failures
            if failures != self._last_failures:
                self._last_failures = failures
                self._last_progress = now
            if source.live:
                allowed += source.cfg.stall_timeout_s
            if source.stats.state == "reopening":
                allowed += source.cfg.reopen_max_delay_s
        idle = now - self._last_progress
        if idle < allowed:
            if self._stalled_reported:
                log.info("the pipeline is moving again")
                self._stalled_reported = False
                self.notifier.status(self._status_line())
            return True
        if not self._stalled_reported:
            self._stalled_reported = True
            log.error("the pipeline made no progress for %.0f s (stuck in a call?): stopping the watchdog "
                      "pings so that systemd restarts the service", idle)
            self.notifier.status(f"stalled: no progress for {idle:.0f} s")
        return False

    def _stats_interval(self) -> float:
        interval = self.cfg.stats.interval_s
        return interval if interval > 0 else float("inf")

    def _publish_stats(self) -> None:
        stats: dict[str, Any] = {"frames_total": self._frames, "faces_in_view": self._faces_in_view,
                                 "config_version": self.loaded.version if self.loaded else None}
        if self.parts is not None:
            # Only between frames: the processor's counters belong to the pipeline thread.
            if self._frame_lock.acquire(timeout=1.0):
                try:
                    stats.update(self.parts.processor.take_stats())
                finally:
                    self._frame_lock.release()
            src = self.parts.source.stats
            stats["source"] = {"state": src.state, "frames": src.frames, "dropped": src.dropped,
                               "failures": src.failures, "last_error": src.last_error or None}
        temp = cpu_temperature()
        if temp is not None:
            stats["cpu_temp_c"] = temp
        with self._sink_lock:
            self.sink.publish_stats(stats)
        self.notifier.status(self._status_line(stats.get("input_fps")))

    def _status_line(self, fps: float | None = None) -> str:
        parts = [f"{fps:.1f} fps" if fps else None, f"{self._frames} frames", f"{self._faces_in_view} faces in view",
                 f"config {self.loaded.version[:12]}" if self.loaded else None]
        return ", ".join(p for p in parts if p)

    # ------------------------------------------------------------------------------------------
    # Signals and shutdown
    # ------------------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            self._stop_requested = True
            self._wake.set()

        def reload(signum: int, _frame: Any) -> None:
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
            _close_parts(self.parts)
        if self.sink is not None:
            with self._sink_lock:
                self.sink.close(max(0.5, deadline - time.monotonic()))
        log.info("stopped after %d frames", self._frames)

    def _emit(self, events: list[Any]) -> None:
        if events:
            with self._sink_lock:
                self.sink.publish_all(events)

    # ------------------------------------------------------------------------------------------
    # Config changes
    # ------------------------------------------------------------------------------------------

    def _on_config_message(self, payload: bytes) -> None:
        # paho's network thread: only hand the message over
        # (publishing from here could deadlock with a sink being closed by the main thread).
        try:
            self._messages.put_nowait(bytes(payload))
        except queue.Full:
            self._dropped_messages += 1
        self._wake.set()

    def _apply_pending_messages(self) -> None:
        if self._dropped_messages:
            n, self._dropped_messages = self._dropped_messages, 0
            log.error("%d config messages dropped: more than %d were waiting", n, MAX_PENDING_MESSAGES)
            self._publish_state(f"busy: {n} config message(s) dropped unread; send again later")
        while True:
            try:
                payload = self._messages.get_nowait()
            except queue.Empty:
                return
            self.apply_message(payload)

    def apply_message(self, payload: bytes) -> bool:
        """Check, apply and persist one ``config/set`` message; publish the outcome. True if applied."""
        if not self.cfg.service.remote_config.enabled:     # turned off by an earlier message
            log.warning("config message ignored: service.remote_config.enabled is false")
            return False
        try:
            update = prepare_update(payload, self.loaded, self.cfg.service.remote_config)
        except ConfigError as exc:
            log.error("config message rejected:\n%s", exc)
            self._publish_state(_one_line(exc))
            return False
        return self._change_config(update.loaded, update.text, "config/set message")

    def _reload_from_file(self) -> bool:
        """SIGHUP: load the file again; on any problem keep running what runs now."""
        self.notifier.reloading()
        try:
            loaded = load_file(self.path)
        except ConfigError as exc:
            log.error("reload (SIGHUP) rejected, still running version %s:\n%s", self.loaded.version[:12], exc)
            self._publish_state(_one_line(exc))
            self.notifier.ready(self._status_line())
            return False
        ok = self._change_config(loaded, None, f"{self.path} (SIGHUP)")
        self.notifier.ready(self._status_line())
        return ok

    def _change_config(self, new: LoadedConfig, text: str | None, origin: str) -> bool:
        """Apply ``new`` to the running service, then write ``text`` to the file (when given).

        On failure of either step the previous config is running and on disk again.
        """
        old = self.loaded
        assert old is not None
        if new.version == old.version:
            log.info("config from %s is the one running (version %s): nothing to do", origin, new.version[:12])
            self._publish_state(None)
            return True
        try:
            actions = self._apply(old.config, new.config)
        except ApplyError as exc:
            log.error("config from %s not applied, still running version %s: %s", origin, old.version[:12], exc)
            self._publish_state(f"not applied: {exc}")
            return False
        if text is not None:
            try:
                write_config(self.path, text, new.config.service.backups)
            except OSError as exc:
                log.error("cannot write %s (%s): putting version %s back", self.path, exc, old.version[:12])
                try:
                    self._apply(new.config, old.config)
                except ApplyError as back:
                    log.error("and the previous config could not be put back: %s", back)
                self._publish_state(f"not applied: cannot write {self.path.name}: {exc.strerror or exc}")
                return False
        self.loaded = new
        _set_log_level(new.config)
        log.info("config version %s from %s applied: %s", new.version[:12], origin, ", ".join(actions) or "no change")
        self._publish_state(None)
        self.notifier.status(self._status_line())
        return True

    def _apply(self, old: AppConfig, new: AppConfig) -> list[str]:
        """Put ``new`` in place of ``old`` in the running service; ApplyError leaves ``old`` running."""
        changed = {name for name in AppConfig.model_fields if getattr(old, name) != getattr(new, name)}
        actions: list[str] = []
        assert self.parts is not None
        restart_pipeline = bool(changed & PIPELINE_SECTIONS)
        new_processor = restart_pipeline or bool(changed & PROCESSOR_SECTIONS)
        new_sink = bool(changed & SINK_SECTIONS)

        # 1. Build what is new before touching what runs (models may be missing, ports taken).
        parts: Parts | None = None
        if restart_pipeline:
            reuse = None if changed & ANALYZER_SECTIONS else self.parts.analyzer
            if self.parts.preview is not None and "preview" in changed:
                self.parts.preview.close()          # its port may be the one the new server wants
                self.parts.preview = None
            parts = self._build_parts(new, reuse_analyzer=reuse)

        # 2. The sink: the queue file allows one user, so the old one closes first.
        if new_sink:
            with self._sink_lock:
                old_sink = self.sink
                old_sink.close(1.0)
                try:
                    self.sink = self._open_sink(new)
                except ApplyError:
                    self.sink = self._open_sink(old)
                    self._subscribe(self.sink, old)
                    if parts is not None and parts.source is not self.parts.source:
                        _close_parts(parts, keep_analyzer=parts.analyzer is self.parts.analyzer)
                    raise
            self._subscribe(self.sink, new)
            actions.append("sink reopened")
        elif new.service.remote_config.enabled and not old.service.remote_config.enabled:
            self._subscribe(self.sink, new)

        # 3. Swap the pipeline parts.
        if restart_pipeline:
            assert parts is not None
            old_parts = self.parts
            self._stop_worker(timeout=2.0)
            self._emit(old_parts.processor.close())
            _close_parts(old_parts, keep_analyzer=parts.analyzer is old_parts.analyzer)
            self.parts = parts
            self._start_worker()
            actions.append("pipeline restarted (" + ", ".join(sorted(changed & PIPELINE_SECTIONS)) + ")")
        elif new_processor:
            if not self._frame_lock.acquire(timeout=5.0):
                raise ApplyError("the pipeline is stuck in a frame; not applied")
            try:   # between two frames: the faces in view keep their tracks
                self.parts.processor.reconfigure(new)
            finally:
                self._frame_lock.release()
            actions.append("processor reconfigured live (" + ", ".join(sorted(changed & PROCESSOR_SECTIONS)) + ")")
        rest = changed - PIPELINE_SECTIONS - PROCESSOR_SECTIONS - SINK_SECTIONS
        if rest:
            actions.append("settings updated live (" + ", ".join(sorted(rest)) + ")")
        return actions

    def _publish_state(self, error: str | None) -> None:
        """Retained ``config/state``: the version running, and the error of the last attempt (or null)."""
        from edge.events import iso_utc

        payload = {"v": 1, "ok": error is None, "version": self.loaded.version if self.loaded else None,
                   "error": error, "ts": iso_utc(time.time())}
        if self.sink is not None:
            with self._sink_lock:
                self.sink.publish_retained("config/state", payload)


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------

def _one_line(exc: ConfigError) -> str:
    lines = str(exc).splitlines()
    return lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more: " + "; ".join(lines[1:4]) + ")"


def _set_log_level(cfg: AppConfig) -> None:
    logging.getLogger().setLevel(cfg.logging.level)


def _close_parts(parts: Parts, keep_analyzer: bool = False) -> None:
    if parts.source is not None:
        parts.source.close()
    if parts.preview is not None:
        parts.preview.close()
    if not keep_analyzer and hasattr(parts.analyzer, "close"):
        parts.analyzer.close()


def _publish_preview(server: Any, frame: Any, result: Any, cfg: AppConfig) -> None:
    # Annotating is a copy and a few boxes: cheap next to detection; JPEG encoding, the costly
    # part, happens in the server only while someone watches.
    from edge.preview import annotate
    server.publish(annotate(frame.image, result.tracks, cfg.preview))


def cpu_temperature() -> float | None:
    """The SoC temperature in °C from the kernel's first thermal zone (Pi and Jetson have one), or None."""
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None
