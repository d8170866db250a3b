"""Frame sources: files, folders, video, live streams (real HTTP), missing cameras, picamera2 through a stand-in."""
from __future__ import annotations

import functools
import http.server
import logging
import shutil
import threading
import time

import numpy as np
import pytest

from conftest_pipeline import read_video_frames, single_face_video, taiwanese_subset
from edge.config.source import SourceConfig
from edge.sources import SourceError, list_images, open_source, resolve_kind
from edge.sources import redact


# ------------------------------------------------------------------------------------------------
# A stand-in for picamera2.Picamera2 with the real API's method names and signatures
# (picamera2/picamera2.py: Picamera2(camera_num=0, verbose_console=None, tuning=None, allocator=None),
# create_video_configuration(main={}, lores=None, raw={}, ...), configure(camera_config="preview"),
# start(config=None, show_preview=False), capture_array(name="main", wait=None, signal_function=None),
# stop(), close()). It serves real video frames; `stall_after`/`fail_after` simulate a hung or
# failing camera.
# ------------------------------------------------------------------------------------------------

class FakePicamera2:
    instances: list["FakePicamera2"] = []

    def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None, *, frames=None,
                 stall_after=None, fail_after=None, fail_open=False):
        if fail_open:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num = camera_num
        self.frames = frames or []
        self.stall_after, self.fail_after = stall_after, fail_after
        self.calls: list = []
        self.served = 0
        self.unblock = threading.Event()
        self.config = None
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True,
                                   sensor={}, use_case="video"):
        self.calls.append(("create_video_configuration", dict(main), dict(controls)))
        return {"use_case": use_case, "main": {"format": "XBGR8888", "size": (1280, 720), **main},
                "controls": controls, "buffer_count": buffer_count}

    def configure(self, camera_config="preview"):
        self.calls.append(("configure",))
        self.config = camera_config

    def start(self, config=None, show_preview=False):
        self.calls.append(("start",))

    def capture_array(self, name="main", wait=None, signal_function=None):
        if self.stall_after is not None and self.served >= self.stall_after:
            self.unblock.wait(5)              # a hung camera: blocks until the test lets it go
        if self.fail_after is not None and self.served >= self.fail_after:
            raise RuntimeError("Device or resource busy")
        frame = self.frames[self.served % len(self.frames)]
        self.served += 1
        if self.config["main"]["format"] == "RGB888":
            return frame.copy()               # RGB888 is B,G,R in memory: OpenCV's order
        return np.dstack([frame, np.zeros(frame.shape[:2], np.uint8)])

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


def own_records(caplog) -> list[logging.LogRecord]:
    """The captured records of the sources' logger only: threads left by other tests may log meanwhile."""
    return [r for r in caplog.records if r.name.startswith("edge.sources")]


@pytest.fixture
def video_frames():
    return read_video_frames(8)


def factory(**kw):
    return functools.partial(FakePicamera2, **kw)


def take(src, n: int) -> list:
    """The first ``n`` frames of a source, then close it."""
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == n:
            break
    src.close()
    return frames


# ------------------------------------------------------------------------------------------------

def test_resolve_kind(tmp_path):
    assert resolve_kind(SourceConfig(uri="0")) == "camera"
    assert resolve_kind(SourceConfig(uri="/dev/video2")) == "camera"
    assert resolve_kind(SourceConfig(uri="rtsp://cam.local:554/stream1")) == "stream"
    assert resolve_kind(SourceConfig(uri="http://cam.local/mjpeg")) == "stream"
    assert resolve_kind(SourceConfig(uri="picamera2")) == "picamera2"
    assert resolve_kind(SourceConfig(uri="picamera2:1")) == "picamera2"
    assert resolve_kind(SourceConfig(uri=str(tmp_path))) == "folder"
    assert resolve_kind(SourceConfig(uri="shot.JPG")) == "image"
    assert resolve_kind(SourceConfig(uri="clip.mp4")) == "video"
    assert resolve_kind(SourceConfig(uri="0", kind="video")) == "video"


def test_stream_password_is_not_logged():
    assert redact("rtsp://admin:hunter2@10.0.0.5/live") == "rtsp://admin:***@10.0.0.5/live"


def test_image_file_gives_one_frame():
    path, _ = taiwanese_subset(1)[0]
    src = open_source(SourceConfig(uri=str(path), name="door"))
    frames = list(src)
    assert len(frames) == 1 and not src.live
    assert frames[0].image.shape == (256, 256, 3) and frames[0].camera == "door" and frames[0].path == str(path)
    assert src.stats.state == "ended"


