"""Annotated preview: drawing on a real frame, and the MJPEG stream fetched over real HTTP on loopback."""
from __future__ import annotations

import http.client
import socket

import cv2
import numpy as np
import pytest

from conftest import require_shared
from conftest_tracking import load_recording
from edge.preview import BOUNDARY, MjpegServer, annotate, display_problem
from edge.config.preview import MjpegConfig, PreviewConfig
from edge.track import Tracker
from edge.config.tracking import TrackingConfig


@pytest.fixture(scope="module")
def frame_and_tracks():
    """Frame 10 of the single-face clip and the tracker state after the recorded detections up to it."""
    cap = cv2.VideoCapture(str(require_shared("video", "single_face.mp4")))
    for _ in range(11):
        ok, image = cap.read()
    cap.release()
    assert ok
    rec = load_recording("single_face")
    tracker = Tracker(TrackingConfig())
    for f in rec.frames[:11:5]:
        tracker.update(f.detections, f.t)
        for tr in tracker.confirmed:
            tr.classify(f.classifications[0], f.t)
    assert tracker.confirmed
    return image, tracker.tracks


def test_annotate_draws_on_a_copy_inside_the_box(frame_and_tracks) -> None:
    image, tracks = frame_and_tracks
    before = image.copy()
    out = annotate(image, tracks, status="12.0 fps")
    assert np.array_equal(image, before)                 # the frame itself is untouched
    diff = np.any(out != image, axis=2)
    x, y, w, h = (int(v) for v in tracks[0].box)
    assert diff[y:y + h, x:x + w].any()                  # the box outline
    assert diff[:y, x:x + w].any()                       # the label above it
    assert diff[-20:, :200].any()                        # the status line


def test_defaults_keep_the_stream_off_and_local() -> None:
    cfg = PreviewConfig()
    assert cfg.mjpeg.enabled is False and cfg.mjpeg.host == "127.0.0.1"


def _read_part(resp: http.client.HTTPResponse) -> bytes:
    """Read one multipart part (headers, then Content-Length bytes of JPEG) from the stream."""
    line = resp.fp.readline()
    while line.strip() == b"":
        line = resp.fp.readline()
    assert line.strip() == f"--{BOUNDARY}".encode()
    headers = {}
    while (line := resp.fp.readline().strip()):
        k, v = line.decode().split(":", 1)
        headers[k.lower()] = v.strip()
    assert headers["content-type"] == "image/jpeg"
    return resp.fp.read(int(headers["content-length"]))


def test_mjpeg_stream_serves_decodable_frames_over_http(frame_and_tracks) -> None:
    image, tracks = frame_and_tracks
    server = MjpegServer(MjpegConfig(enabled=True, host="127.0.0.1", port=0, max_fps=30)).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/snapshot.jpg")
        resp = conn.getresponse()
        assert resp.status == 503                        # nothing published yet
        resp.read()
        conn.close()

        annotated = annotate(image, tracks)
        server.publish(annotated)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/stream")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        first = cv2.imdecode(np.frombuffer(_read_part(resp), np.uint8), cv2.IMREAD_COLOR)
        assert first.shape == image.shape
        assert np.abs(first.astype(int) - annotated.astype(int)).mean() < 8     # JPEG of what was published
        server.publish(np.zeros_like(image))            # a new frame reaches the open stream
        second = cv2.imdecode(np.frombuffer(_read_part(resp), np.uint8), cv2.IMREAD_COLOR)
        assert second.mean() < 5
        conn.close()

        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/nothing-here")
        assert conn.getresponse().status == 404
        conn.close()
    finally:
        server.close()


def test_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OSError, match=rf"preview.mjpeg: cannot listen on 127.0.0.1:{port}"):
            MjpegServer(MjpegConfig(enabled=True, port=port)).start()


def test_no_display_is_explained(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "no display" in display_problem()


def _recognize(*args: str, env_extra: dict | None = None):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "edge.cli", "recognize", *args], capture_output=True, text=True,
                          env={**env, **(env_extra or {})}, cwd=Path(__file__).resolve().parents[1], timeout=120)


@pytest.mark.slow
def test_recognize_command_prints_events_and_explains_a_missing_display() -> None:
    import json

    clip = str(require_shared("video", "single_face.mp4"))
    out = _recognize("--source", clip)
    assert out.returncode == 2 and "cannot open a window: no display" in out.stderr
    out = _recognize("--source", clip, "--events", "--max-frames", "30")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["type"] for e in events] == ["face_appeared", "face_left", "summary"]
    assert events[0]["track_id"] == 1 and events[0]["box"]
    # the same envelope as `fer-edge run` prints: real ids, sequence numbers, device, dates of today
    import time
    import uuid

    assert [e["seq"] for e in events] == [1, 2, 3]
    assert len({uuid.UUID(e["id"]) for e in events}) == 3
    assert all(e["device"] for e in events) and events[0]["device"] in socket.gethostname()
    assert all(abs(e["epoch"] - time.time()) < 300 for e in events)
    assert events[0]["ts"].startswith(time.strftime("%Y-", time.gmtime()))


def test_labels_of_a_crowd_stay_inside_the_frame_never_overlap_and_use_viewer_words(frame_and_tracks, monkeypatch):
    """Issue 27: on the crowd clip the labels of small faces piled up, were cut at the edge, showed 'low_score'."""
    from dataclasses import replace

    _, tracks = frame_and_tracks
    model = tracks[0]
    crowd = [replace(model, id=k, key=k, box=(250.0 + 6 * (k % 4), 2.0 + 20 * (k // 4), 28.0, 28.0),
                     quality="low_score" if k % 3 else "small") for k in range(12)]
    crowd.append(replace(model, id=99, key=99, box=(0.0, 150.0, 120.0, 90.0)))       # a big face at the left edge
    drawn: list[tuple[str, tuple[int, int], float]] = []
    real = cv2.putText

    def record(img, text, org, font, scale, *args, **kwargs):
        drawn.append((text, org, scale))
        return real(img, text, org, font, scale, *args, **kwargs)

    monkeypatch.setattr(cv2, "putText", record)
    image = np.zeros((240, 320, 3), np.uint8)
    annotate(image, crowd, status="30.0 fps")
    labels = [(t, org, s) for t, org, s in drawn if t != "30.0 fps"]
    assert labels and not any("low_score" in t or "_" in t for t, _, _ in labels)
    rects = []
    for text, (x, y), scale in labels:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        rect = (x - 2, y - th - 1, x + tw + 2, y + base + 1)
        assert rect[0] >= 0 and rect[1] >= 0 and rect[2] <= 320 and rect[3] <= 240, (text, rect)
        rects.append(rect)
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert any(t.startswith("#99") for t, _, _ in labels)        # the big face always gets its full label


def test_the_fps_counter_is_steady_when_frames_come_in_bursts():
    """Frames at 30 per second in pairs (1 ms apart, then 65.7 ms): the old per-frame counter swung 25 <-> 290."""
    from edge.preview import FpsMeter

    meter, t, shown = FpsMeter(), 100.0, []
    for k in range(300):
        t += 0.001 if k % 2 else 0.0657
        shown.append(meter.tick(t))
    assert all(28 <= v <= 32 for v in shown[100:]), (min(shown[100:]), max(shown[100:]))
