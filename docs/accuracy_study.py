#!/usr/bin/env python3
"""The diagnostics behind docs/accuracy.md: why the pipeline misses the 70% goal on posed photographs.

Runs a trained *float* Keras model (the parent of the shipped int8 model, from a training run folder;
run folders are not committed) over the Taiwanese photographs, detected and aligned by the shipped
pipeline, with the same four test-time views as the shipped graph, and prints:

1. the alignment framing sweep (eye height, eye distance), with and without prior correction;
2. crop degradations that make the photographs look more like FER2013 (blur, down-sampling, JPEG);
3. per-class score offsets fitted on one performer half and scored on the other;
4. a linear read-out trained on the model's pooled features with this database's own labels,
   4-fold by performer: how far any re-reading of these features can go.

    python docs/accuracy_study.py [--keras models/runs/main/best.keras]

"tune" = odd-numbered performers, "test" = even-numbered ones (as in ``fer-edge eval-faces --split``).
Needs ../shared/data, the fetched BlazeFace model and TensorFlow (the ``train`` extra).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VIEWS = ("id", "flip", "zoom42", "zoom42-flip")


def main(argv: list[str] | None = None) -> int:
    import tensorflow as tf

    from edge.align import AlignConfig, align_faces
    from edge.commands.eval_faces import default_dataset, load_samples
    from edge.pipeline import FaceAnalyzer
    from edge.sources import read_image
    from models import ferplus
    from models.card import training_prior
    from models.select_tta import view

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keras", type=Path, default=Path("models/runs/main/best.keras"))
    args = p.parse_args(argv)
    if not args.keras.is_file():
        print(f"accuracy_study: {args.keras} not found (train with python -m models.train first)", file=sys.stderr)
        return 2

    model = tf.keras.models.load_model(args.keras)
    features = tf.keras.Model(model.input, model.get_layer("logits").input)
    prior = training_prior(ferplus.default_data_dir())
    log_prior = np.log([prior[c] for c in ferplus.CLASSES])

    samples = load_samples(default_dataset(), "all")
    analyzer = FaceAnalyzer(classify=False)
    images = [read_image(s.path) for s in samples]
    dets = [analyzer.detect(im) for im in images]
    y = np.array([ferplus.CLASSES.index(s.label) for s in samples])
    odd = np.array([int(s.performer) % 2 == 1 for s in samples])

    def crops(cfg: AlignConfig) -> np.ndarray:
        out = [align_faces(im, d, cfg)[0] if d else np.zeros((48, 48), np.uint8) for im, d in zip(images, dets)]
        return np.stack([c if c.ndim == 2 else cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in out])

    def averaged(net, x: np.ndarray) -> np.ndarray:
        t = tf.constant(x[..., None].astype(np.float32))
        return sum(net.predict(view(t, v), batch_size=256, verbose=0) for v in VIEWS) / len(VIEWS)

    def halves(logits: np.ndarray, tau: float) -> str:
        ok = (logits - tau * log_prior).argmax(1) == y
        return f"tune {ok[odd].mean():6.1%}  test {ok[~odd].mean():6.1%}  all {ok.mean():6.1%}"

    base = crops(AlignConfig())
    print("1. alignment framing (eye_y, eye_distance), prior correction 0 | 0.75")
    for ey, ed in [(0.40, 0.365), (0.40, 0.33), (0.40, 0.40), (0.37, 0.365), (0.43, 0.365), (0.42, 0.34)]:
        x = base if (ey, ed) == (0.40, 0.365) else crops(AlignConfig(eye_y=ey, eye_distance=ed))
        lg = averaged(model, x)
        print(f"   {ey:.2f} {ed:.3f}   {halves(lg, 0)}  |  {halves(lg, 0.75)}")

    print("2. crop degradations, prior correction 0 | 0.75")
    degrade = {
        "none": lambda c: c,
        "blur sigma 0.6": lambda c: cv2.GaussianBlur(c, (0, 0), 0.6),
        "blur sigma 1.0": lambda c: cv2.GaussianBlur(c, (0, 0), 1.0),
        "down to 32 px and up": lambda c: cv2.resize(cv2.resize(c, (32, 32), interpolation=cv2.INTER_AREA), (48, 48)),
        "JPEG quality 40": lambda c: cv2.imdecode(cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], 0),
    }
    for name, fn in degrade.items():
        lg = averaged(model, np.stack([fn(c) for c in base]))
        print(f"   {name:<22} {halves(lg, 0)}  |  {halves(lg, 0.75)}")

    lg = averaged(model, base)
    print("3. per-class offsets fitted on one half (coordinate search), scored on the other")
    for fit_on, name in ((odd, "tune -> test"), (~odd, "test -> tune")):
        bias = fit_offsets(lg[fit_on], y[fit_on])
        ok = (lg + bias).argmax(1) == y
        print(f"   {name}: {ok[~fit_on].mean():.1%}   offsets {np.round(bias, 2).tolist()}")

    feats = averaged(features, base)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    performer = np.array([int(s.performer) for s in samples])
    print("4. linear read-out on the model's features, trained on the other performers (4-fold)")
    for l2 in (1e-3, 1e-2, 1e-1):
        pred = np.zeros_like(y)
        for k in range(4):
            held = performer % 4 == k
            w, b = fit_softmax(feats[~held], y[~held], l2)
            pred[held] = (feats[held] @ w + b).argmax(1)
        print(f"   l2 {l2:g}: {(pred == y).mean():.1%}")
    return 0


def fit_offsets(logits: np.ndarray, y: np.ndarray, rounds: int = 30) -> np.ndarray:
    """Per-class additive offsets that maximise accuracy on (logits, y), by greedy coordinate search."""
    bias = np.zeros(logits.shape[1])
    best = ((logits + bias).argmax(1) == y).mean()
    for _ in range(rounds):
        improved = False
        for c in range(logits.shape[1]):
            for delta in (-1.0, -0.5, -0.25, 0.25, 0.5, 1.0):
                trial = bias.copy()
                trial[c] += delta
                acc = ((logits + trial).argmax(1) == y).mean()
                if acc > best:
                    best, bias, improved = acc, trial, True
        if not improved:
            break
    return bias


def fit_softmax(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 500, lr: float = 0.5):
    """Multinomial logistic regression by full-batch gradient descent (no scikit-learn needed)."""
    k = int(y.max()) + 1
    w, b = np.zeros((x.shape[1], k)), np.zeros(k)
    onehot = np.eye(k)[y]
    for _ in range(steps):
        z = x @ w + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(y)
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum(0)
    return w, b


if __name__ == "__main__":
    sys.exit(main())
