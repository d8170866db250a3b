"""1.0.0's trainer: the emotion CNN from scratch on FER+ vote distributions, exported to int8 TFLite.

    python -m models.studies.train_v1 --out models/runs/main --epochs 30

(``python -m models.train`` without ``--recipe`` until issue 28; same options.) Kept to reproduce
1.0.0 (models/reference/1.0.0/); a new model comes from ``python -m models.train --recipe FILE``.
Selects the epoch by majority-protocol accuracy on the FER+ *validation* split (the test split
is never read here), then chooses the test-time views (models.studies.select_tta) and calls
models.export to write the int8 model, and writes a training log.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from models import ferplus
from models.student import build_student

INPUT_SIZE = 48


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow so that a run can be repeated."""
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    tf.keras.utils.set_random_seed(seed)


def start_run(args: argparse.Namespace) -> Path:
    """Seed, set TensorFlow's thread counts from ``args.threads`` and make the run folder ``args.out``."""
    import tensorflow as tf

    seed_everything(args.seed)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, args.threads // 2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def build_backbone(width: int = 32, dropout: float = 0.4):
    """VGG-style CNN: 4 blocks of two 3x3 conv+BN+ReLU, global pooling, dense logits.

    Input: float pixel values 0..255, shape (48, 48, 1); output: 8 logits. About 1.2M
    parameters at width 32, about 1.2 MB once int8-quantized.
    """
    return build_student(tuple(width * mult for mult in (1, 2, 4, 8)), dropout, name="fer_vgg")


def build_augmenter():
    """Augmentations that suit face crops: mirror, small shifts/rotations/zoom, light changes, occlusion."""
    import tensorflow as tf
    from tensorflow.keras import layers

    return tf.keras.Sequential(
        [
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.04, fill_mode="reflect"),  # about +-15 degrees
            layers.RandomTranslation(0.1, 0.1, fill_mode="reflect"),
            layers.RandomZoom((-0.1, 0.15), fill_mode="reflect"),
            layers.RandomContrast(0.3),
            layers.RandomBrightness(0.2, value_range=(0, 255)),
        ],
        name="augment",
    )


def random_erase(images, rng: np.random.Generator, p: float = 0.4) -> np.ndarray:
    """Cut out one random rectangle in a fraction of the images (occlusion robustness)."""
    out = images.copy()
    n = len(out)
    for k in np.nonzero(rng.random(n) < p)[0]:
        h = rng.integers(8, 20)
        w = rng.integers(8, 20)
        y = rng.integers(0, INPUT_SIZE - h)
        x = rng.integers(0, INPUT_SIZE - w)
        out[k, y : y + h, x : x + w] = rng.integers(0, 255)
    return out


def majority_accuracy(model, images: np.ndarray, labels: np.ndarray, tta: bool) -> float:
    """Top-1 accuracy of a float Keras model (optionally averaging the mirror image's logits)."""
    x = images[..., None].astype(np.float32)
    logits = model.predict(x, batch_size=256, verbose=0)
    if tta:
        logits = logits + model.predict(x[:, :, ::-1], batch_size=256, verbose=0)
    return float((logits.argmax(axis=1) == labels).mean())


