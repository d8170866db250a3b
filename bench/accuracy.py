"""Side by side: the shipped emotion model, 1.0.0 and (with --teachers) the two teachers, in one run.

    python bench/accuracy.py                                   # shipped vs 1.0.0
    python bench/accuracy.py --teachers ../shared/teachers     # ... and teachers A and B
    python bench/accuracy.py --model models/runs/v2/model_int8.tflite   # a candidate (card beside it)
    python bench/accuracy.py --tune-prior                      # prior correction chosen on odd performers

Taiwanese photographs (../shared/data/faces/taiwanese_fed, never used for training) go through the
whole pipeline with the default config: the default detector and aligner run once per photograph
and every model classifies the same crop of the largest face (the teachers get the same face,
aligned the same way, at 112 px); a photograph without a face counts as wrong for everyone.
Reported: all 1,232; "agreed" (observers agreed with the posed label, plus every neutral photo,
n = 974); the odd-numbered performers (the only ones any setting may be tuned on) and the even ones;
recall per posed class. FER+ test: majority protocol, 3,137 images (teachers: over all 8 classes,
so what they cannot say counts as wrong). Latency: mean ms per face, one thread, batch 1,
preprocessing excluded, measured in this run for every model; ratios against 1.0.0.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models import evaluate, ferplus  # noqa: E402
from models.card import training_prior  # noqa: E402
from models.taiwanese import load_photos, photo_predictions, taiwan_figures, tune_prior  # noqa: E402

REFERENCE_1_0 = REPO / "models" / "reference" / "1.0.0" / "fer_emotion_int8.tflite"
#: 1.0.0's card predates the MAC count: models.student.count_macs(models.studies.train_v1.build_backbone()) is
#: 117,450,752 per view, and its graph runs 4 views of each face.
MACS_1_0 = {"23203b82ff3c17763f2871c06b1d0206808d94b1a9811029ef847a0fbd109859": 4 * 117_450_752}


class Ours:
    """A fer-edge model (card beside it) as the runtime runs it."""

    def __init__(self, name: str, path: Path):
        from edge.classify import EmotionModel

        self.name, self.path = name, path
        self.model = EmotionModel(path, threads=1)
        self.card = self.model.card.raw

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        out = []
        for s in range(0, len(crops), 64):
            out.append(self.model.normalize(self.model.predict(self.model.preprocess(crops[s:s + 64]))))
        return np.concatenate(out) if out else np.zeros((0, 8), np.float32)

    def runner(self) -> tuple:
        return evaluate.batch1_runner(self.model)


class Teacher:
    """Teacher A or B (training-time models; here only for the comparison)."""

    def __init__(self, key: str, folder: Path):
        from models import teachers

        self.name = {"A": "teacher A (Intel emotions-recognition-retail-0003)",
                     "B": "teacher B (OpenCV Zoo MobileFaceNet FER int8)"}[key]
        self.net = teachers.Runner(key, folder, threads=1)

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        out = [self.net(np.stack(crops[s:s + 64])) for s in range(0, len(crops), 64)]
        return np.concatenate(out) if out else np.zeros((0, 8), np.float32)

    def runner(self) -> tuple:
        # the teachers' own resize to 64/112 px is inside their call, so it is timed with them
        return (lambda face: face[None]), self.runner_fn

    def runner_fn(self, x: np.ndarray) -> None:
        self.net(x)


def main(argv: list[str] | None = None) -> int:
    from edge.config.model import SHIPPED_MODEL

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teachers", type=Path, default=None, help="folder with the teacher files: compare them too")
    p.add_argument("--model", type=Path, action="append", default=[], help="also this .tflite (card beside it)")
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir())
    p.add_argument("--limit", type=int, default=0, help="first N photographs and FER+ test images only (smoke runs)")
    p.add_argument("--tune-prior", action="store_true", help="choose the prior correction on odd performers")
    p.add_argument("--max-valid-drop", type=float, default=0.01,
                   help="--tune-prior: most FER+ validation accuracy a prior correction may cost (default 0.01)")
    args = p.parse_args(argv)

    models: list = [Ours("shipped", Path(SHIPPED_MODEL)), Ours("1.0.0 (reference)", REFERENCE_1_0)]
    models += [Ours(f"candidate {m}", m) for m in args.model]
    if args.teachers:
        models += [Teacher("A", args.teachers), Teacher("B", args.teachers)]
    t0 = time.time()
    photos = load_photos(args.data / "faces" / "taiwanese_fed", args.limit)
    found = sum(c is not None for c in photos.crops)
    print(f"Taiwanese photographs: {len(photos.labels)}, a face found in {found} ({time.time() - t0:.0f} s)")
    x_test, y_test = evaluate.load_eval_set("test", args.data, args.limit or None)
    if args.tune_prior:
        x_val, y_val = evaluate.load_eval_set("valid", args.data)
    rows = []
    for m in models:
        pred, _ = photo_predictions(m, photos, big=isinstance(m, Teacher))
        tw = taiwan_figures(pred, photos)
        fer = m.scores(list(x_test)).argmax(axis=1)
        macs = (m.card.get("macs_per_face") or MACS_1_0.get(m.card["sha256"])) if isinstance(m, Ours) else None
        size = m.path.stat().st_size if isinstance(m, Ours) else None
        rows.append([m, tw, float((fer == y_test).mean()), 0.0, macs, size])
        if args.tune_prior and isinstance(m, Ours):
            prior = m.model.card.class_prior
            if prior is None:  # a candidate's provisional card: the FER+ training prior, as the ship step records it
                prior = np.array([training_prior(args.data)[c] for c in ferplus.CLASSES])
            tune_prior(m, photos, prior, valid=(m.scores(list(x_val)), y_val), max_valid_drop=args.max_valid_drop)
    for row, ms in zip(rows, evaluate.measure_latencies([m.runner() for m in models], x_test)):
        row[3] = ms
    ref_ms = rows[1][3]
    n_fer = len(y_test)
    print(f"\nTaiwanese: whole pipeline, default config (n = {rows[0][1]['n']}; agreed n = {rows[0][1]['n_agreed']}; "
          f"even-numbered performers n = {rows[0][1]['n_even']}). FER+ test: majority protocol, {n_fer} images.")
    print("Latency: median ms per face, 1 thread, batch 1, all models timed in turn face by face in this run.\n")
    print("| model | Taiwanese all | agreed | odd half | even half | FER+ test | ms/face | vs 1.0.0 | M MACs | MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, tw, fer, ms, macs, size in rows:
        cost = f"{macs / 1e6:.1f} | {size / 1e6:.2f}" if macs and size else " | "
        print(f"| {m.name} | {100 * tw['all']:.1f}% | {100 * tw['agreed']:.1f}% | {100 * tw['odd']:.1f}% | "
              f"{100 * tw['even']:.1f}% | {100 * fer:.2f}% | {ms:.2f} | {ms / ref_ms:.2f}x | {cost} |")
    classes = list(rows[0][1]["recall"])
    print(f"\nTaiwanese recall per posed class (all {rows[0][1]['n']} photographs):\n")
    print("| model | " + " | ".join(classes) + " |\n|---|" + "---:|" * len(classes))
    for m, tw, *_ in rows:
        print(f"| {m.name} | " + " | ".join(f"{100 * tw['recall'][c]:.1f}%" for c in classes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
