"""Benchmark the shipped int8 emotion model against the float model it was exported from.

    python bench/model.py [--limit N]

Prints a table: FER+ test accuracy (majority protocol, 3,137 images), file size and mean
single-thread batch-1 latency per face for both, and the int8/float ratios measured in this run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config.model import SHIPPED_MODEL  # noqa: E402
from models import evaluate  # noqa: E402

FLOAT_MODEL = REPO / "models" / "reference" / "fer_emotion_float.tflite"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=None, help="only the first N test images")
    args = p.parse_args(argv)
    rows = []
    for name, path in (("int8 (shipped)", SHIPPED_MODEL), ("float32 (reference)", FLOAT_MODEL)):
        r = evaluate.evaluate(path, split="test", limit=args.limit)
        rows.append((name, r, path.stat().st_size))
    print(f"FER+ test, majority protocol, {rows[0][1].n} images; latency: 1 thread, batch 1, per face\n")
    print("| model | top-1 accuracy | size (MB) | latency (ms/face) |")
    print("|---|---:|---:|---:|")
    for name, r, size in rows:
        print(f"| {name} | {100 * r.accuracy:.2f}% | {size / 1e6:.2f} | {r.latency_ms:.3f} |")
    (_, q, qs), (_, f, fs) = rows
    print(f"\nint8 - float accuracy: {100 * (q.accuracy - f.accuracy):+.2f} points; "
          f"size ratio {qs / fs:.2f}; latency ratio int8/float {q.latency_ms / f.latency_ms:.2f}")
    print("per-class recall (int8): " + ", ".join(f"{c} {100 * v:.1f}%" for c, v in q.recall.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
