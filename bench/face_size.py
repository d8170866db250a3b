"""Face size: accuracy and faces found per face width, clean and camera-like, through the whole pipeline.

    nice -n 10 python bench/face_size.py --crowd --json face_size.json        # shipped model, everything
    nice -n 10 python bench/face_size.py --model X.tflite --cache /tmp/face_size.npz   # a candidate beside it
    python bench/face_size.py --limit 20 --fer-limit 20 --sizes 32 96         # quick look
    python bench/face_size.py --sizes 24 32 40 --teachers ../shared/teachers --taus 0 0.2   # where the gap comes from
    python bench/face_size.py --sizes 32 40 --camera-parts blur --cache /tmp/fs_blur.npz   # what the blur alone costs

Each Taiwanese photograph (../shared/data/faces/taiwanese_fed, labels via models/taiwanese.py) is
shrunk with INTER_AREA so that its face is N px wide (N relative to the width of the box the default
detector gives on the photograph itself; a photograph in which it finds no face takes the median
width) and pasted in the middle of a 640x480 grey frame. "full" is the photograph as it is, the way
bench/accuracy.py runs it. FER+ test faces (majority protocol, the first --fer-limit images, via
models/evaluate.py) are 48x48 crops: each is upscaled 4x (INTER_CUBIC) into the grey frame once to
measure its face width w in the 48 px image, then resized by N / w (INTER_AREA when shrinking,
INTER_CUBIC when enlarging, so that widths above ~40 px add no detail) into the frame; "full" is the
evaluation protocol itself (the 48x48 image straight to the model, no detector).

Every frame is the first frame of a camera (a fresh ``auto`` profile state: the kiosk pass, then the
room search where it finds nobody) through the default config's detector and aligner
(edge/face_analyzer.py) and the default quality gates (edge/quality.py) with ``quality.min_face_px``
set to --gate (default 0, so that small faces are classified at all); the largest face is
classified. "found": the detector found a face; "classified": it also passed the gates. Accuracy
counts every photograph (no face, or not classified: wrong). Degraded ("camera"): Gaussian blur
sigma 0.7 px and noise sigma 3 on the resized image, then the whole frame through JPEG quality 60,
seeded per image and size. Detection, alignment and gates do not depend on the emotion model: they
run once, every --model classifies the same crops, and --cache FILE keeps the crops for the next run.

--crowd: the share of face-time the crowd clip (../shared/data/video/crowd_street_test.mp4) reports
as ``unknown`` (the summary events' seconds per emotion, as the dashboard and Home Assistant show
them) with the default config and with quality.min_face_px at --crowd-gates (the frame processor,
one thread). Proposed gate, per model: the smallest width whose degraded Taiwanese accuracy is within
--within points (default 3) of its clean full-size accuracy.

Diagnostics of that gap: --camera-parts P ... degrades the "camera" condition with only those parts
of it (blur, noise, jpeg; default all three), to see which one costs the points; --teachers DIR also
runs teachers A and B (training-time models, models/teachers.py) on the same 48 px crops, the crops
their soft labels were computed on; --taus T ... also runs each fer-edge model with its in-graph
prior correction changed after the fact to each tau (scores x prior ** (in-graph tau - T), the
card's class prior), 0 being the model without it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.accuracy import Ours, Teacher  # noqa: E402
from edge.classify import prior_weights  # noqa: E402
from models import evaluate, ferplus  # noqa: E402
from models.taiwanese import Photos, load_photos, photo_predictions, photo_rows, taiwan_figures  # noqa: E402

SIZES = (20, 24, 28, 32, 40, 48, 64, 96)
FULL = 0                                  # the size key of "full size"
FRAME_HW, GREY = (480, 640), 128
BLUR_SIGMA, NOISE_SIGMA, JPEG_QUALITY = 0.7, 3.0, 60
CONDITIONS = ("clean", "camera")
PARTS = ("blur", "noise", "jpeg")          # the camera condition's parts, in the order they are applied
CROWD_GATES = (40, 32, 28, 24, 20)
FER_UPSCALE = 4                           # FER+ faces are measured at 4x
#: Code whose behaviour the cached crops depend on (with the options and the data): a change empties the cache.
CACHE_CODE = ("edge/detect", "edge/align.py", "edge/quality.py", "edge/face_analyzer.py")
#: Raise when the way frames are made here changes (sizes, frame, degradation): old caches are then not reused.
FRAMES_VERSION = 1
FER_LIMIT = 300                           # FER+ faces by default (all 3,137 take 2.5x the time of the 1,232 photographs)


@dataclass
class SizeRun:
    """One data set at one size in one condition: the crop of each image's largest face that would be classified."""

    crops: list                  # 48 px grey crop, or None (no face found, or it failed a gate)
    found: np.ndarray            # (N,) bool: the detector found a face


