"""Train the 2.0 student (2.0.0's trainer): FER+ votes + teachers' soft labels + CK+, selected on validation.

    python -m models.studies.distill --teachers ../shared/teachers --out models/runs/v2 --epochs 30

Targets per face are several distributions, each with its own weight in the loss:

- FER+ faces: the vote distribution (models.ferplus.vote_distributions) and each teacher's scores
  (models.teachers, computed once and cached under models/runs/teacher_cache/, with a progress bar);
- CK+ faces (training subjects only, reframed to FER+ framing, repeated ``--ckplus-repeat`` times per
  epoch): the posed label as a one-hot "vote" and the teachers' scores.

A teacher that lacks a class (A: disgust, fear, contempt; B: contempt) is compared with the student
only over the classes it has (the student's softmax renormalised over them), so its silence about
disgust is not read as "not disgust". The epoch is selected on FER+ validation (majority protocol)
plus ``--ck-weight`` x accuracy on the held-out CK+ subjects. The FER+ test split and the Taiwanese
photographs are never read here. Then the best model is exported to int8 (models.export, no
test-time views unless ``--tta``) into the run folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from models import ckplus, ferplus, teachers
from models.student import DEFAULT_WIDTHS, build_student, count_macs
from models.studies.train_v1 import build_augmenter, random_erase, start_run
from models.warmstart import student_from_tflite

SOURCES = ("votes", "A", "B", "ref")


def parse_weights(text: str) -> dict[str, float]:
    """``votes=0.5,A=0.2,B=0.2,ref=0.1`` -> dict; sources not named get 0."""
    out = {s: 0.0 for s in SOURCES}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        if k not in out:
            raise ValueError(f"unknown target source {k!r} (one of {', '.join(SOURCES)})")
        out[k] = float(v)
    return out


def build_targets(args: argparse.Namespace):
    """Training images, (N, sources, 8) targets, validation sets and a description of the data."""
    tr = ferplus.load_split("train", args.data)
    faces, votes = (tr.images[: args.limit], tr.votes[: args.limit]) if args.limit else (tr.images, tr.votes)
    votes, keep = ferplus.vote_distributions(votes)
    x_fer, v_fer = faces[keep], votes[keep]
    ck_all = ckplus.load(args.data)
    if args.limit:  # smoke runs: every 10th CK+ face (still several subjects on each side)
        ck_all = ck_all.subset(np.arange(len(ck_all)) % 10 == 0)
    ck_tr, ck_va = ckplus.subject_split(ck_all, seed=args.ck_seed)
    weights = parse_weights(args.weights)
    used = tuple(t for t in ("A", "B", "ref") if weights[t] > 0)
    key = "full" if not args.limit else f"limit{args.limit}"
    # the cache holds every training face in archive order (unusable ones too): one cache for any mask
    soft = teachers.soft_labels({"train": faces, "ckplus": ck_all.images}, used, args.teachers, key=key,
                                cache_dir=args.cache) if used else {}
    # CK+ rows of the cache are in labels.csv order: pick the training subjects' rows.
    ck_train_rows = np.nonzero(~np.isin(ck_all.subjects, np.unique(ck_va.subjects)))[0]
    n_fer, n_ck = len(x_fer), len(ck_train_rows) * args.ckplus_repeat
    y = np.zeros((n_fer + n_ck, len(SOURCES), len(ferplus.CLASSES)), np.float32)
    y[:n_fer, 0] = v_fer
    onehot = np.eye(len(ferplus.CLASSES), dtype=np.float32)[ck_all.labels[ck_train_rows]]
    y[n_fer:, 0] = np.tile(onehot, (args.ckplus_repeat, 1))
    for s, t in enumerate(SOURCES[1:], start=1):
        if t in used:
            y[:n_fer, s] = soft[f"train_{t}"][keep]
            y[n_fer:, s] = np.tile(soft[f"ckplus_{t}"][ck_train_rows], (args.ckplus_repeat, 1))
    x = np.concatenate([x_fer, np.tile(ck_all.images[ck_train_rows], (args.ckplus_repeat, 1, 1))])
    is_ck = np.r_[np.zeros(n_fer, bool), np.ones(n_ck, bool)]
    va = ferplus.load_split("valid", args.data)
    x_val, y_val = ferplus.majority_subset(va)
    if args.val_limit:
        x_val, y_val = x_val[: args.val_limit], y_val[: args.val_limit]
    info = {"ferplus_train": n_fer, "ckplus_train_faces": len(ck_train_rows),
            "ckplus_train_subjects": int(len(np.unique(ck_tr.subjects))),
            "ckplus_valid_faces": len(ck_va), "ckplus_valid_subjects": int(len(np.unique(ck_va.subjects))),
            "ckplus_repeat": args.ckplus_repeat, "teachers": list(used), "weights": weights,
            "ferplus_valid": len(x_val)}
    return x, y, is_ck, (x_val, y_val), (ck_va.images, ck_va.labels), info


def make_loss(weights: dict[str, float], ck_vote_weight: float):
    """Loss over the sources: weighted cross-entropy, each against the softmax over that source's classes."""
    import tensorflow as tf

    masks = np.stack([np.ones(len(ferplus.CLASSES), np.float32)] +
                     [teachers.mask(t) for t in SOURCES[1:]])           # (sources, 8)
    log_mask = tf.constant(np.where(masks > 0, 0.0, -1e9), tf.float32)
    w = tf.constant([weights[s] for s in SOURCES], tf.float32)

    def loss(y, logits, is_ck):
        # (B, S, 8): per-source log-softmax restricted to the source's classes
        logp = tf.nn.log_softmax(logits[:, None, :] + log_mask[None], axis=-1)
        ce = -tf.reduce_sum(y * tf.where(log_mask[None] < 0, 0.0, logp), axis=-1)       # (B, S)
        has = tf.cast(tf.reduce_sum(y, axis=-1) > 0, tf.float32)                          # source present
        sw = w[None] * has
        # CK+ labels are FACS-validated posed labels: they may weigh more than a crowd's votes
        vote_boost = tf.where(is_ck, ck_vote_weight, 1.0)
        sw = tf.concat([sw[:, :1] * vote_boost[:, None], sw[:, 1:]], axis=1)
        return tf.reduce_mean(tf.reduce_sum(ce * sw, axis=1) / tf.maximum(tf.reduce_sum(sw, axis=1), 1e-6))

    return loss


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    logits = model.predict(images[..., None].astype(np.float32), batch_size=256, verbose=0)
    pred = logits.argmax(axis=1)
    return float((pred == labels).mean()), pred


