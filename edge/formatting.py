"""Small text formats used across the package: compact JSON and one-line error messages."""
from __future__ import annotations

import json
from typing import Any


def compact_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` without spaces after separators: the form of every published payload."""
    return json.dumps(obj, separators=(",", ":"), **kwargs)


def one_line(exc: BaseException | str, rest: bool = True) -> str:
    """An error as one line: its first line, the others summarised (``... (and 2 more: a; b)``).

    ``rest=False`` keeps the first line only (long C++ messages of a library). An empty message
    gives the exception's type name, so there is always something to show.
    """
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    if len(lines) == 1 or not rest:
        return lines[0]
    return f"{lines[0]} (and {len(lines) - 1} more: " + "; ".join(lines[1:4]) + ")"
