"""Choose the test-time augmentation baked into the exported graph, on the FER+ validation split.

    python -m models.studies.select_tta --run models/runs/main

Scores the trained float model on validation with each candidate (mirror image, centre zoom,
shifts), prints a table and writes the best to ``run/tta.json``, which models.export reads.
The test split is not read. 1.0.0's step (models.studies.train_v1 runs it); the candidates and
the views are models.export's, which builds them into the graph.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from models import ferplus
from models.export import CANDIDATES, view


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="models/runs/main", type=Path)
    p.add_argument("--data", default=ferplus.default_data_dir(), type=Path)
    p.add_argument("--limit", type=int, default=0, help="first N validation faces only (smoke runs)")
    args = p.parse_args(argv)
    import tensorflow as tf   # after the options: --help needs no TensorFlow

    model = tf.keras.models.load_model(args.run / "best.keras")
    x, y = ferplus.majority_subset(ferplus.load_split("valid", args.data))
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    x = tf.constant(x[..., None].astype(np.float32))
    logits = {v: model.predict(view(x, v), batch_size=256, verbose=0)
              for v in sorted({v for views in CANDIDATES.values() for v in views})}
    scores = {name: float((sum(logits[v] for v in views).argmax(1) == y).mean())
              for name, views in CANDIDATES.items()}
    print("| test-time augmentation | passes | FER+ validation accuracy |\n|---|---:|---:|")
    for name, acc in scores.items():
        print(f"| {name} | {len(CANDIDATES[name])} | {100 * acc:.2f}% |")
    best = max(scores, key=lambda k: (round(scores[k], 4), -len(CANDIDATES[k])))
    (args.run / "tta.json").write_text(json.dumps({"chosen": best, "views": CANDIDATES[best],
                                                   "valid_accuracy": scores}, indent=2))
    print(f"chosen: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
