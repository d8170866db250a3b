"""Study r38: a recipe's trained stages on bench/face_size.py's cached crops, clean full size vs camera widths.

    python bench/face_size.py --sizes 24 32 40 --fer-limit 50 --cache /tmp/fs.npz        # the crops, once
    python -m models.studies.kd_view --recipe models/studies/recipes/kd-view.yaml --run models/runs/r38 --cache /tmp/fs.npz

Every trained variant of every stage (float, its best epoch, no prior correction) classifies the
cached 48 px crops of the Taiwanese photographs. Printed per variant: the stage log's FER+
validation and degraded FER+ validation, then accuracy on the odd-numbered performers (the half the
issue lets choose) at clean full size and camera widths, and how far camera 32 px falls under
clean full size. The even half and the FER+ test split are not read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from models import ferplus, fit, recipe, taiwanese

FULL = 0    # bench/face_size.py's key for full size


def crops_of(cache: Path, condition: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(crops, has-a-crop mask) of the Taiwanese photographs in one condition and size of the cache."""
    with np.load(cache) as d:
        key = f"tw/{condition}/{size}"
        if key + "/crops" not in d.files:
            raise SystemExit(f"kd_view: {cache} has no Taiwanese {condition} crops at size {size or 'full'}: "
                             f"make it with bench/face_size.py --sizes {size or ''} --cache {cache}")
        return d[key + "/crops"], d[key + "/mask"]


def odd_accuracy(net, crops: np.ndarray, mask: np.ndarray, labels: np.ndarray, odd: np.ndarray) -> float:
    """Share of the odd performers' photographs read right (no crop: wrong)."""
    pred = np.full(len(labels), -1)
    idx = np.flatnonzero(mask)
    pred[idx] = fit.KerasScores(net).scores(list(crops[idx])).argmax(axis=1)
    return float((pred == labels)[odd].mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True, help="bench/face_size.py --cache file (default options)")
    p.add_argument("--sizes", type=int, nargs="+", default=[24, 32, 40], help="camera widths in the cache")
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir())
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    r = recipe.load(args.recipe)
    labels, performer, _ = taiwanese.photo_labels(args.data / "faces" / "taiwanese_fed")
    odd = performer % 2 == 1
    views = [("clean", FULL)] + [("camera", s) for s in args.sizes]
    crops = {v: crops_of(args.cache, *v) for v in views}
    if any(len(c) != len(labels) for c, _ in crops.values()):
        raise SystemExit("kd_view: the cache was made with --limit; make it for all photographs")
    rows = []
    for st in r.stages:
        for folder, cand in r.candidates(st):
            log_path, weights = args.run / folder / "log.json", args.run / folder / "best.weights.h5"
            if not weights.is_file():
                print(f"{folder}: not trained under {args.run}, skipped")
                continue
            best = json.loads(log_path.read_text())["best"]
            net = fit.load_net(cand, weights)
            acc = {f"{c} {s or 'full'}": odd_accuracy(net, *crops[(c, s)], labels, odd) for c, s in views}
            rows.append({"variant": folder, "kd_view": cand.kd_view if cand.kd_from else None,
                         "epoch": best["epoch"], "valid": best["val_acc"], "valid_degraded": best["val_degraded_acc"],
                         "odd": acc})
    print(f"\nOdd-numbered Taiwanese performers (n = {int(odd.sum())}), float, no prior correction:\n")
    cols = list(rows[0]["odd"]) if rows else []
    print("| variant | kd_view | epoch | FER+ val | degraded val | " + " | ".join(cols) + " | camera 32 below full |")
    print("|---|---|---:|---:|---:|" + "---:|" * (len(cols) + 1))
    for row in rows:
        deg = f"{100 * row['valid_degraded']:.2f}%" if row["valid_degraded"] is not None else "-"
        gap = 100 * (row["odd"]["clean full"] - row["odd"].get("camera 32", np.nan))
        print(f"| {row['variant']} | {row['kd_view'] or '-'} | {row['epoch']} | {100 * row['valid']:.2f}% | {deg} | "
              + " | ".join(f"{100 * v:.1f}%" for v in row["odd"].values()) + f" | {gap:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
