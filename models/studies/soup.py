"""Interpolate a fine-tuned run's weights with the float model it started from (WiSE-FT).

    python -m models.studies.soup --run models/runs/w1 --out models/runs/w1s

A run started from a float .tflite (``distill --init X.tflite``, models.warmstart) sits in the same
basin as that model, so the straight line between the two weight sets is a family of models: at
alpha 0 the original (FER+ only, 4 views' knowledge in one), at 1 the fine-tuned one (teachers,
CK+). Wortsman et al. 2022 (robust fine-tuning of zero-shot models) found points on that line that
keep most of both. Each alpha is scored like a training epoch, on FER+ validation (majority
protocol) + ck_weight x held-out CK+ subjects; the FER+ test split and the Taiwanese photographs are
never read. With ``--tune-on-odd`` the mixture weight is instead one of the few scalar settings the
issue lets the odd-numbered Taiwanese performers choose, together with the prior correction tau:
the (alpha, tau) with the best accuracy on the odd performers among those whose FER+ validation
accuracy is at most ``--max-valid-drop`` below the starting model's (alpha 0, tau 0); the even-numbered
half stays held out. The chosen model is written as ``OUT/best.keras`` with the run's log (and the soup's
table), so ``models.export --run OUT`` exports it like any run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from models import ckplus, ferplus, taiwanese
from models.card import training_prior
from models.studies.distill import accuracy
from models.fit import KerasScores
from models.warmstart import student_from_tflite

ALPHAS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0)


def mix(start: list[np.ndarray], tuned: list[np.ndarray], alpha: float) -> list[np.ndarray]:
    """(1 - alpha) x start + alpha x tuned, weight by weight."""
    return [(1.0 - alpha) * a + alpha * b for a, b in zip(start, tuned)]


def soup(run: Path, out: Path, alphas: tuple[float, ...] = ALPHAS, data_dir: Path | None = None,
         tune_on_odd: bool = False, max_valid_drop: float = 0.02) -> dict:
    """Score every alpha (and with ``tune_on_odd`` every tau), save the chosen model as ``out/best.keras``."""
    import tensorflow as tf

    log = json.loads((run / "train_log.json").read_text())
    init = log["args"].get("init")
    if not init or not str(init).endswith(".tflite"):
        raise ValueError(f"{run}: not started from a float .tflite (distill --init X.tflite); nothing to mix with")
    tuned = tf.keras.models.load_model(run / "best.keras")
    start = student_from_tflite(Path(init)).get_weights()
    end = tuned.get_weights()
    data_dir = data_dir or Path(log["args"]["data"])
    x_val, y_val = ferplus.majority_subset(ferplus.load_split("valid", data_dir))
    _, ck_va = ckplus.subject_split(ckplus.load(data_dir), seed=log["args"]["ck_seed"])
    ck_weight = log["args"]["ck_weight"]
    if tune_on_odd:
        alphas = tuple(sorted(set(alphas) | {0.0}))  # the start is the yardstick of the validation cost
        photos = taiwanese.load_photos(data_dir / "faces" / "taiwanese_fed")
        prior = np.array([training_prior(data_dir)[c] for c in ferplus.CLASSES], np.float32)
        found = [c for c in photos.crops if c is not None]
    rows = []
    for alpha in alphas:
        tuned.set_weights(mix(start, end, alpha))
        ck_acc, _ = accuracy(tuned, ck_va.images, ck_va.labels)
        val_scores = KerasScores(tuned).scores(list(x_val))
        odd_scores = KerasScores(tuned).scores(found) if tune_on_odd else None
        for tau in (taiwanese.TAUS if tune_on_odd else (0.0,)):
            acc = taiwanese.corrected_accuracy(val_scores, y_val, prior if tune_on_odd else None, tau)
            row = {"alpha": alpha, "tau": tau, "val_acc": acc, "ck_val_acc": ck_acc, "score": acc + ck_weight * ck_acc}
            if tune_on_odd:
                row["odd_acc"] = taiwanese.odd_accuracy(odd_scores, photos, prior, tau)
            rows.append(row)
            print(f"alpha {alpha:.2f} tau {tau:.2f}: FER+ val {acc:.4f} CK+ val {ck_acc:.4f} "
                  f"score {row['score']:.4f}" + (f" odd performers {row['odd_acc']:.4f}" if tune_on_odd else ""),
                  flush=True)
    if tune_on_odd:
        base = next(r["val_acc"] for r in rows if r["alpha"] == 0.0 and r["tau"] == 0.0)
        min_valid = base - max_valid_drop
        eligible = [r for r in rows if r["val_acc"] >= min_valid - 1e-9] or [max(rows, key=lambda r: r["val_acc"])]
        best = max(eligible, key=lambda r: (r["odd_acc"], r["val_acc"]))
    else:
        best = max(rows, key=lambda r: r["score"])
    tuned.set_weights(mix(start, end, best["alpha"]))
    out.mkdir(parents=True, exist_ok=True)
    tuned.save(out / "best.keras")
    rule = (f"best accuracy on the odd-numbered Taiwanese performers among (alpha, tau) with FER+ validation "
            f">= the start's - {max_valid_drop} = {min_valid:.4f}" if tune_on_odd else f"best FER+ validation + {ck_weight} x held-out CK+ accuracy")
    log["soup"] = {"from": str(run), "start": init, "rows": rows, "chosen_alpha": best["alpha"],
                   "chosen_tau": best["tau"], "rule": rule}
    log["best"] = log["best"] | {k: best[k] for k in ("val_acc", "ck_val_acc", "score")}
    (out / "train_log.json").write_text(json.dumps(log, indent=2))
    print(f"chosen alpha {best['alpha']} tau {best['tau']} ({rule}): FER+ val {best['val_acc']:.4f}, CK+ val {best['ck_val_acc']:.4f} -> {out}")
    return log["soup"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a distill run started with --init X.tflite")
    p.add_argument("--out", type=Path, required=True, help="run folder for the chosen mixture")
    p.add_argument("--alphas", default=",".join(map(str, ALPHAS)), help="weights of the fine-tuned end")
    p.add_argument("--tune-on-odd", action="store_true",
                   help="choose alpha and the prior correction tau on the odd-numbered Taiwanese performers")
    p.add_argument("--max-valid-drop", type=float, default=0.02,
                   help="with --tune-on-odd: FER+ validation accuracy (0-1) the choice may cost against the start")
    args = p.parse_args(argv)
    soup(args.run, args.out, tuple(float(a) for a in args.alphas.split(",")), tune_on_odd=args.tune_on_odd,
         max_valid_drop=args.max_valid_drop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
