"""Files of the control plane: atomic writes with numbered backups, and the start-up fallback to a backup.

:func:`write_config` replaces a file so that a crash at any instant leaves a complete one (the
fleet layers, the serial record and the model updates are written this way);
:func:`load_with_fallback` runs the newest backup that validates when a hand-edited config file
no longer does.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from edge.config import ConfigError, LoadedConfig, load_file

log = logging.getLogger("edge.service")


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
