"""Detector backends are plug-ins: a new one is two new files, and nothing shared is edited.

The package is copied as it is into a temporary directory and only files are added there: a
backend `fixed` (its options in edge/config/detectors/fixed.py, a detector that returns one fixed
face in edge/detect/fixed.py) and a type `ghost` (options only, no backend). Both are found the
way the shipped backends are (every module of edge/config/detectors/ and of edge/detect/ is
imported); the real `fer-edge` commands run from the copy in subprocesses (``cwd`` and
``PYTHONPATH``: the copy, not this checkout) and see them.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import edge.detect
from edge.config.detector import DETECTOR_TYPES, _checked
from edge.config.detectors import DetectorType, Plugin, SubSection, discover
from edge.config.detectors.haar import HaarOptions
from edge.detect import registry
from edge.interpreter import ModelError

REPO = Path(__file__).resolve().parents[1]

FIXED_OPTIONS = '''\
"""Options of `type: fixed`: a test detector that finds one face where it is told."""
from pydantic import Field

from edge.config.base import StrictModel
from edge.config.detectors import DetectorType, Plugin, SubSection


class FixedOptions(StrictModel):
    """Sub-section `fixed`: where the face is."""

    box: tuple[float, float, float, float] = Field((10.0, 20.0, 60.0, 60.0), description="x, y, w, h of the face.")
    score: float = Field(0.9, ge=0.0, le=1.0, description="Its score.")


DETECTOR = Plugin(sections=(SubSection("fixed", FixedOptions, "A fixed face"),),
                  types=(DetectorType("fixed", "FixedConfig", "Detector `type: fixed`: one fixed face."),))
'''

FIXED_BACKEND = '''\
"""`type: fixed`: one face at the configured box, kiosk pass and room search alike."""
import numpy as np

from edge.config.detector import CommonDetectorOptions, DetectorSection
from edge.detect.base import keep_largest
from edge.detect.registry import backend
from edge.types import Detection


class FixedDetector:
    def __init__(self, box, score, common, room):
        self.box, self.score, self.common = tuple(box), score, common
        self.detector_id = "fixed-room" if room else "fixed-kiosk"

    def detect(self, image: np.ndarray) -> list[Detection]:
        return keep_largest([Detection(box=self.box, score=self.score)], self.common)


@backend("fixed")
def build(section: DetectorSection, common: CommonDetectorOptions, room: bool) -> FixedDetector:
    return FixedDetector(section.fixed.box, section.fixed.score, common, room)
'''

GHOST_OPTIONS = '''\
"""Options of `type: ghost`, whose backend nobody wrote."""
from edge.config.base import StrictModel
from edge.config.detectors import DetectorType, Plugin, SubSection


class GhostOptions(StrictModel):
    """Sub-section `ghost`."""

    level: int = 1


DETECTOR = Plugin(sections=(SubSection("ghost", GhostOptions, "No backend"),),
                  types=(DetectorType("ghost", "GhostConfig", "Detector `type: ghost`."),))
'''

ADDED = {"edge/config/detectors/fixed.py": FIXED_OPTIONS, "edge/detect/fixed.py": FIXED_BACKEND,
         "edge/config/detectors/ghost.py": GHOST_OPTIONS}


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The package as it is, plus the added files only."""
    root = tmp_path_factory.mktemp("plugged")
    shutil.copytree(REPO / "edge", root / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, text in ADDED.items():
        assert not (root / rel).exists()
        (root / rel).write_text(text)
    # nothing that was there is edited: every file but the added ones is the checkout's
    for path in (root / "edge").rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in ADDED:
            assert filecmp.cmp(path, REPO / rel, shallow=False), rel
    return root


def run_in(copy: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=120)


def test_the_copy_is_what_runs(copy):
    res = run_in(copy, "-c", "import edge; print(edge.__file__)")
    assert res.stdout.strip() == str(copy / "edge" / "__init__.py"), res.stderr


def test_a_new_type_validates_and_its_sub_section_is_strict(copy):
    (copy / "ok.yaml").write_text("detector:\n  type: fixed\n  fixed:\n    score: 0.8\n")
    ok = run_in(copy, "-m", "edge.cli", "config", "validate", "ok.yaml")
    assert ok.returncode == 0 and ok.stdout.startswith("ok.yaml: OK"), ok.stdout + ok.stderr

    (copy / "typo.yaml").write_text("detector:\n  type: fixed\n  fixed:\n    scroe: 0.8\n")
    bad = run_in(copy, "-m", "edge.cli", "config", "validate", "typo.yaml")
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[0] == ("typo.yaml:4: detector.fixed.scroe: unknown key (allowed: box, score); "
                                          "did you mean 'score'?"), bad.stderr

    (copy / "type.yaml").write_text("detector:\n  type: fixd\n")
    bad = run_in(copy, "-m", "edge.cli", "config", "validate", "type.yaml")
    assert bad.stderr.splitlines()[0] == ("type.yaml:2: detector.type: unknown type 'fixd' (expected one of "
                                          "'blazeface', 'yunet', 'haar', 'fixed', 'ghost')"), bad.stderr


def test_validating_a_new_type_loads_no_runtime_code(copy):
    script = textwrap.dedent("""
        import json, sys
        from edge.config import load_text
        det = load_text("detector: {type: fixed, fixed: {box: [1, 2, 30, 40]}}").config.detector
        print(json.dumps([type(det).__name__, det.fixed.box, sorted(m for m in sys.modules
                          if m.startswith(("cv2", "edge.detect", "ai_edge_litert", "tflite_runtime")))]))
    """)
    res = run_in(copy, "-c", script)
    assert json.loads(res.stdout) == ["FixedConfig", [1.0, 2.0, 30.0, 40.0], []], res.stderr


def test_make_detector_builds_and_runs_the_new_backend(copy):
    script = textwrap.dedent("""
        import json
        import numpy as np
        from edge.config import load_text
        from edge.detect import make_detector
        out = {}
        for profile in ("kiosk", "room", "auto"):
            cfg = load_text("detector: {type: fixed, profile: %s, fixed: {box: [5, 6, 70, 80], score: 0.7}}"
                            % profile).config.detector
            det = make_detector(cfg)
            out[profile] = [det.detector_id, [[*d.box, d.score] for d in det.detect(np.zeros((240, 320, 3), np.uint8))]]
        print(json.dumps(out))
    """)
    res = run_in(copy, "-c", script)
    assert res.returncode == 0, res.stderr
    face = [[5.0, 6.0, 70.0, 80.0, 0.7]]
    assert json.loads(res.stdout) == {"kiosk": ["fixed-kiosk", face], "room": ["fixed-room", face],
                                      "auto": ["fixed-kiosk+auto:fixed-room", face]}


def test_fer_edge_detect_offers_and_runs_the_new_backend(copy):
    photo = "edge/sources/demo_data/astronaut.jpg"
    res = run_in(copy, "-m", "edge.cli", "detect", photo, "--detector", "fixed", "--no-classify")
    assert res.returncode == 0, res.stderr
    (face,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert face["detector"] == "fixed-kiosk+auto:fixed-room" and face["box"] == [10.0, 20.0, 60.0, 60.0], face


def test_a_type_with_options_and_no_backend_is_one_error_line(copy):
    # fallback_to_haar (on by default) is for a model that cannot be opened, not for a missing backend
    (copy / "ghost.yaml").write_text("detector:\n  type: ghost\n")
    ok = run_in(copy, "-m", "edge.cli", "config", "validate", "ghost.yaml")
    assert ok.returncode == 0, ok.stderr
    res = run_in(copy, "-m", "edge.cli", "detect", "edge/sources/demo_data/astronaut.jpg", "--config", "ghost.yaml",
                 "--no-classify")
    assert res.returncode == 3 and res.stdout == ""
    ours = [line for line in res.stderr.splitlines() if line.strip()]
    assert ours == ["fer-edge detect: detector type 'ghost' has options (edge/config/detectors/) but no backend: "
                    "no module of edge/detect/ registers one with @backend('ghost')"], res.stderr


def test_the_shipped_backends_are_all_registered():
    # this checkout: every type the config offers has its backend, and the lookup of another is one line
    registry.discover(edge.detect.__path__, "edge.detect")
    assert set(DETECTOR_TYPES) == {"blazeface", "yunet", "haar"} <= set(registry._BACKENDS)
    with pytest.raises(ModelError, match=r"^detector type 'nope' has options .* @backend\('nope'\)$"):
        registry.find("nope")


def test_discovery_is_sorted_and_declarations_must_not_clash():
    plugins = discover()
    assert [t.name for p in plugins for t in p.types] == ["blazeface", "yunet", "haar"]
    haar = Plugin((SubSection("haar", HaarOptions, "Haar"),), (DetectorType("haar", "HaarConfig", "", flat="haar"),))
    with pytest.raises(TypeError, match="detector sub-section haar declared twice"):
        _checked([haar, haar])
    with pytest.raises(TypeError, match="sub-section profile is a key of the detector section"):
        _checked([Plugin((SubSection("profile", HaarOptions, ""),))])
    with pytest.raises(TypeError, match="flat form of type x names no sub-section"):
        _checked([Plugin((), (DetectorType("x", "XConfig", "", flat="y"),))])
