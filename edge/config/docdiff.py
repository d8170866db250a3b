"""Where two config documents differ, key by key: for `fer-edge fleet show` and the rollback report.

Both the device (which publishes its layers, edge/control/messages.py) and the operator's tool use it,
so it lives with the config schema, which both may import.
"""
from __future__ import annotations

from typing import Any

MISSING = "(not set)"


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves."""
    if not isinstance(doc, dict) or not doc:
        return {prefix: doc} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key path, value before, value after) for every leaf that differs; MISSING where a side lacks it."""
    a, b = flatten(before), flatten(after)
    return [(key, a.get(key, MISSING), b.get(key, MISSING)) for key in sorted(set(a) | set(b))
            if a.get(key, MISSING) != b.get(key, MISSING)]
