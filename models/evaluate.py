"""Evaluate a .tflite emotion model on FER+ with the standard majority protocol (edge/evaluation/fer.py).

    python -m models.evaluate MODEL.tflite       # the same as `fer-edge eval MODEL.tflite`

The evaluator is part of the installed package (``fer-edge eval``); the training code imports it from here.
"""
from __future__ import annotations

import argparse
import sys

from edge.evaluation.fer import (SLICE_SIZE, Report, add_arguments, batch1_runner, confusion_png,  # noqa: F401
                                 evaluate, load_eval_set, measure_latencies, measure_latency, run)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
