"""Sources that cannot work say so (issue 17).

- A video file, image or folder that does not exist when `fer-edge run` (or `recognize`) starts is
  a configuration error: one line naming it, exit code 3, instead of retrying forever.
- A camera that is absent at start is explained once (the device node, the `video` group,
  `--demo` to try without a camera), then retried with backoff as before: a camera may be
  plugged in later and a service must not die for it.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from edge.config.source import SourceConfig
from edge.sources import SourceError, open_source

ABSENT_CAMERA = "/dev/video97"


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    env.pop("NOTIFY_SOCKET", None)
    return env


def cli(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=REPO, env=cli_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def config_file(tmp_path: Path, uri: str, **source: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"source": {"uri": uri, **source}, "queue": {"path": str(tmp_path / "q.db")}}))
    return path


def source_records(caplog) -> list[logging.LogRecord]:
    """The captured records of the sources' logger only (threads left by other tests may log meanwhile)."""
    return [r for r in caplog.records if r.name.startswith("edge.sources")]


def stderr_lines(r: subprocess.CompletedProcess) -> list[str]:
    return [line for line in r.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["clip.mp4", "photo.jpg", "a-folder"])
def test_run_with_a_missing_file_is_a_one_line_configuration_error(tmp_path, name):
    missing = tmp_path / "gone" / name
    r = cli("run", "--config", str(config_file(tmp_path, str(missing))))
    assert r.returncode == 3, r.stderr
    lines = stderr_lines(r)
    assert len(lines) == 1, lines
    assert str(missing) in lines[0] and "source.uri" in lines[0]
    assert r.stdout == ""


def test_the_old_readme_command_without_shared_data_fails_at_once(tmp_path):
    """`FER_EDGE_SOURCE=../shared/data/video/single_face.mp4 fer-edge run --config config.yaml` in a
    checkout without ../shared: one line and exit 3, not `reopening in 16 s` forever."""
    missing = tmp_path / "shared" / "data" / "video" / "single_face.mp4"
    r = cli("run", "--config", str(REPO / "config.yaml"), FER_EDGE_SOURCE=str(missing))
    assert r.returncode == 3, r.stderr
    lines = stderr_lines(r)
    assert len(lines) == 1 and str(missing) in lines[0], lines


def test_recognize_with_a_missing_file_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope.mp4"
    r = cli("recognize", "--source", str(missing), "--no-window", "--events")
    assert r.returncode == 3, r.stderr
    lines = stderr_lines(r)
    assert len(lines) == 1 and str(missing) in lines[0], lines


@pytest.fixture
def absent_camera() -> str:
    if Path(ABSENT_CAMERA).exists():
        pytest.skip(f"{ABSENT_CAMERA} exists on this machine")
    return ABSENT_CAMERA


def test_absent_camera_is_explained_once_then_retried_with_backoff(absent_camera, caplog):
    caplog.set_level(logging.INFO, "edge.sources")
    src = open_source(SourceConfig(uri=absent_camera, max_reopens=3, reopen_delay_s=0.02))
    with pytest.raises(SourceError, match="giving up after 3 failures"):
        list(src)
    warnings = [r.getMessage() for r in source_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all(f"camera {absent_camera} cannot be opened" in w for w in warnings)
    first = warnings[0]
    assert f"no device node {absent_camera}" in first
    assert "'video' group" in first and "fer-edge run --demo" in first
    assert not any("--demo" in w for w in warnings[1:]), "what to check is said once, not at every retry"
    waits = [r.getMessage() for r in source_records(caplog) if "reopening" in r.getMessage()]
    assert waits == [f"source: reopening camera {absent_camera} in 0.02 s",
                     f"source: reopening camera {absent_camera} in 0.04 s"]


def test_camera_index_names_its_device_node(caplog):
    index = next(i for i in range(90, 99) if not Path(f"/dev/video{i}").exists())
    caplog.set_level(logging.INFO, "edge.sources")
    with pytest.raises(SourceError):
        list(open_source(SourceConfig(uri=str(index), max_reopens=1)))
    assert f"no device node /dev/video{index}" in source_records(caplog)[0].getMessage()


def absent_picamera(camera_num: int):
    """What picamera2.Picamera2(n) does when libcamera lists no camera n."""
    raise IndexError("list index out of range")


def test_absent_picamera_is_explained_once_then_retried(caplog):
    caplog.set_level(logging.INFO, "edge.sources")
    src = open_source(SourceConfig(uri="picamera2", max_reopens=3, reopen_delay_s=0.01),
                      picamera_factory=absent_picamera)
    with pytest.raises(SourceError, match="giving up after 3 failures"):
        list(src)
    warnings = [r.getMessage() for r in source_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("picamera2 camera 0 cannot be opened" in w for w in warnings)
    assert "rpicam-hello --list-cameras" in warnings[0] and "fer-edge run --demo" in warnings[0]
    assert not any("--demo" in w for w in warnings[1:])


def test_service_with_an_absent_camera_keeps_running_and_retrying(absent_camera, tmp_path):
    cfg = config_file(tmp_path, absent_camera, reopen_delay_s=0.1, reopen_max_delay_s=0.2)
    err = tmp_path / "stderr"
    with open(err, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)], cwd=REPO,
                                env=cli_env(), stdout=subprocess.DEVNULL, stderr=f)
    try:
        deadline = time.monotonic() + 180
        while "(failure 4 in a row)" not in err.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, err.read_text()
            time.sleep(0.2)
        assert proc.poll() is None, "a service must not die for an absent camera"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    text = err.read_text()
    assert code == 0, text
    assert "(failure 4 in a row)" in text
    assert text.count("--demo") == 1, text
