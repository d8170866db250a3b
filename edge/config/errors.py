"""What is wrong with a config: :class:`Problem` (where, why) and the one exception, :class:`ConfigError`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (key path, file line) and why."""

    path: tuple[str | int, ...]
    reason: str
    line: int | None = None            # 1-based line in `source`, where known

    def format(self, source: str | None) -> str:
        where = source or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        if not self.path:                  # about the whole document (syntax, size, signature)
            return f"{where}: {self.reason}"
        return f"{where}: {'.'.join(str(p) for p in self.path)}: {self.reason}"


class ConfigError(ValueError):
    """A config that cannot be used. The only exception :func:`load_text` / :func:`load_file` raise.

    ``str(error)`` is one line per problem, ``file:line: key.path: reason``; ``.problems`` holds
    the same as :class:`Problem` objects and ``.source`` names the file (or message) read.
    """

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(p.format(source) for p in self.problems))
