"""Kiosk pass refinement: eye precision and time per frame, with and without it, in one run.

    nice -n 10 python bench/kiosk_refine.py                 # 100 Taiwanese photographs
    python bench/kiosk_refine.py --limit 20 --widths 64 96

BlazeFace short-range (the kiosk pass of the default detector) searches the whole frame in a
128 px input, so a face of 50-160 px in a 640x480 frame is 10-32 px there, at the bottom of the
model's range. ``detector.blazeface.refine_below`` (default 0.25 of the frame's longer side) runs
the model once more on a patch ``refine_patch`` boxes wide around such a face. For each width,
each photograph is shrunk (INTER_AREA) so that its face is that wide, pasted in the middle of a
640x480 grey frame, and detected with refinement off (the baseline) and on, alternately, by the
same process on one thread. Eye error: the mean distance of the two eyes from where the detector
puts them on the photograph at full size (the face fills the input there), mapped into the frame,
in frame pixels and as a share of the eye distance. Time: median milliseconds per frame and the
ratio on / off.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.face_size import in_frame  # noqa: E402
from edge.config.detector import BlazeFaceConfig, BlazeFaceOptions  # noqa: E402
from edge.detect import make_detector  # noqa: E402
from models.taiwanese import photo_rows  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "faces" / "taiwanese_fed"
EYES = ("right_eye", "left_eye")


def eye_error(det, ref, scale: float, shift: tuple[float, float]) -> tuple[float, float]:
    """(mean eye distance from the mapped reference in frame px, the same over the reference eye distance)."""
    want = {e: np.array(ref.landmarks[e]) * scale + shift for e in EYES}
    err = float(np.mean([np.hypot(*(np.array(det.landmarks[e]) - want[e])) for e in EYES]))
    return err, err / float(np.hypot(*(want["left_eye"] - want["right_eye"])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the Taiwanese photographs (labels.csv and images)")
    p.add_argument("--limit", type=int, default=100, help="photographs (spread over the set)")
    p.add_argument("--widths", type=int, nargs="+", default=[48, 64, 80, 96, 128, 160, 200])
    args = p.parse_args(argv)
    if not (args.data / "labels.csv").is_file():
        print(f"{args.data}: no labels.csv (the shared data is ../shared/data/faces/taiwanese_fed)", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    rows = photo_rows(args.data)
    rows = rows[:: max(1, len(rows) // args.limit)][: args.limit]
    make = lambda below: make_detector(BlazeFaceConfig(profile="kiosk", fallback_to_haar=False,  # noqa: E731
                                                       blazeface=BlazeFaceOptions(refine_below=below)))
    on, off = make(BlazeFaceOptions().refine_below), make(0.0)
    refs = []
    for r in rows:
        image = cv2.imread(str(args.data / r["path"]), cv2.IMREAD_COLOR)
        dets = off.detect(image) if image is not None else []
        if dets:
            refs.append((image, dets[0]))
    print(f"{len(refs)} photographs with a face at full size; refine_below {BlazeFaceOptions().refine_below}, "
          f"refine_patch {BlazeFaceOptions().refine_patch}\n")
    lines = ["| face width | found, off / on | eye error px, off / on | of eye distance, off / on "
             "| ms per frame, off / on | time on / off |", "|---|---|---|---|---|---:|"]
    for width in args.widths:
        found = {"off": 0, "on": 0}
        err: dict[str, list] = {"off": [], "on": []}
        ms: dict[str, list] = {"off": [], "on": []}
        for image, ref in refs:
            scale = width / ref.box[2]
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frame = in_frame(small)
            shift = ((640 - small.shape[1]) // 2, (480 - small.shape[0]) // 2)
            for name, det in (("off", off), ("on", on)):
                t0 = time.perf_counter()
                dets = det.detect(frame)
                ms[name].append(1000 * (time.perf_counter() - t0))
                if dets:
                    found[name] += 1
                    err[name].append(eye_error(dets[0], ref, scale, shift))
        med = {k: np.median(np.array(v), axis=0) if v else (np.nan, np.nan) for k, v in err.items()}
        t = {k: float(np.median(v)) for k, v in ms.items()}
        n = len(refs)
        lines.append(f"| {width} px | {found['off'] / n:.0%} / {found['on'] / n:.0%} "
                     f"| {med['off'][0]:.1f} / {med['on'][0]:.1f} | {med['off'][1]:.0%} / {med['on'][1]:.0%} "
                     f"| {t['off']:.2f} / {t['on']:.2f} | {t['on'] / t['off']:.2f} |")
        print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
