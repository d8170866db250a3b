"""The systemd watchdog, end to end: `fer-edge run` under a real NOTIFY_SOCKET the test creates.

The camera is a named pipe carrying a YUV4MPEG2 stream (what `rpicam-vid`/`ffmpeg` write), fed
with frames of the shared test video. While frames flow, READY then WATCHDOG pings arrive. Then
the feeder stops writing but keeps the pipe open, as a wedged capture process does: the source
notices the stall and reopens the stream, and that open blocks for good inside FFmpeg. The
pipeline is stuck in a call; the service must stop pinging (so systemd would restart it), and
still exit promptly on SIGTERM.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from conftest_service import ServiceProcess, write_config

FPS = 20
SIZE = (320, 180)
PING_S = 0.5                        # WATCHDOG_USEC = 1 s: the service pings every 0.5 s


def _frames(n: int) -> list[bytes]:
    import cv2

    cap = cv2.VideoCapture(str(require_shared("video", "single_face.mp4")))
    out = []
    while len(out) < n:
        ok, image = cap.read()
        if not ok:
            break
        small = cv2.resize(image, SIZE)
        out.append(b"FRAME\n" + cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420).tobytes())
    cap.release()
    return out


class PipeCamera:
    """Writes a y4m stream into a FIFO at FPS; ``hang()`` stops writing but keeps the pipe open."""

    def __init__(self, path: Path, frames: list[bytes]) -> None:
        self.path, self.frames = path, frames
        os.mkfifo(path)
        self.written = 0
        self.hung_at: float | None = None
        self._hang = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self.path, "wb") as f:            # blocks until the service opens the stream
            f.write(f"YUV4MPEG2 W{SIZE[0]} H{SIZE[1]} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
            i = 0
            while not self._hang.is_set():
                f.write(self.frames[i % len(self.frames)])
                f.flush()
                self.written += 1
                i += 1
                time.sleep(1.0 / FPS)
            self.hung_at = time.monotonic()
            self._done.wait()                       # wedged: open, silent

    def hang(self) -> None:
        self._hang.set()

    def close(self) -> None:
        self._hang.set()
        self._done.set()


@pytest.fixture
def pipe_service(tmp_path):
    frames = _frames(60)
    camera = PipeCamera(tmp_path / "camera.y4m", frames)
    cfg = write_config(tmp_path / "config.yaml", {
        "device": {"id": "wd-test"},
        # kind stream: a live source (grab thread, stall detection, reopen), as a camera would be
        "source": {"uri": str(camera.path), "kind": "stream", "stall_timeout_s": 1.0,
                   "reopen_delay_s": 0.2, "reopen_max_delay_s": 0.5},
        "detector": {"type": "haar"},
        "service": {"watchdog": {"stall_timeout_s": 1.5}, "stop_timeout_s": 3.0},
        "stats": {"interval_s": 1.0},
    })
    svc = ServiceProcess(cfg, watchdog_s=2 * PING_S)
    yield svc, camera
    camera.close()
    svc.close()


@pytest.mark.slow
def test_watchdog_pings_while_healthy_and_stop_when_the_pipeline_hangs(pipe_service):
    svc, camera = pipe_service
    ready = svc.wait_ready()
    assert ready.fields.get("STATUS"), "READY should carry a STATUS line"

    # Healthy: frames flow for 4 s; pings keep coming about every PING_S.
    time.sleep(4.0)
    assert svc.alive(), svc.stderr()[-2000:]
    assert camera.written >= 40, "the service did not read the camera"
    healthy_pings = [t for t in svc.notify.times("WATCHDOG") if t >= ready.at]
    assert len(healthy_pings) >= 5, f"only {len(healthy_pings)} WATCHDOG pings in 4 s of frames"
    gaps = np.diff(healthy_pings)
    assert gaps.max() < 4 * PING_S, f"ping gaps while healthy: {gaps}"

    # Wedge the camera: the source stalls (1 s) and reopens; once the pipe is drained, the reopen
    # blocks in FFmpeg for good. Pings must stop for good within the allowed stall time.
    camera.hang()
    quiet_for = 4 * PING_S + 1.0                   # twice systemd's WatchdogSec here: a restart is due
    deadline = time.monotonic() + 25.0
    while True:
        last_ping = max(svc.notify.times("WATCHDOG"))
        if time.monotonic() - last_ping >= quiet_for:
            break
        assert time.monotonic() < deadline, "WATCHDOG pings did not stop after the camera hung:\n" + \
            svc.stderr()[-3000:]
        time.sleep(0.1)
    assert svc.alive(), "the main loop must keep running (systemd, not the service, decides to restart)"
    assert any(s.startswith("stalled") for s in svc.notify.statuses()), svc.notify.statuses()[-5:]
    stop_after = last_ping - camera.hung_at
    # allowed: service 1.5 s + source stall 1 s + backoff 0.5 s, plus the source's own attempts
    assert stop_after < 12.0, f"pings went on for {stop_after:.1f} s after the hang"
    print(f"\nwatchdog: {len(healthy_pings)} pings in 4 s healthy; last ping {stop_after:.1f} s "
          f"after the camera hung; none for {time.monotonic() - last_ping:.1f} s since")

    # SIGTERM still stops it promptly, although the pipeline thread is stuck in a C call.
    code, took = svc.stop()
    assert code == 0, svc.stderr()[-2000:]
    assert took < 6.0, f"took {took:.1f} s to stop"
    assert svc.notify.times("STOPPING")
    print(f"watchdog: stopped {took:.1f} s after SIGTERM with the pipeline stuck")
