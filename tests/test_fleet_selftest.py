"""The self-test verdict: agreement threshold and latency ratio against the running model (no broker needed)."""
from __future__ import annotations

import numpy as np
import pytest

from edge.control.selftest import Faces, Result, SelfTestError


def test_passes_with_enough_agreement_and_a_latency_within_the_ratio():
    assert Result(40, 36, 2.0, 1.0, 0.8, 3.0).passed


def test_fails_on_agreement_and_says_by_how_much():
    r = Result(40, 8, 1.0, 1.0, 0.8, 3.0)
    assert not r.passed and r.problem() == "self-test: 8 of 40 faces classified as expected (20%, needs 80%)"


def test_fails_when_slower_than_the_ratio_allows():
    r = Result(40, 40, 3.5, 1.0, 0.8, 3.0)
    assert not r.passed and "more than 3 x the running model's 1.00 ms" in r.problem()


def test_faces_round_trip_and_bad_files_are_named():
    faces = Faces(np.zeros((2, 48, 48), np.uint8), ("neutral", "happiness"))
    again = Faces.from_bytes(faces.to_bytes())
    assert again.labels == faces.labels and again.images.shape == (2, 48, 48)
    with pytest.raises(SelfTestError, match="unreadable"):
        Faces.from_bytes(b"not an npz")
    bad = Faces(np.zeros((2, 48, 48), np.float32), ("a", "b")).to_bytes()
    with pytest.raises(SelfTestError, match="uint8"):
        Faces.from_bytes(bad)
