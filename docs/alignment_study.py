#!/usr/bin/env python3
"""Measure how FER+ crops frame a face, check that edge.align reproduces it, and draw docs/alignment.png.

The same ruler measures both sides: BlazeFace's eye landmarks, found on each 48x48 crop after
upscaling it to 96 px and padding it to 128 (BlazeFace's input) by repeating the border. On the
FER+ validation faces this gives the framing the emotion model was trained on; on crops that
``align_face`` made from the Taiwanese photographs it shows whether the aligner matches it.

    python docs/alignment_study.py [--n 1000] [--png docs/alignment.png]

Needs ../shared/data (FER+ and the Taiwanese photographs) and the fetched BlazeFace model.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config.align import AlignConfig  # noqa: E402
from edge.align import align_face  # noqa: E402
from edge.config.detector import BlazeFaceConfig, HaarConfig  # noqa: E402
from edge.detect import make_detector  # noqa: E402
from models.ferplus import default_data_dir, load_split  # noqa: E402

UP, PAD = 96, 16   # 48 -> 96 px, + 16 px each side = 128, BlazeFace's input size


def crop_framing(detector, crops: list[np.ndarray]) -> np.ndarray:
    """Per crop (where BlazeFace finds it): eye-midpoint x, y and inter-ocular distance, as fractions of the side."""
    rows = []
    for crop in crops:
        big = cv2.resize(crop, (UP, UP), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.cvtColor(cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE), cv2.COLOR_GRAY2BGR)
        dets = detector.detect(canvas)
        if not dets:
            continue
        lm = dets[0].landmarks
        r, l = np.array(lm["right_eye"]) - PAD, np.array(lm["left_eye"]) - PAD
        rows.append([(r[0] + l[0]) / 2 / UP, (r[1] + l[1]) / 2 / UP, np.linalg.norm(l - r) / UP])
    return np.array(rows).reshape(-1, 3)


def summary(name: str, stats: np.ndarray, total: int) -> str:
    med = np.median(stats, axis=0)
    q1, q3 = np.percentile(stats, 25, axis=0), np.percentile(stats, 75, axis=0)
    cells = [f"{m:.3f} ({a:.3f}-{b:.3f})" for m, a, b in zip(med, q1, q3)]
    return f"| {name} | {len(stats)}/{total} | " + " | ".join(cells) + " |"


def taiwanese_photos(data: Path, step: int) -> list[Path]:
    return sorted((data / "faces" / "taiwanese_fed").glob("*/*.jpg"))[::step]


def aligned_crops(detector, photos: list[Path], cfg: AlignConfig) -> dict[Path, np.ndarray]:
    """Photo -> crop of its largest face, for the photos where ``detector`` finds one."""
    crops = {}
    for p in photos:
        img = cv2.imread(str(p))
        dets = detector.detect(img)
        if dets:
            crops[p] = align_face(img, dets[0], cfg)
    return crops


def draw(rows: list[tuple[str, list[np.ndarray]]], path: Path, scale: int = 2) -> None:
    """A grid: one labelled row per source, crops upscaled ``scale`` times."""
    side = 48 * scale
    label_w = 170
    n = max(len(c) for _, c in rows)
    canvas = np.full((len(rows) * (side + 6) + 6, label_w + n * (side + 4), 3), 255, np.uint8)
    for i, (label, crops) in enumerate(rows):
        y = 6 + i * (side + 6)
        for j, line in enumerate(label.split("\n")):
            cv2.putText(canvas, line, (6, y + 30 + 20 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for j, crop in enumerate(crops):
            x = label_w + j * (side + 4)
            big = cv2.resize(crop, (side, side), interpolation=cv2.INTER_NEAREST)
            canvas[y:y + side, x:x + side] = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="FER+ validation faces to measure")
    ap.add_argument("--step", type=int, default=4, help="use every STEP-th Taiwanese photograph")
    ap.add_argument("--png", type=Path, default=Path(__file__).with_name("alignment.png"))
    args = ap.parse_args()
    data = default_data_dir()
    blaze = make_detector(BlazeFaceConfig(profile="kiosk", fallback_to_haar=False, min_score=0.5))
    haar = make_detector(HaarConfig(profile="kiosk"))
    cfg = AlignConfig()

    fer = list(load_split("valid", data).images[: args.n])
    photos = taiwanese_photos(data, args.step)
    tw_blaze = aligned_crops(blaze, photos, cfg)
    tw_haar = aligned_crops(haar, photos, cfg)

    print("| crops | measured/total | eye midpoint x | eye midpoint y | inter-ocular distance |")
    print("| --- | --- | --- | --- | --- |")
    print(summary("FER+ validation", crop_framing(blaze, fer), len(fer)))
    print(summary("Taiwanese, BlazeFace + align_face", crop_framing(blaze, list(tw_blaze.values())), len(tw_blaze)))
    print(summary("Taiwanese, Haar + align_face", crop_framing(blaze, list(tw_haar.values())), len(tw_haar)))
    print(f"(align config: eye_y={cfg.eye_y}, eye_distance={cfg.eye_distance}; median and interquartile range)")

    # A few samples only: documentation of framing, not a copy of the data set.
    rng = np.random.default_rng(7)
    pick_f = rng.choice(len(fer), 8, replace=False)
    both = [p for p in photos if p in tw_blaze and p in tw_haar]
    pick_t = [both[i] for i in sorted(rng.choice(len(both), 8, replace=False))]
    draw([("FER+ (validation)", [fer[i] for i in pick_f]),
          ("Taiwanese photos\nBlazeFace + align", [tw_blaze[p] for p in pick_t]),
          ("Taiwanese photos\nHaar + align", [tw_haar[p] for p in pick_t])], args.png)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
