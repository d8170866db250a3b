"""Remote configuration: check a config message, merge it, and write the file safely.

A message on ``<base>/config/set`` is YAML text, optionally preceded by a signature line::

    # signature: sha256=<hex HMAC-SHA256 of every byte after this line's newline>
    # mode: replace            (optional; default: merge into the current document)
    tracking:
      ema_half_life_s: 0.6

``merge`` applies the message as a JSON Merge Patch (RFC 7396) to the current document: mappings
merge key by key, any other value replaces, ``null`` removes a key (back to its default).
``replace`` makes the message the whole new document. The outcome is published, retained, on
``<base>/config/state`` by the service (see edge/service/supervisor.py and docs/config.md).

Nothing here touches the running pipeline: :func:`prepare_update` turns a message into a validated
:class:`~edge.config.LoadedConfig` (or raises :class:`~edge.config.ConfigError` with the reason), and
:func:`write_config` replaces the file atomically, keeping the previous versions.
"""
from __future__ import annotations

import hmac
import hashlib
import logging
import os
import queue
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge.config import (ConfigError, Document, LoadedConfig, Problem, RemoteConfigConfig, load_file, parse_yaml,
                         validate_document)

_SIGNATURE = re.compile(rb"^#\s*signature:\s*sha256=([0-9A-Fa-f]{64})\s*$")
_MODE = re.compile(r"^#\s*mode:\s*(\w+)\s*$")
SOURCE = "config/set message"

log = logging.getLogger("edge.service")


def sign(body: bytes, secret: bytes) -> bytes:
    """A signed message: the signature line followed by ``body`` (what ``fer-edge config sign`` prints)."""
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return f"# signature: sha256={digest}\n".encode() + body


def check_signature(payload: bytes, settings: RemoteConfigConfig,
                    env: Mapping[str, str] | None = None) -> bytes:
    """Verify a message's signature line, if any, and return the signed body (the YAML text).

    Rules: a present signature is always checked when the secret is known, and a wrong one is
    rejected; with ``require_signature`` a missing signature, or a missing secret, is rejected too.
    """
    env = os.environ if env is None else env
    first, newline, rest = payload.partition(b"\n")
    match = _SIGNATURE.match(first.rstrip(b"\r"))
    secret = env.get(settings.secret_env, "")
    if match is None:
        if settings.require_signature:
            raise _reject("unsigned message rejected: service.remote_config.require_signature is on "
                          "(first line must be '# signature: sha256=<hex>')")
        return payload
    if not secret:
        if settings.require_signature:
            raise _reject(f"cannot check signatures: environment variable {settings.secret_env} is not set "
                          "on the device")
        return rest          # signing is optional and this device has no secret: the line is a comment
    expected = hmac.new(secret.encode(), rest, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), match.group(1).lower()):
        raise _reject("signature does not match (HMAC-SHA256 of the bytes after the signature line, "
                      f"with the secret in {settings.secret_env})")
    return rest


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


@dataclass
class Update:
    """A checked config change, ready to apply and write."""

    loaded: LoadedConfig          # the validated new config
    text: str                     # what the file will contain
    mode: str                     # merge | replace


def prepare_update(payload: bytes, current: LoadedConfig, settings: RemoteConfigConfig,
                   env: Mapping[str, str] | None = None) -> Update:
    """Check size and signature, parse, merge (or replace), and validate a config message.

    Raises ConfigError (source "config/set message") naming each problem; never anything else.
    """
    env = os.environ if env is None else env
    if len(payload) > settings.max_payload_bytes:
        raise _reject(f"message too large: {len(payload)} bytes > service.remote_config.max_payload_bytes "
                      f"({settings.max_payload_bytes})")
    body = check_signature(payload, settings, env)
    mode = message_mode(body)
    patch = parse_yaml(body, SOURCE)
    if mode == "replace":
        doc, text = patch, body.decode("utf-8")
    else:
        merged = merge_patch(current.document, patch.data)
        doc = Document(merged, patch.lines, SOURCE)   # lines point into the message: errors come from it
        text = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, default_flow_style=False)
    loaded = validate_document(doc, env)
    _refuse_lockout(loaded, env)
    header = f"# written by fer-edge remote config ({mode}) at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; " \
             f"version {loaded.version}\n"
    return Update(loaded, header + text, mode)


def _refuse_lockout(loaded: LoadedConfig, env: Mapping[str, str]) -> None:
    # A change that requires signatures under a secret the device does not have would make every
    # later message fail: the device could then only be fixed by hand.
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
        self._messages: queue.Queue[bytes] = queue.Queue(size)
        self._dropped = 0

    def put(self, payload: bytes) -> None:
        """Hand one message over (never blocks: a full inbox drops it and counts)."""
        try:
            self._messages.put_nowait(bytes(payload))
        except queue.Full:
            self._dropped += 1

    def take(self) -> tuple[int, list[bytes]]:
        """(messages dropped since the last call, the messages waiting, oldest first)."""
        dropped, self._dropped = self._dropped, 0
        out = []
        while True:
            try:
                out.append(self._messages.get_nowait())
            except queue.Empty:
                return dropped, out
