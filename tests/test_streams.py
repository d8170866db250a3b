"""Network cameras against real servers: an RTSP server (GStreamer gst-rtsp-server) and an HTTP MJPEG camera.

Each test streams a shared video, runs the real source and frame processor on it, cuts the server off
mid-run and brings it back on the same port: the source must notice, back off (each wait twice the
last), reopen, and frames and events must continue; the source's stats count the outage (outages, outage_s,
failures, reopens).
"""
from __future__ import annotations

import logging
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import require_shared

HELPERS = Path(__file__).resolve().parent / "helpers"
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gst_rtsp_available() -> str | None:
    """None when the system Python can run the GStreamer RTSP server, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(e) for e in ('qtdemux','h264parse','rtph264pay'))")
    proc = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        return ("GStreamer RTSP server not installed (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad; .ci/run does)")
    return None


class RtspServer:
    """tests/helpers/rtsp_server.py as a child process; stop() kills it (the cut), start() restarts it."""

    def __init__(self, video: Path, port: int, mount: str = "/cam") -> None:
        self.video, self.port, self.mount = video, port, mount
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(HELPERS / "rtsp_server.py"), str(self.video),
                                      str(self.port), self.mount], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        assert line == "ready", f"rtsp_server did not start (said {line!r})"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Consumer:
    """Runs the real source and frame processor on a thread, recording when frames and events arrive."""

    def __init__(self, url: str) -> None:
        from edge.config.app import AppConfig
        from edge.config.source import SourceConfig
        from edge.face_analyzer import FaceAnalyzer
        from edge.frame_processor import FrameProcessor
        from edge.sources import open_source

        # fast stall detection and backoff so the test runs in seconds; detect on every 2nd frame
        self.source = open_source(SourceConfig(uri=url, kind="stream", stall_timeout_s=2.0, reopen_delay_s=0.25,
                                               reopen_max_delay_s=4.0, name="netcam"))
        cfg = AppConfig.model_validate({"schedule": {"detect_every": 2}, "tracking": {"max_age_s": 0.5}})
        self.processor = FrameProcessor(cfg, FaceAnalyzer(cfg))
        self.frame_times: list[float] = []
        self.events: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for frame in self.source:
            result = self.processor.process(frame)
            now = time.monotonic()
            self.frame_times.append(now)
            self.events += [(now, e.type) for e in result.events]

    def frames_after(self, t: float) -> int:
        return sum(1 for x in list(self.frame_times) if x > t)

    def events_after(self, t: float, kind: str) -> int:
        return sum(1 for x, k in list(self.events) if x > t and k == kind)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def cut_and_restore(start, stop, url: str, caplog: pytest.LogCaptureFixture, outage_s: float = 3.0) -> None:
    """The shared scenario: frames and a face, cut for ``outage_s``, restore, frames and a face again."""
    caplog.set_level(logging.INFO, logger="edge.sources")
    start()
    consumer = Consumer(url)
    consumer.thread.start()
    try:
        wait_for(lambda: consumer.events_after(0, "face_appeared") >= 1, 30, "a face before the cut")
        assert consumer.source.stats.failures == 0
        stop()
        cut = time.monotonic()
        time.sleep(outage_s)
        assert consumer.frames_after(cut + 0.5) == 0, "frames arrived while the camera was off"
        failures_during = consumer.source.stats.failures
        assert failures_during >= 2, "the source did not notice the outage and retry"
        start()
        restored = time.monotonic()
        wait_for(lambda: consumer.frames_after(restored) >= 10, 30, "frames after the restore")
        wait_for(lambda: consumer.events_after(restored, "face_appeared") >= 1, 30, "a face after the restore")
        stats = consumer.source.stats
        assert stats.reopens >= 1 and stats.state == "open"
        assert stats.failures >= failures_during
        # the outage is counted once, with about its length (cut to the first frame after the restore)
        assert stats.outages == 1
        assert outage_s <= stats.outage_s <= time.monotonic() - cut, stats
        # the face was gone for longer than tracking.max_age_s: it left, and came back as a new track
        assert consumer.events_after(cut, "face_left") >= 1
    finally:
        consumer.source.close()
        consumer.thread.join(timeout=10)
        stop()
    # backoff: the waits between reopen attempts double (0.25, 0.5, 1, ...) up to the maximum
    delays = [float(m.group(1)) for r in caplog.records
              if (m := re.search(r"reopening .* in ([0-9.]+) s", r.getMessage()))]
    assert len(delays) >= 2, caplog.text
    assert delays[:3] == [0.25, 0.5, 1.0][:len(delays[:3])], delays
    assert all(b >= a for a, b in zip(delays, delays[1:])), delays


@pytest.mark.slow
def test_rtsp_camera_cut_and_restore(caplog: pytest.LogCaptureFixture) -> None:
    video = require_shared("video", "single_face.mp4")
    reason = gst_rtsp_available()
    if reason:
        pytest.skip(reason)
    server = RtspServer(video, free_port())
    cut_and_restore(server.start, server.stop, server.url, caplog)


@pytest.mark.slow
def test_mjpeg_camera_cut_and_restore(caplog: pytest.LogCaptureFixture) -> None:
    from tests.helpers.mjpeg_server import MjpegCamera, video_jpegs

    frames, fps = video_jpegs(require_shared("video", "single_face.mp4"), max_frames=200)
    camera = MjpegCamera(frames, fps)
    camera.start()       # pick the port once; the scenario restarts it on the same one
    camera.stop()
    cut_and_restore(camera.start, camera.stop, camera.url, caplog)


def test_mjpeg_wrong_path_is_one_clear_line(caplog: pytest.LogCaptureFixture) -> None:
    """A camera URL that answers 404: reported in one line per attempt naming the (password-free) URL."""
    from edge.config.source import SourceConfig
    from edge.sources import SourceError, open_source
    from tests.helpers.mjpeg_server import MjpegCamera, video_jpegs

    frames, fps = video_jpegs(require_shared("video", "single_face.mp4"), max_frames=5)
    camera = MjpegCamera(frames, fps)
    camera.start()
    try:
        url = camera.url.replace("127.0.0.1", "user:secret@127.0.0.1").replace("video.mjpg", "nope.mjpg")
        source = open_source(SourceConfig(uri=url, kind="stream", reopen_delay_s=0.05, max_reopens=2))
        with pytest.raises(SourceError) as err:
            list(source)
        assert "giving up after 2 failures" in str(err.value) and "secret" not in str(err.value)
        assert "cannot be opened" in str(err.value)
    finally:
        camera.stop()
