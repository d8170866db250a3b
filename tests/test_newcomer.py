"""What a newcomer stumbled on (issue 24), each tried the way they tried it: the real command, from the README."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, require_shared
from conftest_mqtt import broker, needs_mosquitto, open_sink  # noqa: F401
from tests.helpers.publish_demo import demo_event

from edge.emitter import _box

ENV = {**{k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}, "PYTHONPATH": str(REPO)}


def fer_edge(*args: str, cwd: Path = REPO, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout, **kw)


def test_a_typo_in_the_detector_section_names_its_line_key_allowed_keys_and_a_suggestion(tmp_path):
    lines = (REPO / "config.yaml").read_text().splitlines()
    section = lines.index(next(line for line in lines if line.startswith("detector:")))
    at = next(i for i in range(section, len(lines)) if lines[i].startswith("  min_score:"))   # detector.min_score
    lines[at] = lines[at].replace("min_score", "min_scroe")
    (tmp_path / "typo.yaml").write_text("\n".join(lines) + "\n")
    r = fer_edge("config", "validate", "typo.yaml", cwd=tmp_path)
    assert r.returncode == 2
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"typo.yaml:{at + 1}: detector.min_scroe: unknown key (allowed: "), first
    assert "min_score" in first and first.endswith("did you mean 'min_score'?"), first


def test_a_typo_inside_a_backend_sub_section_is_reported_there(tmp_path):
    (tmp_path / "t.yaml").write_text("detector:\n  type: haar\n  blazeface:\n    min_scroe: 0.3\n"
                                     "  haar:\n    scale_factr: 1.2\n")
    r = fer_edge("config", "validate", "t.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines()[:2] == [
        "t.yaml:4: detector.blazeface.min_scroe: unknown key (allowed: model_path, nms_iou, refine_below, "
        "refine_patch, threads, tile_px, verify_sha256)",
        "t.yaml:6: detector.haar.scale_factr: unknown key (allowed: cascade, detect_width, eye_cascade, eyes, "
        "min_neighbors, room_width, scale_factor); did you mean 'scale_factor'?"]


@pytest.mark.slow
def test_recognize_demo_with_mjpeg_and_no_display_says_nothing_wrong_and_says_when_it_ends():
    r = fer_edge("recognize", "--demo", "--mjpeg", "0", "--no-pace")
    assert r.returncode == 0, r.stderr
    assert "--mjpeg" not in r.stderr and "no window" not in r.stderr, r.stderr      # it was given: no advice
    assert "preview at http://127.0.0.1:" in r.stderr
    assert r.stderr.rstrip().endswith("the source ended after 300 frames (--loop plays it again)"), r.stderr


def test_recognize_without_a_display_or_mjpeg_says_what_to_do():
    r = fer_edge("recognize", "--demo")
    assert r.returncode == 2
    assert r.stderr.strip() == ("fer-edge recognize: cannot open a window: no display (DISPLAY is not set): use "
                                "--mjpeg PORT and open the stream in a browser, or --events, or run with a desktop")


@pytest.mark.slow
def test_run_demo_outside_the_checkout_needs_no_config_file_and_boxes_stay_in_the_frame(tmp_path):
    env = {**ENV, "STATE_DIRECTORY": str(tmp_path / "state")}
    r = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--demo"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no config file (config.yaml): the demo runs with the built-in defaults" in r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["type"] for e in events] == ["face_appeared", "face_appeared", "face_left", "face_left", "summary"]
    for e in events:
        if e["box"] is not None:            # a face leaving at the left edge: x 0, not -45.9
            assert e["box"][0] >= 0 and e["box"][1] >= 0 and e["box"][2] > 0, e


def test_event_boxes_are_cut_at_the_frame_edge():
    assert _box((-45.94, 118.1, 178.7, 178.7)) == (0.0, 118.1, 132.8, 178.7)
    assert _box((10.0, -5.0, 20.0, 20.0)) == (10.0, 0.0, 20.0, 15.0)
    assert _box((68.24, 137.3, 122.2, 122.2)) == (68.2, 137.3, 122.2, 122.2)


def test_config_schema_into_head_ends_quietly(tmp_path):
    # A one-page pipe: the ~60 KB schema would fit a default 64 KiB pipe whole, and a writer that got it
    # all out before the close below would exit 0 (seen under load); with 4 KiB it is still writing then.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "config", "schema"], cwd=tmp_path, env=ENV,
                            stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as out:
        assert out.read(200)              # like `| head -c 200`: read a little, then close the pipe
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 141 and err == "", err


def test_detect_on_a_video_counts_frames_not_pictures_and_prints_no_delegate_notice():
    clip = require_shared("video", "single_face.mp4")
    r = fer_edge("detect", str(clip), "--every", "100", "--detector", "haar")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1].startswith("fer-edge detect: 3 video frame(s), "), r.stderr
    assert "XNNPACK" not in r.stderr and "INFO:" not in r.stderr, r.stderr


def test_readme_de_duplication_key_includes_the_instance():
    text = (REPO / "README.md").read_text()
    assert "`device` + `seq`)" not in text
    assert "`device` + `instance` + `seq`" in text


@needs_mosquitto
def test_stopped_is_not_stamped_before_the_events_it_follows(broker, tmp_path):  # noqa: F811
    sub = broker.subscribe_collect("fer-edge/dev1/#")
    sink = open_sink(broker, tmp_path / "q.db")
    ahead = time.time() + 30.0               # a video's media time runs ahead of the clock
    last = demo_event(49)                     # a summary
    sink.publish_all([type(last)(last.type, last.camera, ahead, summary=last.summary)])
    assert sub.wait_for(lambda m: any(x.topic.endswith("/events") for x in m), 10)
    sink.close(5.0)
    assert sub.wait_for(lambda m: m[-1].topic.endswith("/status") and m[-1].json()["state"] == "stopped", 10)
    stopped = sub.messages[-1].json()
    summary = sub.json("fer-edge/dev1/events")[-1]
    assert summary["type"] == "summary" and stopped["epoch"] >= summary["epoch"], (stopped, summary)