@dataclass
class Curve:
    """Accuracy per model and size, with faces found and classified, for one data set in one condition."""

    dataset: str
    condition: str
    n: int
    found: dict[int, float] = field(default_factory=dict)
    classified: dict[int, float] = field(default_factory=dict)
    accuracy: dict[str, dict[int, float]] = field(default_factory=dict)           # model -> size -> share
    accuracy_classified: dict[str, dict[int, float]] = field(default_factory=dict)


class Retuned:
    """A fer-edge model with its in-graph prior correction changed after the fact to ``tau``."""

    def __init__(self, base: Ours, tau: float) -> None:
        prior = base.model.card.class_prior
        if prior is None:
            raise ValueError(f"{base.name}: its card has no training.class_prior, so --taus cannot change its prior correction")
        in_graph = float(base.card.get("training", {}).get("prior_correction_in_graph") or 0.0)
        self.base, self.model, self.name = base, base.model, f"{base.name} at tau {tau:g}"
        self.weights = prior_weights(prior, tau - in_graph)     # undo in_graph, apply tau

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        s = self.base.scores(crops) * self.weights
        return s / s.sum(axis=1, keepdims=True)


class Pipeline:
    """The default config's detector, aligner and quality gates on single frames, each a camera's first."""

    def __init__(self, gate: int, model) -> None:
        """``model``: an EmotionModel; the crops are framed as its card says, as the runtime frames them."""
        from edge.config.quality import QualityConfig
        from edge.face_analyzer import FaceAnalyzer, PipelineSections

        self.analyzer = FaceAnalyzer(PipelineSections(), model=model)
        self.quality = QualityConfig(min_face_px=gate)
        self._detector = self.analyzer.detector

    def detect(self, image: np.ndarray) -> list:
        """The faces of ``image`` as the first frame a camera delivers (a fresh auto-profile state)."""
        from edge.detect import ProfileDetector

        d = self._detector
        if isinstance(d, ProfileDetector):
            self.analyzer.detector = ProfileDetector(d.kiosk, d.room, d.cfg)
        return self.analyzer.detect(image)

    def face(self, image: np.ndarray) -> tuple[bool, np.ndarray | None]:
        """(a face was found, the aligned crop of the largest face, or None where it fails a gate)."""
        from edge.quality import crop_problem, detection_problem

        dets = self.detect(image)
        if not dets:
            return False, None
        if detection_problem(dets[0], self.quality):
            return True, None
        crop = self.analyzer.align(image, dets[:1])[0]
        return True, (None if crop_problem(crop, self.quality) else crop)

    def width(self, image: np.ndarray) -> float | None:
        """Width of the largest face's box, or None."""
        dets = self.detect(image)
        return float(dets[0].box[2]) if dets else None


