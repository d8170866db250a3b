"""Shared test fixtures: where the shared data lives, and skipping clearly where it is absent."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    # The fast tier for day-to-day work is `python3 -m pytest -m "not slow"`; `python3 -m pytest` runs everything.
    # A test taking more than a few seconds carries @pytest.mark.slow (or its file a `pytestmark`) itself.
    config.addinivalue_line("markers", "slow: takes more than a few seconds (training, service processes, "
                                       "broker outages); left out by -m 'not slow'")


def require_shared(*parts: str) -> Path:
    """Path inside ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (tests that need FER+, photos or video look in ../shared/data)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (skips the test where it is absent)."""
    return require_shared()


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """No test touches the user's real state: a default queue.path lands in a temporary folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.fixture(autouse=True)
def _closes_its_mqtt_sinks():
    """A test closes the MqttSinks it opens: a leftover client keeps reconnecting and logging into later tests."""
    before = {t for t in threading.enumerate() if t.name == "mqtt-sender"}
    yield
    deadline = time.monotonic() + 3.0
    while True:
        left = [t for t in threading.enumerate() if t.name == "mqtt-sender" and t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"{len(left)} MqttSink(s) left open by this test: close them (sink.close())"
