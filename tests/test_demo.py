"""The built-in demo source (issue 17): the shipped photograph, the clip made from it, and the demo
through the real pipeline, `fer-edge run --demo` (stdout and MQTT) and `fer-edge recognize --demo`.

Nothing here needs ../shared: the demo is what a new user without it runs first.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import typing
from collections import Counter
from importlib import resources

import numpy as np
import pytest
import yaml

from conftest import REPO
from edge.config import AppConfig
from edge.config.source import SourceConfig
from edge.face_analyzer import FaceAnalyzer
from edge.frame_processor import FrameProcessor
from edge.interpreter import ModelError
from edge.sources import demo, open_source
from tests.helpers.broker import Broker, mosquitto_available

PHOTO_SHA256 = "74139dcfd87ccd42855a9e35bcd6df9d08640d041f77d29115e381bdebf60a59"
PER_FACE = ("face_appeared", "face_left")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`fer-edge ARGS` as its own process, from the checkout."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("NOTIFY_SOCKET", None)
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def check_demo_events(events: list[dict]) -> None:
    """Two faces appear and leave, each once, and a summary counts them."""
    types = Counter(e["type"] for e in events)
    assert types["face_appeared"] == 2 and types["face_left"] == 2, types
    assert types["summary"] >= 1 or types["emotion_changed"] >= 1, types
    appeared = [e["track_id"] for e in events if e["type"] == "face_appeared"]
    left = [e["track_id"] for e in events if e["type"] == "face_left"]
    assert len(set(appeared)) == 2 and sorted(appeared) == sorted(left)
    first_left = next(i for i, e in enumerate(events) if e["type"] == "face_left")
    second_appeared = [i for i, e in enumerate(events) if e["type"] == "face_appeared"][1]
    assert second_appeared < first_left, "the second face enters while the first is still in view"
    summaries = [e for e in events if e["type"] == "summary"]
    if summaries:
        assert sum(s["summary"]["faces"] for s in summaries) >= 2


# ----------------------------------------------------------------------------------------------
# The asset and the clip
# ----------------------------------------------------------------------------------------------

def test_demo_photograph_is_small_and_its_provenance_is_shipped_beside_it():
    path = resources.files("edge.sources").joinpath(demo.PHOTO)
    folder = path.parent
    photo = path.read_bytes()
    assert len(photo) < 200 * 1024
    assert hashlib.sha256(photo).hexdigest() == PHOTO_SHA256, "changed: update NOTICE (size, sha256, how)"
    notice = folder.joinpath("NOTICE").read_text()
    for words in ("Public domain", "NASA", "Eileen Collins", "astronaut.png", PHOTO_SHA256):
        assert words in notice
    # nothing else third-party beside it
    assert sorted(p.name for p in folder.iterdir()) == ["NOTICE", path.name]


def test_demo_clip_is_the_same_every_run_and_shaped_like_a_camera():
    assert demo.frame_count() == round(demo.DURATION_S * demo.FPS)
    a, b = demo.render(150), demo.render(150)
    assert a.shape == (demo.HEIGHT, demo.WIDTH, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(demo.render(150), demo.render(151)), "people move"
    # the first and last frames are empty wall: faces come and go inside the clip
    for i in (0, demo.frame_count() - 1):
        assert all(demo.position(keys, i / demo.FPS) is None for _, keys in demo.PEOPLE)


@pytest.mark.slow
def test_demo_source_plays_the_clip_once_in_media_time():
    src = open_source(SourceConfig(uri="demo"))
    assert src.kind == "demo" and not src.live
    frames = list(src)
    assert len(frames) == demo.frame_count()
    assert [f.index for f in frames[:3]] == [0, 1, 2]
    assert frames[-1].timestamp == pytest.approx((demo.frame_count() - 1) / demo.FPS)
    assert src.stats.state == "ended" and src.stats.failures == 0


@pytest.mark.slow
def test_demo_source_loops_when_asked():
    src = open_source(SourceConfig(uri="demo", loop=True))
    n = 0
    for _ in src:
        n += 1
        if n == demo.frame_count() + 10:
            src.close()
    assert n == demo.frame_count() + 10


# ----------------------------------------------------------------------------------------------
# Through the pipeline
# ----------------------------------------------------------------------------------------------

def events_of_demo(cfg: AppConfig, analyzer: FaceAnalyzer | None = None) -> list[dict]:
    proc = FrameProcessor(cfg, analyzer or FaceAnalyzer(cfg))
    events = []
    for frame in open_source(cfg.source):
        events += proc.process(frame, None).events
    events += proc.close()
    return [json.loads(e.to_json()) for e in events]


def detector_cases() -> list[tuple[str, str]]:
    """(detector type, profile) pairs the demo must work with: every type the config accepts, and
    every profile of the default type (Haar's room search at full resolution takes a minute here,
    so Haar runs at the kiosk profile)."""
    members = typing.get_args(AppConfig.model_fields["detector"].annotation)
    types = sorted(m.model_fields["type"].default for m in members)
    default = AppConfig().detector
    profiles = typing.get_args(type(default).model_fields["profile"].annotation)
    cases = [(t, "kiosk" if t == "haar" else default.profile) for t in types]
    return cases + [(default.type, p) for p in profiles if p != default.profile and (default.type, p) not in cases]


@pytest.mark.slow
def test_demo_events_with_the_default_config():
    cfg = AppConfig.model_validate({"source": {"uri": "demo"}})
    check_demo_events(events_of_demo(cfg))


@pytest.mark.slow      # the default pair runs in the fast tier too (test_demo_events_with_the_default_config)
@pytest.mark.parametrize("detector,profile", detector_cases())
def test_demo_events_with_each_detector_and_profile(detector, profile):
    cfg = AppConfig.model_validate({"source": {"uri": "demo"}, "detector": {
        "type": detector, "profile": profile, "fallback_to_haar": False}})   # this detector, not Haar in its place
    try:
        analyzer = FaceAnalyzer(cfg)
    except ModelError as exc:                    # a fetched model that is not installed here
        pytest.skip(f"detector {detector} not available: {exc}")
    check_demo_events(events_of_demo(cfg, analyzer))


# ----------------------------------------------------------------------------------------------
# The commands
# ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_run_with_source_demo_prints_the_events_and_exits_0_at_the_end(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"source": {"uri": "demo"}, "queue": {"path": str(tmp_path / "q.db")}}))
    r = cli("run", "--config", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    events = json_lines(r.stdout)
    assert all(e["camera"] == "cam0" and e["id"] and e["seq"] > 0 for e in events)
    check_demo_events(events)
    assert "the source ended" in r.stderr


@pytest.mark.slow
def test_run_demo_replaces_the_configured_camera_and_plays_at_its_frame_rate(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"source": {"uri": "/dev/video97", "name": "door"},
                                   "queue": {"path": str(tmp_path / "q.db")}}))
    r = cli("run", "--demo", "--config", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "video97" not in r.stderr
    events = json_lines(r.stdout)
    assert {e["camera"] for e in events} == {"door"}, "the configured camera id is kept"
    check_demo_events(events)


@pytest.mark.slow
@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed (apt install mosquitto)")
def test_run_with_source_demo_publishes_over_mqtt(tmp_path):
    with Broker() as b:
        sub = b.subscribe_collect("fer-edge/+/events")
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump({"device": {"id": "demo1"}, "source": {"uri": "demo"},
                                       "mqtt": b.mqtt_config(prefix="fer-edge"),
                                       "queue": {"path": str(tmp_path / "q.db")}}))
        r = cli("run", "--config", str(cfg))
        assert r.returncode == 0, r.stderr[-2000:]
        assert json_lines(r.stdout) == [], "with MQTT configured, events go to the broker, not stdout"
        assert sub.wait_for(lambda msgs: sum(json.loads(m.payload)["type"] == "summary" for m in msgs) >= 1,
                            timeout=60)
        events = sub.json()
        sub.close()
    assert {e["device"] for e in events} == {"demo1"}
    check_demo_events(events)


@pytest.mark.slow
def test_recognize_with_source_demo_prints_the_events():
    r = cli("recognize", "--source", "demo", "--no-window", "--events")
    assert r.returncode == 0, r.stderr[-2000:]
    check_demo_events(json_lines(r.stdout))


def overlay_pixels(image: np.ndarray) -> int:
    """Pixels of the overlay's 'happiness' green (the demo scene itself has none)."""
    b, g, r = (image[:, :, i].astype(int) for i in range(3))
    return int(np.count_nonzero((g > 150) & (r < 70) & (b < 70)))


@pytest.mark.slow
def test_recognize_demo_shows_the_overlay():
    assert all(overlay_pixels(demo.render(i)) == 0 for i in range(0, demo.frame_count(), 10))
    import cv2
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "recognize", "--demo", "--no-window",
                             "--mjpeg", "0", "--events"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stderr:
            if "preview at " in line:
                url = line.split("preview at ", 1)[1].strip()
                break
        assert url, "no 'preview at URL' line"
        best = 0
        while proc.poll() is None and best < 500:
            try:
                data = urllib.request.urlopen(url.rstrip("/") + "/snapshot.jpg", timeout=5).read()
            except OSError:
                continue
            picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert picture.shape == (demo.HEIGHT, demo.WIDTH, 3)
            best = max(best, overlay_pixels(picture))
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert best >= 500, "no tracked face drawn on the preview"
    assert proc.returncode == 0
    check_demo_events(json_lines(out))
