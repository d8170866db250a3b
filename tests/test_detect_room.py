"""Far faces: BlazeFace full-range over tiles, YuNet (an option), the camera profile, fetching YuNet.

Real frames from ../shared/data/video; YuNet from ../shared/teachers/opencv_zoo (a copy of the
opencv_zoo file, the same sha256 the fetch script pins) - tests skip clearly where either is absent.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, require_shared
from conftest_pipeline import require_blazeface
from edge.config.detector import (BlazeFaceConfig, BlazeFaceFullOptions, CommonDetectorOptions, HaarConfig,
                                  YuNetConfig, YuNetOptions)
from edge.detect import ProfileDetector, make_detector
from edge.detect.blazeface_full import BlazeFaceFullDetector
from edge.detect.fetched import BLAZEFACE_FULL, YUNET, find_fetched_model
from edge.detect.haar import HaarDetector
from edge.detect.yunet import YuNetDetector
from edge.interpreter import ModelError, sha256_file

import fetch_models  # noqa: E402

SHARED_YUNET = REPO.parent / "shared" / "teachers" / "opencv_zoo" / YUNET.filename


def frame_of(video: str, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(require_shared("video", video)))
    for _ in range(index + 1):
        ok, image = cap.read()
    cap.release()
    assert ok
    return image


def require_full_range() -> Path:
    require_blazeface()
    path = find_fetched_model(BLAZEFACE_FULL.filename)
    if path is None:
        pytest.skip("BlazeFace full-range not fetched: run `python deploy/fetch_models.py`")
    return path


def require_yunet() -> Path:
    if not SHARED_YUNET.is_file():
        pytest.skip(f"YuNet not found: {SHARED_YUNET} (or run `python deploy/fetch_models.py --yunet`)")
    return SHARED_YUNET


def test_full_range_anchor_grid_is_48_by_48():
    anchors = BlazeFaceFullDetector.ANCHORS
    assert anchors.shape == (2304, 2)
    assert np.allclose(anchors[0], [0.5 / 48, 0.5 / 48]) and np.allclose(anchors[47], [47.5 / 48, 0.5 / 48])


def test_full_range_tiles_find_the_far_faces_of_the_crowd():
    """Frame 100 of the crowd: short-range finds nobody; full-range over tiles finds a dozen faces, once each."""
    require_full_range()
    frame = frame_of("crowd_street_test.mp4", 100)
    short = make_detector(BlazeFaceConfig(profile="kiosk", fallback_to_haar=False))
    assert short.detect(frame) == []
    room = make_detector(BlazeFaceConfig(profile="room", fallback_to_haar=False))
    assert isinstance(room, BlazeFaceFullDetector) and room.detector_id.endswith("+tiles256-512")
    dets = room.detect(frame)
    assert len(dets) >= 12
    boxes = np.array([d.box for d in dets])
    assert (boxes[:, 2] < 100).all() and (boxes[:, 2] >= 20).all()
    for i, a in enumerate(boxes):                    # each face once: no box mostly inside another
        for b in boxes[i + 1:]:                      # (in a crowd, one head can hide part of another)
            ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
            iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
            assert ix * iy < 0.5 * min(a[2] * a[3], b[2] * b[3])
    whole = BlazeFaceFullDetector(BlazeFaceFullOptions(tiles=[]), CommonDetectorOptions())
    assert len(whole.detect(frame)) < len(dets) / 3       # the tiles are what finds them


def test_full_range_wrong_file_is_one_clear_error(tmp_path):
    bad = tmp_path / BLAZEFACE_FULL.filename
    bad.write_bytes(require_full_range().read_bytes()[:1000])
    with pytest.raises(ModelError) as info:
        BlazeFaceFullDetector(BlazeFaceFullOptions(model_path=str(bad)))
    assert "is not the pinned BlazeFace model (full-range" in str(info.value) and "\n" not in str(info.value)


def test_yunet_finds_the_face_with_five_landmarks():
    frame = frame_of("single_face.mp4", 0)
    det = YuNetDetector(YuNetOptions(model_path=str(require_yunet())))
    (face,) = det.detect(frame)
    x, y, w, h = face.box
    lm = face.landmarks
    assert set(lm) == {"right_eye", "left_eye", "nose", "mouth", "mouth_right", "mouth_left"}
    assert lm["right_eye"][0] < x + w / 2 < lm["left_eye"][0]           # the subject's right eye is image-left
    assert lm["mouth_right"][0] < lm["mouth_left"][0]
    assert lm["right_eye"][1] < lm["nose"][1] < lm["mouth"][1]
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in lm.values())


def test_yunet_missing_says_how_to_fetch_and_falls_back_only_when_asked(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FER_EDGE_MODELS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if Path("/var/lib/fer-edge/models", YUNET.filename).exists():
        pytest.skip("a system-wide YuNet model is installed in /var/lib/fer-edge/models")
    with pytest.raises(ModelError, match=r"face_detection_yunet_2023mar.onnx not found in .*fetch_models.py --yunet"):
        make_detector(YuNetConfig(fallback_to_haar=False))
    caplog.set_level(logging.WARNING, "edge.detect")
    det = make_detector(YuNetConfig(profile="kiosk"))
    assert isinstance(det, HaarDetector)
    (record,) = caplog.records
    assert "--yunet" in record.getMessage() and "using the Haar detector instead" in record.getMessage()


def test_yunet_wrong_file_is_refused(tmp_path):
    bad = tmp_path / YUNET.filename
    bad.write_bytes(require_yunet().read_bytes()[:-10])
    with pytest.raises(ModelError, match="is not the pinned YuNet model"):
        YuNetDetector(YuNetOptions(model_path=str(bad)))


def test_auto_profile_stays_on_the_kiosk_pass_for_a_near_face():
    require_full_range()
    det = make_detector(BlazeFaceConfig())
    assert isinstance(det, ProfileDetector)
    cap = cv2.VideoCapture(str(require_shared("video", "single_face.mp4")))
    found = 0
    for i in range(0, 60, 5):
        for _ in range(5):
            ok, frame = cap.read()
        faces = det.detect_at(frame, i / 25.0)
        found += len(faces) == 1
        assert det.mode == "kiosk"
    assert det.room_runs == 0 and found == 12


def test_auto_profile_searches_the_room_and_holds_it():
    require_full_range()
    det = make_detector(BlazeFaceConfig(room_hold_s=5.0, room_probe_s=0.0))
    crowd = frame_of("crowd_street_test.mp4", 100)
    near = cv2.resize(frame_of("single_face.mp4", 0), (1280, 720))
    assert len(det.detect_at(crowd, 0.0)) >= 12 and det.mode == "room"   # kiosk pass found nobody
    assert det.detect_at(near, 1.0) and det.mode == "room"                # far faces seen 1 s ago: hold
    assert det.room_runs == 2
    assert det.detect_at(near, 7.0) and det.mode == "kiosk"               # hold over, a near face
    assert det.room_runs == 2


def test_auto_profile_probes_the_room_behind_a_near_face():
    require_full_range()
    det = make_detector(BlazeFaceConfig(room_probe_s=2.0))
    near = frame_of("single_face.mp4", 0)
    for t in (0.0, 0.5, 1.0, 1.5):
        det.detect_at(near, t)
    assert det.room_runs == 0
    det.detect_at(near, 2.0)
    assert det.room_runs == 1 and det.mode == "room"


def test_haar_profiles_search_at_their_widths():
    auto = make_detector(HaarConfig())
    assert isinstance(auto, ProfileDetector)
    assert (auto.kiosk.detect_width, auto.room.detect_width) == (320, 0)
    assert isinstance(make_detector(HaarConfig(detect_width=0)), HaarDetector)   # both searches the same: one


# ------------------------------------------------------------------------------------------------
# deploy/fetch_models.py --yunet [--from DIR]
# ------------------------------------------------------------------------------------------------

def test_fetch_yunet_from_a_local_folder(tmp_path, capsys):
    src = require_yunet().parent
    models = tmp_path / "models"
    assert fetch_models.fetch(YUNET, models, source_dir=src) == models / YUNET.filename
    assert sha256_file(models / YUNET.filename) == YUNET.sha256
    assert "installed face_detection_yunet_2023mar.onnx from" in capsys.readouterr().out


def test_fetch_yunet_refuses_a_file_that_is_not_the_pinned_one(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / YUNET.filename).write_bytes(b"not the model")
    models = tmp_path / "models"
    models.mkdir()
    for name in (BLAZEFACE_FULL.filename, "face_detection_short_range.tflite"):   # no BlazeFace download
        found = find_fetched_model(name)
        if found is None:
            pytest.skip("BlazeFace not fetched")
        (models / name).write_bytes(found.read_bytes())
    assert fetch_models.main([str(models), "--yunet", "--from", str(src)]) == 1
    assert "is not the pinned" in capsys.readouterr().err
    assert not (models / YUNET.filename).exists()


def test_fetch_from_without_yunet_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        fetch_models.main([str(tmp_path), "--from", str(tmp_path)])
    assert info.value.code == 2
