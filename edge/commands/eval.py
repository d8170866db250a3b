"""`fer-edge eval`: measure an emotion model on the FER+ test split (the evaluator is models/evaluate.py).

The evaluator sits beside the training code in the repository's ``models/`` folder, which is not
part of the installed package: this command runs from a checkout (the FER+ archives are in the
checkout's ``../shared/data`` too). Installed without one, it says so and exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

from edge.exitcodes import EXIT_USAGE

#: Where the evaluator is in a checkout: models/evaluate.py beside the edge/ package.
EVALUATOR = Path(__file__).resolve().parents[2] / "models" / "evaluate.py"


def _evaluator() -> tuple[ModuleType | None, str]:
    """(models.evaluate of this checkout, "") or (None, why not): edge installed without a checkout."""
    if not EVALUATOR.is_file():
        return None, (f"needs the repository checkout ({EVALUATOR} not found: the evaluator is training-side "
                      "code, not installed with the package)")
    if str(EVALUATOR.parents[1]) not in sys.path:
        sys.path.append(str(EVALUATOR.parents[1]))
    module = importlib.import_module("models.evaluate")
    if Path(module.__file__ or "").resolve() != EVALUATOR:
        return None, f"another package named 'models' ({module.__file__}) hides {EVALUATOR}"
    return module, ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The evaluator's options (MODEL, --split, --limit, --png, ...)."""
    evaluator, _ = _evaluator()
    if evaluator is None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    evaluator.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate; without a checkout, one line saying why not."""
    evaluator, why = _evaluator()
    if evaluator is None:
        print(f"fer-edge eval: {why}", file=sys.stderr)
        return EXIT_USAGE
    return int(evaluator.run(args) or 0)
