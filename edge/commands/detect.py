"""`fer-edge detect IMAGE_OR_DIR...`: faces and emotions in images, folders (recursive) or video files.

Prints one JSON line per face on stdout:

    {"path": "a.jpg", "face": 0, "box": [x, y, w, h], "score": 0.93,
     "landmarks": {"right_eye": [x, y], ...}, "emotion": "happiness", "emotion_score": 0.91,
     "scores": {"neutral": 0.02, ...}, "detector": "blazeface-short-range@3bc182eb", "model": "fer-edge-emotion-1.0.0@..."}

(video frames add "frame" and "time"). ``--annotate DIR`` also writes each picture with its faces
drawn. Problems with an input (missing, unreadable, not an image, empty folder) are one line each
on stderr and the run goes on with the rest.

Exit codes: 0 every input read; 1 some inputs could not be read; 2 usage or configuration error;
3 the detector or the emotion model could not be opened.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from edge.config import AppConfig, load_config
from edge.config.detector import DETECTOR_TYPES, with_detector_type
from edge.config.model import prior_correction_error
from edge.config.source import SourceConfig
from edge.exitcodes import EXIT_FAILED, EXIT_MODEL, EXIT_OK, EXIT_USAGE
from edge.face_analyzer import FaceAnalyzer, PipelineSections
from edge.interpreter import ModelError
from edge.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, SourceError, list_images, read_image
from edge.sources.video import VideoFileBackend
from edge.types import Classification, Detection


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that run the face pipeline (detect, eval-faces)."""
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="take the detector, align and model sections from this config file "
                             "(default: the built-in defaults)")
    parser.add_argument("--detector", choices=DETECTOR_TYPES,
                        help="use this detector backend instead of the config's type (its sub-section keeps its settings)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="interpreter threads for detector and model (default: the config's)")
    parser.add_argument("--prior-correction", type=float, default=None, metavar="TAU",
                        help="model.prior_correction for this run, 0..1 (default: the config's)")


def sections_from_args(args: argparse.Namespace, prog: str) -> tuple[PipelineSections | None, int]:
    """The pipeline config the options ask for, checked but with no model loaded.

    (PipelineSections, 0), or (None, EXIT_USAGE) after one stderr line (the config's own lines first).
    """
    try:
        loaded = _load_config(args.config)
        cfg = PipelineSections.of(loaded) if loaded is not None else PipelineSections()
    except ValueError as exc:         # edge.config.ConfigError: one line per problem
        print(exc, file=sys.stderr)
        print(f"{prog}: invalid config {args.config}", file=sys.stderr)
        return None, EXIT_USAGE
    if args.detector and args.detector != cfg.detector.type:
        # the same section with another type: every backend keeps its options (a one-line switch)
        cfg = replace(cfg, detector=with_detector_type(cfg.detector, args.detector))
    if args.threads:
        det = cfg.detector     # every backend sub-section that has a `threads` option (blazeface, blazeface_full)
        subs = {name: sub for name in type(det).model_fields
                if isinstance(sub := getattr(det, name), BaseModel) and "threads" in type(sub).model_fields}
        cfg = replace(cfg, detector=det.model_copy(update={
            name: sub.model_copy(update={"threads": args.threads}) for name, sub in subs.items()}))
        cfg = replace(cfg, model=cfg.model.model_copy(update={"threads": args.threads}))
    if args.prior_correction is not None:
        if (err := prior_correction_error(args.prior_correction)):
            print(f"{prog}: {err}", file=sys.stderr)
            return None, EXIT_USAGE
        cfg = replace(cfg, model=cfg.model.model_copy(update={"prior_correction": args.prior_correction}))
    return cfg, EXIT_OK


def analyzer_from_args(args: argparse.Namespace, prog: str, classify: bool = True,
                       sections: PipelineSections | None = None) -> tuple[FaceAnalyzer | None, int]:
    """Build the FaceAnalyzer the options ask for; (analyzer, 0) or (None, exit code) after one stderr line.

    ``sections``: the result of an earlier ``sections_from_args`` (the options are then not read again).
    """
    if sections is None:
        sections, code = sections_from_args(args, prog)
        if sections is None:
            return None, code
    try:
        return FaceAnalyzer(sections, classify=classify), EXIT_OK
    except ModelError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None, EXIT_MODEL


def _load_config(path: Path | None) -> AppConfig | None:
    """The app config from ``path``; None (built-in defaults) without one."""
    return load_config(path) if path is not None else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Inputs, pipeline options, --annotate, --every, --no-classify."""
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                        help="image files, folders of images (searched recursively) or video files")
    add_pipeline_arguments(parser)
    parser.add_argument("--annotate", type=Path, metavar="DIR",
                        help="also write each picture with its faces drawn into DIR (same relative names)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="video files: analyse every N-th frame")
    parser.add_argument("--no-classify", action="store_true",
                        help="detect and align only (no emotion model needed)")


def run(args: argparse.Namespace) -> int:
    """Analyse every input; one JSON line per face; exit code as in the module docstring."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.every < 1:
        print("fer-edge detect: --every must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    analyzer, code = analyzer_from_args(args, "fer-edge detect", classify=not args.no_classify)
    if analyzer is None:
        return code
    failed = pictures = frames = faces = 0
    written: set[Path] = set()          # annotated names taken so far: a/x.jpg and b/x.jpg must not collide
    for item in _expand(args.inputs, args.every):
        if isinstance(item, str):          # an input that could not be read: its one-line reason
            print(f"fer-edge detect: {item}", file=sys.stderr)
            failed += 1
            continue
        path, frame_no, media_time, image, out_name = item
        frames += frame_no is not None             # a frame of a video
        pictures += frame_no is None               # an image file
        results = analyzer.analyze(image)
        for k, (det, cls) in enumerate(results):
            record = face_record(det, cls, analyzer, path=str(path), face=k)
            if frame_no is not None:
                record = {"path": str(path), "frame": frame_no, "time": round(media_time, 3), **record}
            print(json.dumps(record), flush=False)
        faces += len(results)
        if args.annotate is not None:
            name = _unique(_annotated_name(out_name), written)
            if name != _annotated_name(out_name):
                print(f"fer-edge detect: {path}: annotated picture written as {name} "
                      f"({_annotated_name(out_name)} came from an earlier input)", file=sys.stderr)
            failed += not _write_annotated(args.annotate / name, image, results)
    sys.stdout.flush()
    seen = ", ".join(f"{n} {what}(s)" for n, what in ((pictures, "picture"), (frames, "video frame"))
                     if n or (what == "picture" and not frames))
    print(f"fer-edge detect: {seen}, {faces} face(s), {failed} failed input(s); "
          f"detector {analyzer.detector_id}, model {analyzer.model_id or 'none'}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def face_record(det: Detection, cls: Classification | None, analyzer: FaceAnalyzer, path: str,
                face: int) -> dict[str, Any]:
    """The JSON object printed for one face (rounded so lines stay short)."""
    record: dict[str, Any] = {
        "path": path,
        "face": face,
        "box": [round(float(v), 1) for v in det.box],
        "score": round(float(det.score), 4),
        "landmarks": {k: [round(float(x), 1), round(float(y), 1)] for k, (x, y) in det.landmarks.items()},
    }
    if cls is not None:
        record.update(emotion=cls.label, emotion_score=round(cls.score, 4), scores=cls.as_dict())
    record.update(detector=analyzer.detector_id, model=analyzer.model_id)
    return record


def _expand(inputs: list[str], every: int = 1) -> Iterator[str | tuple[Path, int | None, float, np.ndarray, Path]]:
    """Yield (path, frame number or None, media time, image, output name) per picture, or an error line."""
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files = list_images(path)
            if not files:
                yield f"{path}: folder holds no images"
                continue
            for f in files:
                try:
                    yield f, None, 0.0, read_image(f), Path(path.name) / f.relative_to(path)
                except SourceError as exc:
                    yield str(exc)
        elif not path.exists():
            yield f"{path}: no such file or folder"
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            # the file backend directly: a bad file is one line here, not a reopen loop
            video = VideoFileBackend(SourceConfig(uri=str(path), kind="video"))
            try:
                video.open()
            except SourceError as exc:
                yield str(exc)
                continue
            try:
                n = 0
                while (got := video.read()) is not None:
                    if n % every == 0:
                        yield path, n, got[1] or 0.0, got[0], Path(path.stem) / f"{n:06d}.jpg"
                    n += 1
            finally:
                video.release()
        else:
            try:
                image = read_image(path)
            except SourceError as exc:
                known = path.suffix.lower() in IMAGE_EXTENSIONS
                yield str(exc) if known else f"{path}: not an image or video file OpenCV can read"
                continue
            yield path, None, 0.0, image, Path(path.name)


def _annotated_name(name: Path) -> Path:
    """The output name of an annotated picture: ``name``, as JPEG unless it is a JPEG or PNG already."""
    return name if name.suffix.lower() in (".jpg", ".jpeg", ".png") else name.with_suffix(".jpg")


def _unique(name: Path, taken: set[Path]) -> Path:
    """``name``, or ``name`` with -2, -3, ... before its suffix when it is taken; the result is added to ``taken``."""
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = name.with_name(f"{name.stem}-{k}{name.suffix}")
    taken.add(candidate)
    return candidate


def _write_annotated(target: Path, image: np.ndarray, results: list) -> bool:
    """Write ``image`` with boxes, landmarks and emotion labels; False (and one stderr line) on failure."""
    import cv2

    out = image.copy()
    for det, cls in results:
        x, y, w, h = (int(round(v)) for v in det.box)
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), 2)
        for px, py in det.landmarks.values():
            cv2.circle(out, (int(px), int(py)), 2, (0, 0, 255), -1)
        if cls is not None:
            text = f"{cls.label} {cls.score:.2f}"
            cv2.putText(out, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1, cv2.LINE_AA)
    target = _annotated_name(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), out):
            raise OSError("OpenCV could not encode or write it")
    except (OSError, cv2.error) as exc:
        print(f"fer-edge detect: cannot write {target}: {exc}", file=sys.stderr)
        return False
    return True
