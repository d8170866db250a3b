"""Writing files safely, and the pure parts of remote config (merge, mode, lockout).

Signing and replays: tests/test_signing.py; the whole path of a message: tests/test_remote_hardening.py.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.config import ConfigError, load_file, load_text
from edge.control.patch import merge_patch, message_mode, refuse_lockout
from edge.control.storage import backup_path, write_config

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret"


# --- atomic writes -----------------------------------------------------------------------------

def _big_config(tag: str) -> str:
    # ~4 MB, so that writing it takes long enough to be killed in the middle
    return f"device:\n  name: {tag}\n" + "".join(f"# padding {tag} {i:07d} " + "x" * 60 + "\n" for i in range(55_000))


WRITER = """
import sys
from edge.control.storage import write_config
path, a, b = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
i = 0
while True:
    write_config(path, a if i % 2 else b, backups=2)
    i += 1
"""


def test_killing_the_writer_never_leaves_a_broken_file(tmp_path):
    a, b = _big_config("A"), _big_config("B")
    (tmp_path / "a.txt").write_text(a)
    (tmp_path / "b.txt").write_text(b)
    path = tmp_path / "config.yaml"
    path.write_text("device:\n  name: start\n")
    valid = {a, b, "device:\n  name: start\n"}
    kills_mid_write = 0
    partial_sizes: list[int] = []
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(tmp_path / "a.txt"),
                                 str(tmp_path / "b.txt")], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 20
        # Wait until a temporary file is being written, then SIGKILL at once. A temporary file still
        # there after the kill means the writer died between creating it and renaming it.
        while not any(tmp_path.glob(".config.yaml.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = list(tmp_path.glob(".config.yaml.*.tmp"))
        kills_mid_write += bool(left)
        partial_sizes += [p.stat().st_size for p in left if p.stat().st_size < len(a)]
        text = path.read_text()
        assert text in valid, f"config.yaml is damaged ({len(text)} bytes)"
        assert load_file(path).config.device.name in ("A", "B", "start")
        for n in (1, 2):
            if backup_path(path, n).exists():
                assert backup_path(path, n).read_text() in valid
    assert kills_mid_write >= 4, f"only {kills_mid_write} of 8 kills hit a write in progress"
    # the next write clears what a killed writer left behind
    write_config(path, "device:\n  name: after\n", backups=2)
    assert not list(tmp_path.glob(".config.yaml.*.tmp"))
    assert load_file(path).config.device.name == "after"
    print(f"\nkilled the writer {kills_mid_write} of 8 times in the middle of a write ({len(partial_sizes)} with "
          f"a partly written temporary file): config.yaml always whole")


def test_backups_rotate_and_keep_the_mode(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("v: 0\n")
    os.chmod(path, 0o640)
    for i in range(1, 5):
        write_config(path, f"v: {i}\n", backups=3)
    assert path.read_text() == "v: 4\n"
    assert [backup_path(path, n).read_text() for n in (1, 2, 3)] == ["v: 3\n", "v: 2\n", "v: 1\n"]
    assert not backup_path(path, 4).exists()
    assert path.stat().st_mode & 0o777 == 0o640
    write_config(path, "v: 5\n", backups=0)
    assert backup_path(path, 1).read_text() == "v: 3\n"        # backups: 0 leaves them alone


def test_a_failed_write_leaves_the_file_alone(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("v: 1\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_config(path, "v: 2\n")
    assert path.read_text() == "v: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]      # no temporary file left


# --- merge, mode, preparation ------------------------------------------------------------------

def test_merge_patch_is_rfc7396():
    target = {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}
    assert merge_patch(target, {"a": {"b": 9, "c": None}, "d": [3], "f": {"g": None}}) == \
        {"a": {"b": 9}, "d": [3], "e": 1, "f": {}}
    assert target == {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}        # not modified


def test_message_mode():
    assert message_mode(b"stats: {}\n") == "merge"
    assert message_mode(b"# hello\n# mode: replace\nstats: {}\n") == "replace"
    assert message_mode(b"stats: {}\n# mode: replace\n") == "merge"       # only the leading comments count
    with pytest.raises(ConfigError, match="unknown mode 'patch'"):
        message_mode(b"# mode: patch\n")


def test_a_change_that_would_lock_remote_config_out_is_refused():
    locked = load_text("service:\n  remote_config:\n    enabled: true\n    require_signature: true\n", env={})
    with pytest.raises(ConfigError, match="no later message could be accepted"):
        refuse_lockout(locked, env={})
    refuse_lockout(locked, env={"FER_EDGE_CONFIG_SECRET": SECRET})       # the device has the secret: fine
