"""Several cameras in one service (`cameras:`): config, shared model with batched classification, the example.

The RTSP tests (two real GStreamer streams, one cut) are in tests/test_cameras_rtsp.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.config import ConfigError, load_text
from tests.conftest import require_shared

ROOT = Path(__file__).resolve().parent.parent


def test_source_alone_is_one_camera() -> None:
    cfg = load_text("source: {uri: demo, name: hall}").config
    assert [c.source.name for c in cfg.camera_configs()] == ["hall"]
    assert cfg.camera_configs()[0] is cfg


def test_each_camera_gets_its_source_and_overrides() -> None:
    cfg = load_text("""
schedule: {classify_hz: 5}
quality: {min_face_px: 40}
cameras:
  - {name: crowd, uri: rtsp://10.0.0.2/s, quality: {min_face_px: 20}, schedule: {classify_hz: 2}}
  - {name: kiosk, uri: "0"}
  - {name: spare, uri: "1", enabled: false}
""").config
    cams = cfg.camera_configs()
    assert [c.source.name for c in cams] == ["crowd", "kiosk"]          # disabled ones are not opened
    assert (cams[0].quality.min_face_px, cams[0].schedule.classify_hz) == (20, 2.0)
    assert (cams[1].quality.min_face_px, cams[1].schedule.classify_hz) == (40, 5.0)
    assert cams[0].source.uri == "rtsp://10.0.0.2/s" and not cams[0].cameras


@pytest.mark.parametrize("text, expected", [
    ("source: {uri: demo}\ncameras: [{uri: demo, name: a}]", "either `source`"),
    ("cameras: [{uri: demo, name: a}, {uri: '0', name: a}]", "'a' is used twice"),
    ("cameras: [{uri: demo, name: a, enabled: false}]", "every camera has enabled: false"),
    ("cameras: [{uri: demo, name: 'a b'}]", "cameras.0.name"),
])
def test_bad_camera_lists_are_one_clear_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_text(text)
    assert expected in str(err.value)


def _normalised(events: list) -> list[str]:
    """Events without ids, times and the camera id (that differs between the runs compared)."""
    out = []
    for event in events:
        data = event.to_dict()
        for key in ("id", "instance", "ts", "epoch", "camera", "seq"):
            data.pop(key, None)
        if isinstance(data.get("summary"), dict):
            data["summary"].pop("start", None)
        out.append(json.dumps(data, sort_keys=True))
    return out


def test_batched_rounds_give_each_camera_the_events_it_gives_alone() -> None:
    """Two cameras share one analyzer and one model call per round; each gets exactly its solo events."""
    from edge.cameras import FrameBatch, MultiProcessor
    from edge.clock import dated
    from edge.config import AppConfig
    from edge.face_analyzer import FaceAnalyzer
    from edge.frame_processor import FrameProcessor
    from edge.sources import open_source

    cfg = AppConfig.model_validate({"cameras": [{"name": "a", "uri": "demo"}, {"name": "b", "uri": "demo"}]})
    analyzer = FaceAnalyzer(cfg)
    try:
        solo_cfg = AppConfig.model_validate({"source": {"uri": "demo", "name": "a"}})
        solo = FrameProcessor(solo_cfg, analyzer=analyzer)
        solo_events = []
        for frame in dated(open_source(solo_cfg.source), False):
            solo_events += solo.process(frame).events
        solo_events += solo.close()

        cams = cfg.camera_configs()
        multi = MultiProcessor(cams, analyzer)
        # rounds in lockstep (frame i of both cameras), as two cameras started together deliver them
        rounds = zip(dated(open_source(cams[0].source), False), dated(open_source(cams[1].source), False))
        events = []
        for frame_a, frame_b in rounds:
            events += multi.process(FrameBatch([(frame_a, False), (frame_b, False)])).events
        events += multi.close()
        stats = multi.take_stats()
    finally:
        analyzer.close()
    by_camera = {name: [e for e in events if e.camera == name] for name in ("a", "b")}
    assert [e.type for e in solo_events].count("face_appeared") == 2
    for name in ("a", "b"):
        assert _normalised(by_camera[name]) == _normalised(solo_events), name
    # the two cameras' faces went through the model together: up to 4 faces (2 per camera) per call
    assert stats["classify_batch"]["max"] == 4 and stats["classify_batch"]["multi_camera_calls"] >= 10, stats
    assert set(stats["cameras"]) == {"a", "b"}
    assert stats["frames"] == stats["cameras"]["a"]["frames"] + stats["cameras"]["b"]["frames"]


def test_a_quiet_camera_is_served_every_round_beside_a_busy_one() -> None:
    """Fair rounds: every camera with a frame ready is served in the next round, however costly another is."""
    from edge.cameras import CameraSet
    from edge.config import AppConfig
    from edge.sources import open_source

    video = require_shared("video", "crowd_street_test.mp4")
    cfg = AppConfig.model_validate({"cameras": [{"name": "crowd", "uri": str(video)},
                                                {"name": "kiosk", "uri": "demo"}]})
    cameras = CameraSet([open_source(c.source) for c in cfg.camera_configs()]).start()
    rounds = iter(cameras)
    served = {"crowd": 0, "kiosk": 0}
    try:
        for _ in range(40):
            deadline = time.monotonic() + 10
            while not all(feed.ready() for feed in cameras.feeds):     # both readers have a frame waiting
                assert time.monotonic() < deadline, "a reader did not deliver within 10 s"
                time.sleep(0.005)
            batch = next(rounds)
            assert sorted(frame.camera for frame, _ in batch.frames) == ["crowd", "kiosk"]
            for frame, _ in batch.frames:
                served[frame.camera] += 1
    finally:
        cameras.close()
    assert served == {"crowd": 40, "kiosk": 40}


def test_a_stuck_camera_stops_the_watchdog_and_an_outage_does_not() -> None:
    """Healthy only while every camera progresses or is in a counted outage."""
    from edge.cameras import CameraSet
    from edge.config.source import SourceConfig
    from edge.service.health import ProgressWatch
    from edge.sources import open_source

    cameras = CameraSet([open_source(SourceConfig(uri="demo", name="a", pace=True)),
                         open_source(SourceConfig(uri="demo", name="b", pace=True))])
    start = time.monotonic()
    watch = ProgressWatch(start)
    healthy, _ = watch.check(start + 1, cameras, 20.0)
    assert healthy
    b = cameras.feeds[1]
    healthy, status = watch.check(start + 25, cameras, 20.0)          # nobody took a frame for 25 s
    assert not healthy and "camera a, b" in status
    watch = ProgressWatch(start)
    b.source.stats.state = "reopening"                                  # b is in an outage (backing off)
    cameras.feeds[0].last_taken = start + 24
    assert watch.check(start + 25, cameras, 20.0)[0]
    cameras.close()


@pytest.mark.slow
def test_two_cameras_example_ends_by_itself_with_faces_from_both() -> None:
    """docs/examples/two_cameras.yaml: the demo and the shared clip in one process, exit 0, faces from both."""
    require_shared("video", "single_face.mp4")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("FER_EDGE_SOURCE", None)
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", "docs/examples/two_cameras.yaml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    appeared = {e["camera"] for e in events if e["type"] == "face_appeared"}
    assert appeared == {"lobby", "kiosk"}, events
    assert proc.stderr.count("running: 2 cameras") == 1               # one process, both cameras
    assert {e["camera"] for e in events if e["type"] == "summary"} == {"lobby", "kiosk"}


def test_a_crowd_camera_does_not_put_a_kiosk_camera_on_the_room_search() -> None:
    """The auto profile's timers are per camera: one detector serves both, each camera decides alone."""
    from edge.cameras import FrameBatch, MultiProcessor
    from edge.clock import dated
    from edge.config import AppConfig
    from edge.face_analyzer import FaceAnalyzer
    from edge.sources import open_source

    crowd = require_shared("video", "crowd_street_test.mp4")
    single = require_shared("video", "single_face.mp4")
    cfg = AppConfig.model_validate({"cameras": [{"name": "crowd", "uri": str(crowd)},
                                                {"name": "kiosk", "uri": str(single)}]})
    analyzer = FaceAnalyzer(cfg)
    if not hasattr(analyzer.detector, "room_runs"):
        analyzer.close()
        pytest.skip("the BlazeFace models are not fetched (python deploy/fetch_models.py): no auto profile")
    try:
        solo = FaceAnalyzer(AppConfig.model_validate({"source": {"uri": str(single), "name": "kiosk"}}))
        for frame in list(dated(open_source(cfg.camera_configs()[1].source), False))[:60]:
            solo.detect(frame)
        solo_runs = solo.detector.room_runs
        solo.close()
        multi = MultiProcessor(cfg.camera_configs(), analyzer)
        cams = [dated(open_source(c.source), False) for c in cfg.camera_configs()]
        kiosk_runs = 0
        for _, (a, b) in zip(range(60), zip(*cams)):
            multi.process(FrameBatch([(a, False)]))
            before = analyzer.detector.room_runs
            multi.process(FrameBatch([(b, False)]))
            kiosk_runs += analyzer.detector.room_runs - before
    finally:
        analyzer.close()
    assert kiosk_runs <= solo_runs // 5 + 1, (kiosk_runs, solo_runs)   # detect_every 5: 1 in 5 frames detects


def test_a_camera_can_have_its_own_detector_profile() -> None:
    cfg = load_text("""
detector: {type: blazeface, profile: kiosk}
cameras:
  - {name: ceiling, uri: rtsp://10.0.0.2/s, profile: room}
  - {name: counter, uri: "0"}
""").config
    ceiling, counter = cfg.camera_configs()
    assert (ceiling.detector.profile, counter.detector.profile) == ("room", "kiosk")
    assert cfg.shared_detector().profile == "auto"        # one detector holding both searches
    assert cfg.detector.profile == "kiosk"                # the file's section is left as written
    same = load_text("detector: {type: blazeface, profile: kiosk}\ncameras: [{name: a, uri: '0', profile: room}]").config
    assert same.shared_detector().profile == "room"       # one profile among the cameras: only its search
    with pytest.raises(ConfigError, match="cameras.0.profile"):
        load_text("cameras: [{name: a, uri: '0', profile: crowd}]")


def test_changing_a_cameras_profile_rebuilds_the_shared_detector_only_when_its_searches_change() -> None:
    from edge.control.reconfigure import plan_change

    base = "detector: {type: blazeface, profile: kiosk}\ncameras: [{name: a, uri: '0'%s}, {name: b, uri: '1'}]\n"
    old = load_text(base % "").config
    assert plan_change(old, load_text(base % ", profile: room").config).new_analyzer          # kiosk -> auto
    assert not plan_change(old, load_text(base % ", profile: kiosk").config).new_analyzer     # still kiosk
    assert not plan_change(old, load_text(base % ", schedule: {classify_hz: 1}").config).new_analyzer


def test_each_camera_runs_the_search_of_its_own_profile() -> None:
    """A room camera and a kiosk camera on one shared detector find what each finds alone with its profile."""
    from edge.clock import dated
    from edge.config import AppConfig
    from edge.face_analyzer import FaceAnalyzer, PipelineSections
    from edge.sources import open_source

    crowd = require_shared("video", "crowd_street_test.mp4")
    single = require_shared("video", "single_face.mp4")
    cfg = AppConfig.model_validate({"detector": {"type": "blazeface", "profile": "kiosk"},
                                    "cameras": [{"name": "crowd", "uri": str(crowd), "profile": "room"},
                                                {"name": "kiosk", "uri": str(single)}]})
    shared = FaceAnalyzer(PipelineSections(cfg.shared_detector(), cfg.align, cfg.model), classify=False)
    if not hasattr(shared.detector, "room_runs"):
        shared.close()
        pytest.skip("the BlazeFace models are not fetched (python deploy/fetch_models.py): no room search")
    cams = cfg.camera_configs()
    try:
        got: dict[str, list] = {"crowd": [], "kiosk": []}
        alone: dict[str, list] = {"crowd": [], "kiosk": []}
        for cam in cams:
            solo = FaceAnalyzer(PipelineSections(cam.detector, cam.align, cam.model), classify=False)
            frames = [f for _, f in zip(range(12), dated(open_source(cam.source), False))]
            for frame in frames:
                alone[cam.source.name].append([d.box for d in solo.detect(frame, cam.detector.profile)])
                runs = shared.detector.room_runs
                got[cam.source.name].append([d.box for d in shared.detect(frame, cam.detector.profile)])
                ran_room = shared.detector.room_runs - runs
                assert ran_room == (1 if cam.source.name == "crowd" else 0), (cam.source.name, frame.index)
            solo.close()
    finally:
        shared.close()
    assert got == alone
    assert sum(len(boxes) for boxes in got["crowd"]) > sum(len(boxes) for boxes in got["kiosk"]) > 0
