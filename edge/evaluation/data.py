"""Where the shared data sets are: ``--data DIR``, by default ``../shared/data`` from the working directory.

The FER+ archives and the Taiwanese photographs are not part of the package. Commands that need them
take ``--data`` (relative paths are relative to the working directory, never to the installed
package) and, when a file is missing, name the path they looked for and how to give another.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

#: The default shared data folder: beside the checkout, for commands run from its root.
DEFAULT_DATA = Path("../shared/data")


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """``--data DIR``: the shared data folder."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                        help=f"shared data folder (default: {DEFAULT_DATA}, from the working directory)")


def missing(path: Path, what: str, how: str = "give the shared data folder with --data DIR") -> str:
    """One line for a data file that is not there: what, the absolute path looked for, how to give another."""
    return f"{what} not found: {os.path.abspath(path)} ({how})"