def train(args: argparse.Namespace) -> dict:
    """Train, select on validation, save the best float model and a JSON log; return the log."""
    import tensorflow as tf

    out = start_run(args)

    tr = ferplus.load_split("train", args.data)
    targets, keep = ferplus.vote_distributions(tr.votes)
    x_train, y_train = tr.images[keep], targets[keep]
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    va = ferplus.load_split("valid", args.data)
    x_val, y_val = ferplus.majority_subset(va)
    if args.val_limit:
        x_val, y_val = x_val[: args.val_limit], y_val[: args.val_limit]
    print(f"train {len(x_train)} images, validation {len(x_val)} (majority protocol)", flush=True)

    model = build_backbone(width=args.width)
    if args.init:  # fine-tune: start from a trained model's weights (same architecture)
        model.set_weights(tf.keras.models.load_model(args.init).get_weights())
    # Logit adjustment (Menon et al. 2021, arXiv:2007.07314): train on logits + tau*log(prior) so
    # that the raw logits learn a class-balanced decision rule (more margin for the rare classes:
    # disgust, fear, contempt); the prior is folded back into the saved model's bias, so the saved
    # model still answers with FER+-calibrated scores and its validation figure is comparable.
    prior = y_train.mean(axis=0)
    adjust = tf.constant(args.logit_adjust * np.log(np.maximum(prior, 1e-4)), tf.float32)
    if args.init:
        fold_prior(model, adjust, -1)   # a saved model is calibrated: take the prior out of its bias first
    augment = build_augmenter()
    steps_per_epoch = int(np.ceil(len(x_train) / args.batch))
    total = steps_per_epoch * args.epochs
    warmup = min(steps_per_epoch, total // 10)
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total - warmup), alpha=0.01, warmup_target=args.lr, warmup_steps=warmup
    )
    opt = tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=args.weight_decay)
    loss_fn = tf.keras.losses.CategoricalCrossentropy(from_logits=True)
    # Auxiliary presence head (training only, not exported): one sigmoid per emotion, "did at least two
    # annotators see it". Unlike the softmax, it does not let neutral votes drown a subtle expression,
    # so the shared features are pushed to notice weak expressions too.
    trunk = tf.keras.Model(model.input, [model.output, model.get_layer("logits").input])
    presence_head = tf.keras.layers.Dense(len(ferplus.CLASSES), name="presence")
    presence_head.build(trunk.outputs[1].shape)
    presence_fn = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    aux_weight = tf.constant(args.aux_presence, tf.float32)
    variables = model.trainable_variables + (presence_head.trainable_variables if args.aux_presence else [])

    @tf.function(reduce_retracing=True)
    def step(xb, yb):
        xb = augment(xb, training=True)
        with tf.GradientTape() as tape:
            logits, feats = trunk(xb, training=True)
            loss = loss_fn(yb, logits + adjust)
            if args.aux_presence:
                loss += aux_weight * presence_fn(tf.cast(yb > 0, tf.float32), presence_head(feats))
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables))
        return loss

    rng = np.random.default_rng(args.seed)
    run_args = vars(args) | {"data": str(args.data), "init": str(args.init) if args.init else None}
    log: dict = {"args": run_args, "epochs": [], "train_images": len(x_train)}
    best = -1.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        order = rng.permutation(len(x_train))
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * args.batch : (s + 1) * args.batch]
            xb = random_erase(x_train[idx], rng)[..., None].astype(np.float32)
            losses.append(float(step(tf.constant(xb), tf.constant(y_train[idx]))))
            if s % 50 == 0 or s == steps_per_epoch - 1:
                print(f"\repoch {epoch}/{args.epochs} step {s + 1}/{steps_per_epoch} loss {np.mean(losses):.4f}",
                      end="", flush=True)
        fold_prior(model, adjust, +1)
        acc = majority_accuracy(model, x_val, y_val, tta=False)
        acc_tta = majority_accuracy(model, x_val, y_val, tta=True)
        secs = time.time() - t0
        print(f"\repoch {epoch}/{args.epochs} loss {np.mean(losses):.4f} val {acc:.4f} "
              f"val+flip {acc_tta:.4f} ({secs:.0f}s)", flush=True)
        score = max(acc, acc_tta)
        log["epochs"].append({"epoch": epoch, "loss": float(np.mean(losses)), "val_acc": acc,
                              "val_acc_flip": acc_tta, "seconds": secs})
        if score > best:
            best = score
            model.save(out / "best.keras")
            log["best"] = {"epoch": epoch, "val_acc": acc, "val_acc_flip": acc_tta,
                           "flip_tta": acc_tta > acc}
        (out / "train_log.json").write_text(json.dumps(log, indent=2))
        fold_prior(model, adjust, -1)
    return log


def fold_prior(model, adjust, sign: int) -> None:
    """Add (+1) or remove (-1) the logit adjustment in the output layer's bias."""
    dense = model.get_layer("logits")
    dense.bias.assign(dense.bias + sign * adjust)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="models/runs/main", help="run folder for checkpoints and logs")
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir(), help="shared data folder")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", type=Path, default=None, help="start from this .keras model's weights (fine-tuning)")
    p.add_argument("--logit-adjust", type=float, default=0.0, metavar="TAU",
                   help="logit-adjusted loss strength (0: plain cross-entropy); the prior is folded back on save")
    p.add_argument("--aux-presence", type=float, default=0.0, metavar="WEIGHT",
                   help="weight of the auxiliary per-emotion presence loss (0: off; the head is not exported)")
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only (smoke runs)")
    p.add_argument("--val-limit", type=int, default=0, help="validate on the first N images only (smoke runs)")
    p.add_argument("--no-export", action="store_true", help="stop after training (no int8 export)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = train(args)
    print(f"best epoch {log['best']['epoch']}: val {log['best']['val_acc']:.4f} "
          f"val+flip {log['best']['val_acc_flip']:.4f}")
    if not args.no_export:
        from models import export
        from models.studies import select_tta

        select_tta.main(["--run", str(args.out), "--data", str(args.data), "--limit", str(args.val_limit)])
        export.main(["--run", str(args.out), "--data", str(args.data)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
