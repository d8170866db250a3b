"""How the service is doing: progress for the watchdog, the stats message, the systemd STATUS line.

:class:`ProgressWatch` decides whether the pipeline still moves (the watchdog pings stop when it
does not); :func:`collect_stats` gathers the figures the stats message carries.
"""
from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

from edge.cameras import CameraSet
from edge.config.device import DeviceConfig
from edge.service.parts import Parts
from edge.sources import Source

log = logging.getLogger("edge.service")


class ProgressWatch:
    """Progress of the pipeline thread: a processed frame, or a failed (re)open attempt of the source.

    A source that backs off between attempts is recovering, not stuck. A live source gets its own
    stall timeout first (it notices a silent camera and reopens it) and its longest backoff on top.
    """

    def __init__(self, now: float) -> None:
        self.last_progress = now          # written by the pipeline thread, read by the main thread
        self.stalled = False
        self._last_failures = 0

    def restart(self, now: float) -> None:
        """A new pipeline thread starts: it has all its time ahead."""
        self.last_progress = now
        self._last_failures = 0

    def moved(self, now: float) -> None:
        """The pipeline thread processed a frame."""
        self.last_progress = now

    def check(self, now: float, source: Source | CameraSet | None, stall_timeout_s: float) \
            -> tuple[bool, str | None]:
        """(True while the watchdog may be fed, the STATUS text when the state just changed else None).

        With several cameras, every one must progress or be in a counted outage (reopening with backoff).
        """
        if isinstance(source, CameraSet):
            stuck = source.stuck(now, stall_timeout_s)
            if stuck:
                if not self.stalled:
                    self.stalled = True
                    log.error("camera(s) %s made no progress and are not reopening: stopping the watchdog pings "
                              "so that systemd restarts the service", ", ".join(stuck))
                    return False, f"stalled: camera {', '.join(stuck)} makes no progress"
                return False, None
        allowed = stall_timeout_s
        if source is not None:
            failures = source.stats.failures
            if failures != self._last_failures:
                self._last_failures = failures
                self.last_progress = now
            if source.live:
                allowed += source.cfg.stall_timeout_s
            if source.stats.state == "reopening":
                allowed += source.cfg.reopen_max_delay_s
        idle = now - self.last_progress
        if idle < allowed:
            if self.stalled:
                log.info("the pipeline is moving again")
                self.stalled = False
                return True, ""            # "": back to the normal status line
            return True, None
        if not self.stalled:
            self.stalled = True
            log.error("the pipeline made no progress for %.0f s (stuck in a call?): stopping the watchdog "
                      "pings so that systemd restarts the service", idle)
            return False, f"stalled: no progress for {idle:.0f} s"
        return False, None


def collect_stats(frames: int, faces_in_view: int, config_version: str | None, parts: Parts | None,
                  frame_lock: threading.Lock, device: DeviceConfig | None = None) -> dict[str, Any]:
    """The service's figures for the stats message: totals, the processor's counters, source, CPU temperature,
    and device.name / device.location when set (the dashboard and `fleet list` show them before the id).

    The processor's counters are taken only between frames (under ``frame_lock``): they belong to the pipeline thread.
    """
    stats: dict[str, Any] = {"frames_total": frames, "faces_in_view": faces_in_view,
                             "config_version": config_version}
    if device is not None:
        stats.update({k: v for k, v in (("name", device.name), ("location", device.location)) if v})
    if parts is not None:
        if frame_lock.acquire(timeout=1.0):
            try:
                stats.update(parts.processor.take_stats())
            finally:
                frame_lock.release()
        if isinstance(parts.source, CameraSet):     # each camera's source figures beside its processor's
            for name, figures in parts.source.camera_stats().items():
                stats.setdefault("cameras", {}).setdefault(name, {})["source"] = figures
        src = parts.source.stats
        stats["source"] = {"state": src.state, "frames": src.frames, "dropped": src.dropped,
                           "failures": src.failures, "reopens": src.reopens, "outages": src.outages,
                           "outage_s": round(src.outage_s, 1), "last_error": src.last_error or None}
        if parts.preview is not None:      # only with preview.mjpeg.enabled: where a dashboard may link to it
            stats["preview"] = {"mjpeg": preview_link(parts.preview.cfg.host, parts.preview.port)}
    temp = cpu_temperature()
    if temp is not None:
        stats["cpu_temp_c"] = temp
    return stats


def preview_link(host: str, port: int) -> str:
    """The MJPEG preview's address as others reach it: a wildcard bind (0.0.0.0, ::) is named by this host's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def status_line(frames: int, faces_in_view: int, config_version: str | None, fps: float | None = None,
                problem: str | None = None) -> str:
    """The systemd STATUS text: ``12.3 fps, 456 frames, 1 faces in view, config 0123abcd4567``.

    ``problem`` (e.g. the sink's "event queue not writable: ...") comes first when there is one.
    """
    parts = [problem, f"{fps:.1f} fps" if fps else None, f"{frames} frames", f"{faces_in_view} faces in view",
             f"config {config_version[:12]}" if config_version else None]
    return ", ".join(p for p in parts if p)


def cpu_temperature() -> float | None:
    """The SoC temperature in °C from the kernel's first thermal zone (Pi and Jetson have one), or None."""
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None
