"""Remote configuration helpers: merge a message into a document, check a result, write files safely.

A message on ``config/set`` is YAML text, signed as edge/signing.py describes, whose leading
comment lines may say ``# mode: replace`` (default: merge). ``merge`` applies the message as a JSON
Merge Patch (RFC 7396): mappings merge key by key, any other value replaces, ``null`` removes a
key. Which document it applies to (the remote layers in the state directory, over the local
file) is edge/fleet/device.py's business; the whole path of a message through the service is
edge/service/changes.py.

Here: :func:`merge_patch`, :func:`message_mode`, :func:`refuse_lockout`, the atomic
:func:`write_config`, the start-up fallback to a file's backups, and the inbox that hands messages
from paho's thread to the main thread.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.config import ConfigError, LoadedConfig, Problem, load_file

_MODE = re.compile(r"^#\s*mode:\s*(\w+)\s*$")
SOURCE = "config/set message"

log = logging.getLogger("edge.service")


def _reject(reason: str) -> ConfigError:
    return ConfigError([Problem((), reason)], SOURCE)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: returns a new value; ``target`` and ``patch`` are not modified."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def message_mode(body: bytes) -> str:
    """``merge`` or ``replace``, from a ``# mode:`` line among the comment lines at the top of the body."""
    for raw in body.splitlines():
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        if not line.startswith("#"):
            break
        m = _MODE.match(line)
        if m:
            if m.group(1) not in ("merge", "replace"):
                raise _reject(f"unknown mode {m.group(1)!r} (use '# mode: merge' or '# mode: replace')")
            return m.group(1)
    return "merge"


def refuse_lockout(loaded: LoadedConfig, env: Mapping[str, str] | None = None) -> None:
    """ConfigError when ``loaded`` requires signatures under a secret the device does not have.

    Every later message would fail: the device could then only be fixed by hand.
    """
    env = os.environ if env is None else env
    rc = loaded.config.service.remote_config
    if rc.enabled and rc.require_signature and not env.get(rc.secret_env):
        raise _reject(f"refused: it requires signatures but {rc.secret_env} is not set on the device, "
                      "so no later message could be accepted")


# ----------------------------------------------------------------------------------------------
# Writing the file
# ----------------------------------------------------------------------------------------------

def backup_path(path: Path, n: int) -> Path:
    """The n-th previous version of ``path`` (1 = the most recent)."""
    return path.with_name(f"{path.name}.{n}")


def write_config(path: str | Path, text: str, backups: int = 3) -> None:
    """Replace ``path`` with ``text`` so that a crash at any instant leaves a complete file.

    The new text goes to a temporary file in the same directory, is fsynced, and is renamed over
    the old one (an atomic step); the directory is fsynced so the rename survives power loss.
    Before that, the current file becomes ``<name>.1`` (older ones shift to ``.2`` .. ``.N``),
    by hard link where possible, so ``path`` itself is never missing.
    """
    path = Path(path)
    directory = path.parent
    for stale in directory.glob(f".{path.name}.*.tmp"):   # left by a writer that was killed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
            if backups > 0:
                _rotate_backups(path, backups)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _rotate_backups(path: Path, backups: int) -> None:
    for n in range(backups - 1, 0, -1):
        older = backup_path(path, n)
        if older.exists():
            os.replace(older, backup_path(path, n + 1))
    first = backup_path(path, 1)
    tmp_link = first.with_name(f".{first.name}.link.tmp")
    tmp_link.unlink(missing_ok=True)
    try:
        os.link(path, tmp_link)               # same bytes, no copy: the old file lives on as .1
    except OSError:                          # filesystems without hard links
        tmp_link.write_bytes(path.read_bytes())
    os.replace(tmp_link, first)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_with_fallback(path: Path) -> tuple[LoadedConfig, str | None]:
    """The config file, or else its newest backup that validates, with the reason (None: the file itself).

    A hand-edited file that no longer validates must not keep the device down: the service runs
    the previous config and says so loudly (log and config/state). ConfigError when none is usable.
    """
    try:
        return load_file(path), None
    except ConfigError as first:
        for n in range(1, 21):
            candidate = backup_path(path, n)
            if not candidate.exists():
                break
            try:
                loaded = load_file(candidate)
            except ConfigError:
                continue
            summary = str(first).splitlines()[0]
            log.error("config %s is invalid:\n%s\nrunning the previous config %s (version %s)",
                      path, first, candidate, loaded.version[:12])
            return loaded, f"{summary} - running the previous config {candidate.name} instead"
        raise


class ConfigInbox:
    """Config messages waiting for the main thread: filled from paho's thread, bounded, drops counted."""

    def __init__(self, size: int) -> None:
        self._messages: queue.Queue[tuple[str, Any]] = queue.Queue(size)
        self._dropped = 0

    def put(self, layer: str, payload: Any) -> None:
        """Hand one message for ``layer`` over (never blocks: a full inbox drops it and counts)."""
        try:
            self._messages.put_nowait((layer, payload))
        except queue.Full:
            self._dropped += 1

    def dropped(self) -> int:
        """Messages dropped since the last call."""
        dropped, self._dropped = self._dropped, 0
        return dropped

    def next(self) -> tuple[str, Any] | None:
        """The oldest waiting (layer, payload), or None."""
        try:
            return self._messages.get_nowait()
        except queue.Empty:
            return None
