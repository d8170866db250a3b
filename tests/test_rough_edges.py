"""Issue 12.9: rough edges a user hits with the command-line tools - real files, real processes, real HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest

from conftest import REPO, require_shared  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
FER_EDGE = [sys.executable, "-m", "edge.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jpeg_frames(url: str, want: int, timeout: float = 20.0) -> int:
    """Read the MJPEG stream at ``url`` until ``want`` JPEG frames came; return how many did."""
    seen, buf = 0, b""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        deadline = time.monotonic() + timeout
        while seen < want and time.monotonic() < deadline:
            chunk = resp.read(4096)
            if not chunk:
                break
            buf += chunk
            seen += buf.count(b"\xff\xd8")
            buf = buf[-1:]
    return seen


@pytest.mark.slow
def test_recognize_mjpeg_on_a_video_file_stays_up_for_a_late_viewer():
    video = require_shared("video", "single_face.mp4")           # 9 s of video
    port = free_port()
    proc = subprocess.Popen([*FER_EDGE, "recognize", "--source", str(video), "--detector", "haar",
                             "--mjpeg", str(port), "--no-window", "--loop"], cwd=REPO, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(11.0)                       # past the end of the file: a viewer who comes late
        assert proc.poll() is None, f"recognize exited ({proc.returncode}): {proc.stderr.read()[-2000:]}"
        assert _jpeg_frames(f"http://127.0.0.1:{port}/stream", 3) >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=20)[1]
    assert proc.returncode == 0, err[-2000:]


@pytest.mark.slow
def test_recognize_paces_a_video_file_when_serving_mjpeg():
    # Under --mjpeg a file plays at its own speed by default (50 frames at 25 fps: at least 2 s);
    # --no-pace turns that off for someone who wants it as fast as the machine goes.
    video = require_shared("video", "single_face.mp4")
    took = []
    for extra in ([], ["--no-pace"]):
        start = time.monotonic()
        res = subprocess.run([*FER_EDGE, "recognize", "--source", str(video), "--detector", "haar", "--mjpeg",
                              str(free_port()), "--no-window", "--max-frames", "50", *extra], cwd=REPO, env=ENV,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        took.append(time.monotonic() - start)
    assert took[0] >= 2.0, f"paced playback of 50 frames took {took[0]:.2f} s"


@pytest.mark.slow
def test_recognize_stops_cleanly_on_sigterm():
    video = require_shared("video", "single_face.mp4")
    proc = subprocess.Popen([*FER_EDGE, "recognize", "--source", str(video), "--detector", "haar", "--events",
                             "--no-window", "--loop"], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(6.0)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, f"killed by the signal ({proc.returncode}); stderr: {err[-2000:]}"
    assert "SIGTERM" in err, "say why it stopped"
    assert '"face_left"' in out.splitlines()[-1] or '"summary"' in out.splitlines()[-1], \
        "the faces still in view are closed with face_left, as when the source ends"


def test_annotate_two_inputs_with_the_same_name_keeps_both(tmp_path):
    pictures = []
    for k, folder in enumerate(("a", "b")):
        (tmp_path / folder).mkdir()
        img = np.full((120, 160, 3), 40 + 100 * k, np.uint8)
        cv2.imwrite(str(tmp_path / folder / "x.jpg"), img)
        pictures.append(str(tmp_path / folder / "x.jpg"))
    out = tmp_path / "annotated"
    res = subprocess.run([*FER_EDGE, "detect", *pictures, "--detector", "haar", "--no-classify", "--annotate",
                          str(out)], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    written = sorted(p for p in out.rglob("*.jpg"))
    assert len(written) == 2, f"{written}: the second x.jpg overwrote the first"
    means = sorted(round(float(cv2.imread(str(p)).mean())) for p in written)
    assert means == [40, 140]


def test_eval_of_a_missing_model_says_no_such_model(tmp_path):
    missing = tmp_path / "missing.tflite"
    res = subprocess.run([*FER_EDGE, "eval", str(missing), "--limit", "5"], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, (res.returncode, res.stderr)      # as for any model that cannot be opened
    assert "no such model" in res.stderr and str(missing) in res.stderr and "card" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
