"""What a config message says: the merge of RFC 7396, the ``# mode:`` line, and the lock-out check.

A message on ``config/set`` is YAML text, signed as edge/control/signing.py describes, whose leading
comment lines may say ``# mode: replace`` (default: merge). ``merge`` applies the message as a JSON
Merge Patch (RFC 7396): mappings merge key by key, any other value replaces, ``null`` removes a
key. Which document it applies to (the remote layers in the state directory, over the local file)
is edge/control/messages.py's business; the whole path of a message is edge/control/plane.py.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from edge.config import ConfigError, LoadedConfig, Problem

_MODE = re.compile(r"^#\s*mode:\s*(\w+)\s*$")
SOURCE = "config/set message"


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