def test_folder_skips_unreadable_files_with_one_line_each(tmp_path, caplog):
    for i, (p, _) in enumerate(taiwanese_subset(1)[:3]):
        shutil.copy(p, tmp_path / f"{i}.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("not an image")          # not an image extension: ignored
    (tmp_path / "sub").mkdir()
    shutil.copy(tmp_path / "0.jpg", tmp_path / "sub" / "deep.png")
    caplog.set_level(logging.WARNING, "edge.sources")
    src = open_source(SourceConfig(uri=str(tmp_path)))
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert src.stats.skipped == 1
    lines = [r.getMessage() for r in own_records(caplog)]
    assert len(lines) == 1 and "broken.jpg" in lines[0] and "not a readable image" in lines[0]
    assert [p.name for p in list_images(tmp_path)] == ["0.jpg", "1.jpg", "2.jpg", "broken.jpg", "deep.png"]


def test_empty_folder_is_reported_retried_then_given_up(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "edge.sources")
    src = open_source(SourceConfig(uri=str(tmp_path), max_reopens=2, reopen_delay_s=0.01))
    with pytest.raises(SourceError, match="holds no images"):
        list(src)
    assert src.stats.failures == 2 and src.stats.state == "failed"
    assert len(own_records(caplog)) == 2 and all("holds no images" in r.getMessage() for r in own_records(caplog))


def test_video_file_all_frames_with_media_time():
    src = open_source(SourceConfig(uri=str(single_face_video())))
    frames = list(src)
    assert len(frames) == 224 and src.fps == pytest.approx(25.0) and not src.live
    assert frames[25].timestamp == pytest.approx(1.0) and frames[-1].index == 223
    assert frames[0].image.shape == (360, 640, 3)


def test_video_file_paced_at_its_frame_rate():
    src = open_source(SourceConfig(uri=str(single_face_video()), pace=True))
    start = time.monotonic()
    for frame in src:
        if frame.index == 10:
            break
    # 10 frames at 25 fps cannot arrive in less than 0.4 s when paced (unpaced they take a few ms)
    assert time.monotonic() - start >= 0.35


def test_video_loop_starts_again():
    src = open_source(SourceConfig(uri=str(single_face_video()), loop=True))
    n = 0
    for _ in src:
        n += 1
        if n == 300:
            src.close()
    assert n == 300


def test_missing_video_file_one_clear_error(tmp_path):
    src = open_source(SourceConfig(uri=str(tmp_path / "nope.mp4"), max_reopens=1))
    with pytest.raises(SourceError, match="no such video file"):
        list(src)


def test_missing_camera_is_reported_and_retried_with_backoff(caplog):
    caplog.set_level(logging.INFO, "edge.sources")
    src = open_source(SourceConfig(uri="/dev/video97", max_reopens=3, reopen_delay_s=0.02))
    assert src.live and src.kind == "camera"
    with pytest.raises(SourceError, match="giving up after 3 failures"):
        list(src)
    warnings = [r.getMessage() for r in own_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("camera /dev/video97 cannot be opened" in w for w in warnings)
    waits = [r.getMessage() for r in own_records(caplog) if "reopening" in r.getMessage()]
    # doubling backoff between the attempts; no wait after the last one
    assert waits == ["source: reopening camera /dev/video97 in 0.02 s", "source: reopening camera /dev/video97 in 0.04 s"]


def test_live_source_drops_stale_frames_and_reopens_at_the_end():
    """A stream read faster than it is consumed: the consumer gets fresh frames, the rest are counted as dropped."""
    src = open_source(SourceConfig(uri=str(single_face_video()), kind="stream", reopen_delay_s=0.05))
    assert src.live
    got = []
    for frame in src:
        got.append(frame)
        time.sleep(0.03)                 # a slow consumer
        if len(got) == 12:
            break
    src.close()
    assert src.stats.dropped > 0
    assert all(b.timestamp >= a.timestamp for a, b in zip(got, got[1:]))   # wall-clock times for live frames
    assert [f.index for f in got] == list(range(12))


def test_http_mjpeg_stream_through_opencv(video_frames):
    """A real HTTP server on loopback serving MJPEG (multipart/x-mixed-replace, as IP cameras do)."""
    import cv2

    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in video_frames]
    handler = functools.partial(MjpegHandler, jpegs)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = open_source(SourceConfig(uri=f"http://127.0.0.1:{server.server_port}/video.mjpg",
                                       stall_timeout_s=5, max_reopens=2, reopen_delay_s=0.05))
        assert src.kind == "stream" and src.live
        frames = take(src, 5)
        assert frames[0].image.shape == (360, 640, 3)
        # the decoded pictures are the served ones (JPEG is lossy: compare loosely)
        diff = min(np.abs(frames[0].image.astype(int) - v.astype(int)).mean() for v in video_frames)
        assert diff < 4
    finally:
        server.shutdown()
        server.server_close()


class MjpegHandler(http.server.BaseHTTPRequestHandler):
    def __init__(self, jpegs, *args, **kwargs):
        self.jpegs = jpegs
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for k in range(400):
                j = self.jpegs[k % len(self.jpegs)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(j)
                                 + j + b"\r\n")
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


# ------------------------------------------------------------------------------------------------
# picamera2 through the stand-in
# ------------------------------------------------------------------------------------------------

def test_picamera2_configures_starts_captures_and_closes(video_frames):
    FakePicamera2.instances.clear()
    src = open_source(SourceConfig(uri="picamera2", width=640, height=360, fps=15),
                      picamera_factory=factory(frames=video_frames))
    frames = take(src, 3)
    time.sleep(0.1)
    cam = FakePicamera2.instances[0]
    assert cam.calls[0] == ("create_video_configuration", {"format": "RGB888", "size": (640, 360)},
                            {"FrameRate": 15.0})
    assert cam.calls[1:3] == [("configure",), ("start",)]
    assert cam.calls[-2:] == [("stop",), ("close",)]
    assert src.live and frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8
    # the frame is the camera's picture, channels in OpenCV's order
    assert any(np.array_equal(frames[0].image, v) for v in video_frames)


def test_picamera2_capture_failure_is_reported_and_reopened(video_frames, caplog):
    caplog.set_level(logging.WARNING, "edge.sources")
    FakePicamera2.instances.clear()
    src = open_source(SourceConfig(uri="picamera2", reopen_delay_s=0.01),
                      picamera_factory=factory(frames=video_frames, fail_after=2))
    take(src, 5)
    assert src.stats.failures >= 2 and src.stats.reopens >= 2
    assert len(FakePicamera2.instances) >= 3
    assert ("close",) in FakePicamera2.instances[0].calls       # the failed camera was released
    assert "capture failed: Device or resource busy" in own_records(caplog)[0].getMessage()


def test_picamera2_stall_is_detected_and_reopened(video_frames, caplog):
    caplog.set_level(logging.WARNING, "edge.sources")
    FakePicamera2.instances.clear()
    src = open_source(SourceConfig(uri="picamera2", stall_timeout_s=0.2, reopen_delay_s=0.01),
                      picamera_factory=factory(frames=video_frames, stall_after=2))
    take(src, 3)
    for cam in FakePicamera2.instances:
        cam.unblock.set()
    assert src.stats.reopens >= 1 and "stalled" in src.stats.last_error
    assert any("no frame for 0.2 s (stalled)" in r.getMessage() for r in own_records(caplog))


def test_picamera2_missing_camera_gives_up_with_clear_line():
    src = open_source(SourceConfig(uri="picamera2:1", max_reopens=2, reopen_delay_s=0.01),
                      picamera_factory=factory(fail_open=True))
    with pytest.raises(SourceError, match="picamera2 camera 1 cannot be opened: Camera __init__"):
        list(src)


def test_picamera2_not_installed_says_how_to_install():
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    src = open_source(SourceConfig(uri="picamera2", max_reopens=1))
    with pytest.raises(SourceError, match="picamera2 is not installed"):
        list(src)


def test_close_wakes_a_consumer_waiting_on_a_stalled_camera(video_frames, caplog):
    caplog.set_level(logging.WARNING, "edge.sources")
    src = open_source(SourceConfig(uri="picamera2", stall_timeout_s=30),
                      picamera_factory=factory(frames=video_frames, stall_after=1))
    threading.Timer(0.3, src.close).start()
    start = time.monotonic()
    assert sum(1 for _ in src) == 1
    # ended by close, not by the stall timeout (only this source's log counts: other tests' threads may log too)
    assert time.monotonic() - start < 5 and own_records(caplog) == []
    for cam in FakePicamera2.instances:
        cam.unblock.set()


def test_close_from_another_thread_ends_a_live_source(video_frames):
    src = open_source(SourceConfig(uri="picamera2"), picamera_factory=factory(frames=video_frames))
    threading.Timer(0.2, src.close).start()
    n = sum(1 for _ in src)
    assert n > 0 and src.stats.state == "closed"