def degrade(image: np.ndarray, rng: np.random.Generator, parts: tuple[str, ...] = PARTS) -> np.ndarray:
    """Camera-like softness and sensor noise on a resized face image (JPEG comes after, on the frame);
    ``parts``: which of the two to apply."""
    out = (cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA) if "blur" in parts else image).astype(np.float32)
    if "noise" in parts:
        out = out + rng.normal(0.0, NOISE_SIGMA, image.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` scaled by ``scale``: INTER_AREA when shrinking, INTER_CUBIC when enlarging."""
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def in_frame(image: np.ndarray) -> np.ndarray:
    """``image`` pasted in the middle of a 640x480 grey frame (cut to the frame if larger)."""
    frame = np.full((*FRAME_HW, 3), GREY, np.uint8)
    h, w = min(image.shape[0], FRAME_HW[0]), min(image.shape[1], FRAME_HW[1])
    y, x = (FRAME_HW[0] - h) // 2, (FRAME_HW[1] - w) // 2
    iy, ix = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    frame[y:y + h, x:x + w] = image[iy:iy + h, ix:ix + w]
    return frame


def test_frame(image: np.ndarray, scale: float | None, condition: str, rng: np.random.Generator,
               parts: tuple[str, ...] = PARTS) -> np.ndarray:
    """The frame the pipeline gets: ``image`` resized by ``scale`` into the grey frame (None: the image
    itself, full size), degraded for the ``camera`` condition by its ``parts``."""
    camera = condition == "camera"
    face = image if scale is None else resized(image, scale)
    if camera:
        face = degrade(face, rng, parts)
    frame = face if scale is None else in_frame(face)
    return jpeg(frame) if camera and "jpeg" in parts else frame


def run_sizes(pipe: Pipeline, images: list[np.ndarray], widths: np.ndarray, sizes: list[int], condition: str,
              seed: int, tag: str, parts: tuple[str, ...] = PARTS) -> dict[int, SizeRun]:
    """Every image at every size (FULL: as it is) in one condition, through the pipeline."""
    out = {}
    for size in sizes:
        t0 = time.time()
        found, crops = [], []
        for i, (image, w) in enumerate(zip(images, widths)):
            rng = np.random.default_rng((seed, i, size))
            frame = test_frame(image, None if size == FULL else size / w, condition, rng, parts)
            f, crop = pipe.face(frame)
            found.append(f)
            crops.append(crop)
        out[size] = SizeRun(crops, np.array(found, bool))
        print(f"  {tag} {condition} {label(size)}: found {np.mean(found):.1%} ({time.time() - t0:.0f} s)", flush=True)
    return out


def condition_name(condition: str, parts: tuple[str, ...]) -> str:
    """How a table names ``condition``: "camera" with all its parts, else which parts it had."""
    return condition if condition != "camera" or parts == PARTS else f"camera ({' + '.join(parts)} only)"


def label(size: int) -> str:
    return "full" if size == FULL else f"{size} px"


def face_widths(pipe: Pipeline, images: list[np.ndarray], upscale: int = 1) -> np.ndarray:
    """Each image's face width at its own size (measured at ``upscale``, in the frame when upscaled);
    images without a face take the median."""
    widths = []
    for image in images:
        shown = image if upscale == 1 else in_frame(resized(image, upscale))
        w = pipe.width(shown)
        widths.append(np.nan if w is None else w / upscale)
    widths = np.array(widths)
    return np.where(np.isnan(widths), np.nanmedian(widths) if np.isfinite(widths).any() else 1.0, widths)


def taiwan_curve(models: list, photos: Photos, runs: dict[int, SizeRun], condition: str) -> Curve:
    """Accuracy over all photographs (through models/taiwanese.py's figures) per size."""
    curve = Curve("Taiwanese photographs", condition, len(photos.labels))
    for size, run in runs.items():
        sized = Photos(photos.labels, photos.performer, photos.agreed, run.crops, run.crops)
        classified = np.array([c is not None for c in run.crops])
        curve.found[size], curve.classified[size] = float(run.found.mean()), float(classified.mean())
        for m in models:
            pred, _ = photo_predictions(m, sized, big=False)
            curve.accuracy.setdefault(m.name, {})[size] = taiwan_figures(pred, sized)["all"]
            curve.accuracy_classified.setdefault(m.name, {})[size] = \
                float((pred == photos.labels)[classified].mean()) if classified.any() else float("nan")
    return curve


def fer_curve(models: list, images: np.ndarray, labels: np.ndarray, runs: dict[int, SizeRun],
              condition: str, seed: int, parts: tuple[str, ...] = PARTS) -> Curve:
    """FER+ accuracy per size; FULL: the evaluation protocol (48x48 straight to the model)."""
    curve = Curve("FER+ test", condition_name(condition, parts), len(labels))
    for size in [*runs, FULL]:
        if size == FULL:
            faces = [img if condition == "clean" else
                     cv2.cvtColor(test_frame(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), None, condition,
                                             np.random.default_rng((seed, i, FULL)), parts), cv2.COLOR_BGR2GRAY)
                     for i, img in enumerate(images)]
            found = np.ones(len(labels), bool)
        else:
            faces, found = runs[size].crops, runs[size].found
        keep = [i for i, c in enumerate(faces) if c is not None]
        curve.found[size], curve.classified[size] = float(found.mean()), len(keep) / max(1, len(labels))
        for m in models:
            pred = np.full(len(labels), -1)
            if keep:
                pred[keep] = m.scores([faces[i] for i in keep]).argmax(axis=1)
            curve.accuracy.setdefault(m.name, {})[size] = float((pred == labels).mean())
            curve.accuracy_classified.setdefault(m.name, {})[size] = \
                float((pred[keep] == labels[keep]).mean()) if keep else float("nan")
    return curve


def table(curve: Curve) -> list[str]:
    """The curve as a markdown table: sizes across, faces found, classified and accuracy per model down."""
    sizes = sorted(curve.found, key=lambda s: (s == FULL, s))
    def pct(v: float) -> str:
        return "n/a" if np.isnan(v) else f"{100 * v:.1f}%"
    out = [f"{curve.dataset}, {curve.condition} (n = {curve.n}):", "",
           "| face width | " + " | ".join(label(s) for s in sizes) + " |", "|---|" + "---:|" * len(sizes),
           "| faces found | " + " | ".join(pct(curve.found[s]) for s in sizes) + " |",
           "| classified | " + " | ".join(pct(curve.classified[s]) for s in sizes) + " |"]
    for name, acc in curve.accuracy.items():
        out.append(f"| accuracy, {name} | " + " | ".join(pct(acc[s]) for s in sizes) + " |")
    for name, acc in curve.accuracy_classified.items():
        out.append(f"| of classified, {name} | " + " | ".join(pct(acc[s]) for s in sizes) + " |")
    return out


def proposed_gate(clean: Curve, camera: Curve, model: str, within: float) -> int | None:
    """The smallest width whose degraded accuracy is within ``within`` points of clean full size (None: none is)."""
    full = clean.accuracy[model][FULL]
    ok = [s for s in sorted(camera.accuracy[model]) if s != FULL and 100 * (full - camera.accuracy[model][s]) <= within]
    return ok[0] if ok else None


def crowd_unknown(video: Path, gate: int | None) -> dict:
    """The crowd clip through the frame processor (default config, one thread; ``gate``: quality.min_face_px):
    face-seconds per emotion from the summary events, and the share that is ``unknown``."""
    from bench.crowd import config
    from edge.config.source import SourceConfig
    from edge.frame_processor import FrameProcessor
    from edge.sources import open_source
    from edge.track import UNKNOWN

    cfg = config({} if gate is None else {"quality": {"min_face_px": gate}})
    proc = FrameProcessor(cfg)
    seconds: dict[str, float] = {}
    events = []
    for frame in open_source(SourceConfig(uri=str(video))):
        events += proc.process(frame).events
    events += proc.close()
    for e in events:
        if e.type == "summary":
            for k, v in e.summary.seconds.items():
                seconds[k] = seconds.get(k, 0.0) + v
    total = sum(seconds.values())
    return {"min_face_px": cfg.quality.min_face_px, "default": gate is None, "face_seconds": round(total, 2),
            "unknown_share": seconds.get(UNKNOWN, 0.0) / total if total else float("nan"),
            "seconds": {k: round(v, 2) for k, v in sorted(seconds.items())}}


def cache_key(args: argparse.Namespace, sizes: list[int], files: list[Path], pipe: Pipeline) -> str:
    """What the crops depend on: options, the detector/align/quality settings, data files, and the code."""
    settings = [pipe.analyzer.sections.detector.model_dump(mode="json"),
                pipe.analyzer.align_cfg.model_dump(mode="json"), pipe.quality.model_dump(mode="json")]
    h = hashlib.sha256(json.dumps([FRAMES_VERSION, args.gate, args.limit, args.fer_limit, args.seed, sizes,
                                   settings] + ([] if args.camera_parts == PARTS else [args.camera_parts])).encode())
    code = [p for c in CACHE_CODE for p in sorted((REPO / c).rglob("*.py") if (REPO / c).is_dir() else [REPO / c])]
    for p in [*code, *files]:
        h.update(str(p.name).encode())
        h.update(p.read_bytes() if p in code else str(p.stat().st_size).encode())
    return h.hexdigest()


def save_cache(path: Path, key: str, runs: dict[str, dict[str, dict[int, SizeRun]]], extra: dict) -> None:
    arrays = {"key": np.array(key)}
    for ds, conds in runs.items():
        for cond, sizes in conds.items():
            for size, run in sizes.items():
                p = f"{ds}/{cond}/{size}"
                mask = np.array([c is not None for c in run.crops])
                shape = next((c.shape for c in run.crops if c is not None), (48, 48))
                arrays[p + "/crops"] = np.stack([c if c is not None else np.zeros(shape, np.uint8) for c in run.crops])
                arrays[p + "/mask"], arrays[p + "/found"] = mask, run.found
    for k, v in extra.items():
        arrays["extra/" + k] = v
    np.savez_compressed(path, **arrays)


def load_cache(path: Path, key: str) -> tuple[dict, dict] | None:
    if not path.is_file():
        return None
    with np.load(path) as d:
        if str(d["key"]) != key:
            print(f"cache {path}: made by other options, data or code; measuring again")
            return None
        runs: dict = {}
        extra = {k[len("extra/"):]: d[k] for k in d.files if k.startswith("extra/")}
        for k in d.files:
            if k.endswith("/crops"):
                ds, cond, size, _ = k.split("/")
                mask = d[k.replace("/crops", "/mask")]
                crops = [c if m else None for c, m in zip(d[k], mask)]
                runs.setdefault(ds, {}).setdefault(cond, {})[int(size)] = \
                    SizeRun(crops, d[k.replace("/crops", "/found")])
    print(f"cache {path}: crops reused (detection, alignment and gates skipped)")
    return runs, extra


def main(argv: list[str] | None = None) -> int:
    from edge.config.model import SHIPPED_MODEL

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, action="append", default=[],
                   help="a .tflite to measure (card beside it); repeat for several side by side "
                        "(default: the shipped model)")
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir(), help="the shared data folder")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="face widths in px (full size too)")
    p.add_argument("--limit", type=int, default=0, help="first N Taiwanese photographs only (quick mode)")
    p.add_argument("--fer-limit", type=int, default=FER_LIMIT,
                   help=f"first N FER+ majority-protocol test faces (default {FER_LIMIT}; 0: none)")
    p.add_argument("--gate", type=int, default=0, help="quality.min_face_px for the curves (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the camera-like noise")
    p.add_argument("--within", type=float, default=3.0, help="points below clean full size the proposed gate allows")
    p.add_argument("--crowd", action="store_true", help="also the crowd clip's unknown share of face-time")
    p.add_argument("--crowd-gates", type=int, nargs="+", default=list(CROWD_GATES))
    p.add_argument("--no-curves", action="store_true", help="only the crowd clip")
    p.add_argument("--cache", type=Path, help="keep the crops in this .npz and reuse them when nothing changed")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--camera-parts", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART",
                   help="degrade the camera condition with only these parts: blur noise jpeg (default all three)")
    p.add_argument("--teachers", type=Path, help="folder with the teacher files: teachers A and B on the same crops")
    p.add_argument("--taus", type=float, nargs="+", default=[],
                   help="also each fer-edge model with its in-graph prior correction changed to these taus")
    args = p.parse_args(argv)
    args.camera_parts = tuple(part for part in PARTS if part in args.camera_parts)   # in the order applied
    start = time.time()
    cv2.setNumThreads(1)
    models = [Ours("shipped" if m == Path(SHIPPED_MODEL) else str(m), m) for m in (args.model or [Path(SHIPPED_MODEL)])]
    for m in models:
        m.name = f"{m.name} {m.card.get('version', '?')}"
    try:
        models += [Retuned(m, tau) for m in list(models) for tau in args.taus]
    except ValueError as exc:
        print(f"face_size: {exc}", file=sys.stderr)
        return 2
    if args.teachers:
        models += [Teacher(k, args.teachers) for k in ("A", "B")]
    sizes = sorted(set(args.sizes) - {FULL})
    result: dict = {"models": [m.name for m in models], "sizes": sizes, "gate": args.gate,
                    "degradation": {"blur_sigma": BLUR_SIGMA, "noise_sigma": NOISE_SIGMA, "jpeg": JPEG_QUALITY,
                                    "parts": list(args.camera_parts)},
                    "curves": [], "crowd": []}
    lines: list[str] = []
    if not args.no_curves:
        status = curves(args, models, sizes, result, lines)
        if status:
            return status
    if args.crowd:
        video = args.data / "video" / "crowd_street_test.mp4"
        if not video.is_file():
            print(f"face_size: {video}: no crowd clip, crowd skipped (--data: the shared data folder)")
        else:
            lines += crowd_section(video, args.crowd_gates, result)
    result["runtime_s"] = round(time.time() - start, 1)
    lines.append(f"\nruntime {result['runtime_s']:.0f} s")
    print("\n" + "\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def curves(args: argparse.Namespace, models: list, sizes: list[int], result: dict, lines: list[str]) -> int:
    """The Taiwanese and FER+ curves into ``result`` and ``lines``; non-zero where no data set is there."""
    dataset = args.data / "faces" / "taiwanese_fed"
    fer_file = args.data / "ferplus" / "ferplus_eval.npz"
    have_tw, have_fer = (dataset / "labels.csv").is_file(), fer_file.is_file() and args.fer_limit > 0
    if not have_tw:
        print(f"face_size: {dataset}: no Taiwanese photographs, skipped (--data: the shared data folder)")
    if not fer_file.is_file():
        print(f"face_size: {fer_file}: no FER+ test faces, skipped (--data: the shared data folder)")
    if not (have_tw or have_fer):
        print("face_size: nothing to measure: the shared data (../shared/data) is absent", file=sys.stderr)
        return 2
    pipe = Pipeline(args.gate, models[0].model)
    parts = args.camera_parts
    def framing(m: Ours) -> tuple:       # as FaceAnalyzer frames the crops for this model
        align = pipe.analyzer.sections.align.framed(m.model.card.eye_y, m.model.card.eye_distance)
        return align.eye_y, align.eye_distance

    ours = [m for m in models if isinstance(m, Ours)]      # the teachers read the first model's crops
    if (other := next((m for m in ours if framing(m) != framing(models[0])), None)) is not None:
        print(f"face_size: {other.name} frames its crops differently from {models[0].name} (card "
              f"preprocessing.framing {framing(other)} vs {framing(models[0])}): measure it in a run of its own",
              file=sys.stderr)
        return 2
    files = [dataset / "labels.csv"] if have_tw else []
    files += [fer_file] if have_fer else []
    key = cache_key(args, sizes, files, pipe)
    cached = load_cache(args.cache, key) if args.cache else None
    runs, extra = cached if cached else ({}, {})
    curves_: list[Curve] = []
    if have_tw:
        t0 = time.time()
        photos = load_photos(dataset, args.limit)        # bench/accuracy.py's way: the reference for "full"
        direct = {m.name: taiwan_figures(photo_predictions(m, photos, big=False)[0], photos)["all"] for m in models}
        if "tw" not in runs:
            rows = photo_rows(dataset, args.limit)
            images = [cv2.imread(str(dataset / r["path"]), cv2.IMREAD_COLOR) for r in rows]
            widths = face_widths(pipe, images)
            extra["tw_widths"] = widths
            print(f"Taiwanese photographs: {len(images)}, face width at full size median {np.median(widths):.0f} px")
            runs["tw"] = {c: run_sizes(pipe, images, widths, [*sizes, FULL], c, args.seed, "Taiwanese", parts)
                          for c in CONDITIONS}
        for c in CONDITIONS:
            curves_.append(taiwan_curve(models, photos, runs["tw"][c], condition_name(c, parts)))
        lines.append("Taiwanese, full size, clean, as bench/accuracy.py runs it (no gates): "
                     + ", ".join(f"{k} {100 * v:.1f}%" for k, v in direct.items()) + f" ({time.time() - t0:.0f} s)")
    if have_fer:
        x, y = evaluate.load_eval_set("test", args.data, args.fer_limit)
        x = list(x)
        if "fer" not in runs:
            bgr = [cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) for img in x]
            widths = face_widths(pipe, bgr, FER_UPSCALE)
            extra["fer_widths"] = widths
            print(f"FER+ test faces: {len(x)}, face width in the 48 px image median {np.median(widths):.1f} px")
            runs["fer"] = {c: run_sizes(pipe, bgr, widths, sizes, c, args.seed, "FER+", parts) for c in CONDITIONS}
        for c in CONDITIONS:
            curves_.append(fer_curve(models, np.array(x), y, runs["fer"][c], c, args.seed, parts))
    if args.cache and not cached:
        save_cache(args.cache, key, runs, extra)
    for k, w in extra.items():
        result[k.replace("_widths", "_face_width_median_px")] = round(float(np.median(w)), 1)
    for curve in curves_:
        lines += ["", *table(curve)]
        result["curves"].append({"dataset": curve.dataset, "condition": curve.condition, "n": curve.n,
                                 **{k: {n: {label(s): v for s, v in d.items()} for n, d in getattr(curve, k).items()}
                                    for k in ("accuracy", "accuracy_classified")},
                                 "found": {label(s): v for s, v in curve.found.items()},
                                 "classified": {label(s): v for s, v in curve.classified.items()}})
    if have_tw:
        clean, camera = curves_[0], curves_[1]
        for m in models:
            gate = proposed_gate(clean, camera, m.name, args.within)
            result.setdefault("proposed_gate", {})[m.name] = gate
            lines.append(f"\n{m.name}: proposed quality.min_face_px {gate if gate is not None else 'none'} "
                         f"(the smallest width whose degraded Taiwanese accuracy is within {args.within:g} "
                         f"points of clean full size, {100 * clean.accuracy[m.name][FULL]:.1f}%; points below it: "
                         + ", ".join(f"{label(s)} {100 * (clean.accuracy[m.name][FULL] - v):.1f}"
                                     for s, v in camera.accuracy[m.name].items() if s != FULL) + ")")
    return 0


def crowd_section(video: Path, gates: list[int], result: dict) -> list[str]:
    """The crowd clip's unknown share at the default config and at each gate, as table lines."""
    from edge.config.quality import QualityConfig

    default = QualityConfig().min_face_px
    rows = []
    for gate in [None, *[g for g in gates if g != default]]:
        t0 = time.time()
        rows.append(crowd_unknown(video, gate))
        print(f"  crowd, min_face_px {rows[-1]['min_face_px']}: unknown {rows[-1]['unknown_share']:.1%} "
              f"({time.time() - t0:.0f} s)", flush=True)
    result["crowd"] = rows
    out = ["", f"Crowd clip {video.name}: share of face-time reported as unknown (summary events, default config):",
           "", "| quality.min_face_px | unknown share | face-seconds |", "|---|---:|---:|"]
    for r in sorted(rows, key=lambda r: -r["min_face_px"]):
        out.append(f"| {r['min_face_px']}{' (default)' if r['default'] else ''} | {100 * r['unknown_share']:.1f}% | "
                   f"{r['face_seconds']:.1f} |")
    return out


if __name__ == "__main__":
    sys.exit(main())
