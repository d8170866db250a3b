"""`fer-edge eval`: measure an emotion model on the FER+ test split (the evaluator is edge/evaluation/fer.py).

Needs only the FER+ archives: ``--data DIR`` (default ``../shared/data`` from the working directory).
"""
from __future__ import annotations

from edge.evaluation.fer import add_arguments, run

__all__ = ["add_arguments", "run"]