def mixup(images: np.ndarray, targets: np.ndarray, alpha: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mix each face with another of the batch, weight lam ~ Beta(alpha, alpha), and its targets alike.

    ``images`` (B, H, W), ``targets`` (B, sources, classes). The cross-entropy is linear in the
    targets, so mixing them is the mixup loss exactly (up to the per-source normalisation).
    """
    lam = rng.beta(alpha, alpha, size=len(images)).astype(np.float32)[:, None, None]
    perm = rng.permutation(len(images))
    return lam * images + (1 - lam) * images[perm], lam * targets + (1 - lam) * targets[perm]


def train(args: argparse.Namespace) -> dict:
    """Train, select on FER+ and CK+ validation, save ``best.keras`` and ``train_log.json``."""
    import tensorflow as tf

    out = start_run(args)
    x, y, is_ck, (x_val, y_val), (x_ck, y_ck), info = build_targets(args)
    widths = tuple(int(v) for v in args.widths.split(","))
    if args.init and args.init.suffix == ".tflite":  # fine-tune a float model (its widths, BN folded)
        model = student_from_tflite(args.init, dropout=args.dropout)
        widths = tuple(int(layer.filters) for layer in model.layers
                       if layer.name.startswith("conv") and layer.name.endswith("_0"))
    else:
        model = build_student(widths, dropout=args.dropout)
        if args.init:  # continue from a run's checkpoint (same widths)
            model.set_weights(tf.keras.models.load_model(args.init).get_weights())
    macs = count_macs(model)
    print(f"student {widths}: {model.count_params():,} parameters, {macs / 1e6:.1f} M MACs per face", flush=True)
    print(f"train {len(x)} faces ({info['ferplus_train']} FER+, {info['ckplus_train_faces']} CK+ x "
          f"{args.ckplus_repeat}); validation {len(x_val)} FER+, {len(x_ck)} CK+ ({info['ckplus_valid_subjects']} "
          f"held-out subjects); targets {info['weights']}", flush=True)
    augment = build_augmenter()
    steps = int(np.ceil(len(x) / args.batch))
    total = steps * args.epochs
    # Warm-up then cosine decay over the run's progress: steps done / all steps, or, with
    # --time-budget, minutes spent / the budget (a shared 2-core machine's speed is not known
    # beforehand; the log records the steps it took so that a run can be repeated with --epochs).
    warm = min(steps / total, 0.1) if not args.time_budget else 0.05
    opt = tf.keras.optimizers.AdamW(learning_rate=0.0, weight_decay=args.weight_decay)
    started = time.time()

    def progress(done: int) -> float:
        if args.time_budget:
            return min(1.0, (time.time() - started) / (60 * args.time_budget))
        return min(1.0, done / total)

    def learning_rate(frac: float) -> float:
        if frac < warm:
            return args.lr * frac / warm
        return args.lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * (frac - warm) / (1 - warm))))
    loss_fn = make_loss(info["weights"], args.ck_vote_weight)

    @tf.function(reduce_retracing=True)
    def step(xb, yb, ckb):
        xb = augment(xb, training=True)
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True), ckb)
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    rng = np.random.default_rng(args.seed)
    log: dict = {"args": vars(args) | {"data": str(args.data), "teachers": str(args.teachers),
                                         "init": str(args.init) if args.init else None,
                                         "cache": str(args.cache)},
                 "data": info, "student": {"widths": list(widths), "params": int(model.count_params()),
                                           "macs_per_face": macs}, "epochs": [], "train_images": len(x)}
    best = -1.0
    done = 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        order = rng.permutation(len(x))
        losses = []
        for s in range(steps):
            frac = progress(done)
            if frac >= 1.0:
                break
            opt.learning_rate.assign(learning_rate(frac))
            done += 1
            idx = order[s * args.batch:(s + 1) * args.batch]
            xb = random_erase(x[idx], rng).astype(np.float32)
            yb = y[idx]
            if args.mixup > 0:
                xb, yb = mixup(xb, yb, args.mixup, rng)
            losses.append(float(step(tf.constant(xb[..., None]), tf.constant(yb), tf.constant(is_ck[idx]))))
            if s % 50 == 0 or s == steps - 1:
                print(f"\repoch {epoch}/{args.epochs} step {s + 1}/{steps} loss {np.mean(losses):.4f} "
                      f"lr {learning_rate(frac):.2e}", end="", flush=True)
        acc, _ = accuracy(model, x_val, y_val)
        ck_acc, _ = accuracy(model, x_ck, y_ck)
        score = acc + args.ck_weight * ck_acc
        secs = time.time() - t0
        print(f"\repoch {epoch}/{args.epochs} loss {np.mean(losses):.4f} FER+ val {acc:.4f} CK+ val {ck_acc:.4f} "
              f"score {score:.4f} ({secs:.0f}s)", flush=True)
        log["epochs"].append({"epoch": epoch, "loss": float(np.mean(losses)), "val_acc": acc, "ck_val_acc": ck_acc,
                              "score": score, "seconds": secs, "steps_done": done})
        model.save(out / "last.keras")
        if score > best:
            best = score
            model.save(out / "best.keras")
            log["best"] = {"epoch": epoch, "val_acc": acc, "ck_val_acc": ck_acc, "score": score, "flip_tta": False}
        (out / "train_log.json").write_text(json.dumps(log, indent=2))
        if progress(done) >= 1.0:
            break
    return log


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="models/runs/v2", help="run folder for checkpoints and logs")
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir(), help="shared data folder")
    p.add_argument("--teachers", type=Path, default=None,
                   help="folder with the teacher files (else fetched from their official URLs, pinned by sha256)")
    p.add_argument("--cache", type=Path, default=teachers.CACHE_DIR,
                   help="folder of the teachers' soft-label cache (git-ignored; computed once)")
    p.add_argument("--weights", default="votes=0.45,A=0.2,B=0.2,ref=0.15",
                   help="loss weight per target source: votes (FER+ votes / CK+ labels), A, B, ref (1.0.0 float)")
    p.add_argument("--ckplus-repeat", type=int, default=4, help="CK+ training faces per epoch, times")
    p.add_argument("--ck-vote-weight", type=float, default=2.0, help="weight of the CK+ label relative to a FER+ vote")
    p.add_argument("--ck-weight", type=float, default=0.25, help="selection score = FER+ val + this x CK+ val")
    p.add_argument("--ck-seed", type=int, default=0, help="seed of the subject-disjoint CK+ split")
    p.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)))
    p.add_argument("--dropout", type=float, default=0.4)
    p.add_argument("--init", type=Path, default=None, help="start from this .keras student's weights (a warm restart), or from a float .tflite "
                        "(models/reference/1.0.0/fer_emotion_float.tflite: its network, BN folded; --widths ignored)")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA", help="mixup Beta(alpha, alpha); 0: off")
    p.add_argument("--epochs", type=int, default=30, help="epochs (with --time-budget: at most this many)")
    p.add_argument("--time-budget", type=float, default=0.0, metavar="MINUTES",
                   help="anneal the learning rate over this many minutes of training and stop then (0: by epochs)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="first N FER+ training faces only (smoke runs, tests)")
    p.add_argument("--val-limit", type=int, default=0, help="first N FER+ validation faces only")
    p.add_argument("--no-export", action="store_true", help="stop after training (no int8 export)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = train(args)
    b = log["best"]
    print(f"best epoch {b['epoch']}: FER+ val {b['val_acc']:.4f}, CK+ val {b['ck_val_acc']:.4f}")
    if not args.no_export:
        from models import export

        export.export_run(Path(args.out), args.data, tta="none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
