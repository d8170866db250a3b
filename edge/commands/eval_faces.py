"""`fer-edge eval-faces`: the whole pipeline (detect -> align -> classify) on labelled full photographs.

    fer-edge eval-faces                                  # ../shared/data/faces/taiwanese_fed, all 1,232
    fer-edge eval-faces --data /srv/data                 # the shared data folder elsewhere
    fer-edge eval-faces --detector haar                  # the same with the Haar detector
    fer-edge eval-faces --split tune --json report.json  # half of the performers only
    fer-edge eval-faces --prior-correction 0.75          # scores divided by the training prior^0.75

For each photograph the largest face is classified; a photograph without a face counts as wrong.
Prints the detection rate, accuracy against the posed label (argmax over all the model's classes,
so a "contempt" answer is wrong; also "7-way", the argmax over the dataset's own classes only),
per-class recall, the confusion matrix, accuracy against the observers' majority rating, and the
mean milliseconds per stage.

Performer split (for tuning without looking at the test half): ``tune`` = odd performer numbers,
``test`` = even ones, ``all`` = everyone.

Exit codes: 0 done; 1 some photographs could not be read; 2 usage error or no labels file;
3 the detector or the model could not be opened.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.commands.detect import add_pipeline_arguments, analyzer_from_args, sections_from_args
from edge.evaluation.data import add_data_argument, missing
from edge.evaluation.taiwanese import LABEL_MAP, Sample, default_dataset, load_samples
from edge.exitcodes import EXIT_FAILED, EXIT_MODEL, EXIT_OK, EXIT_USAGE
from edge.face_analyzer import FaceAnalyzer
from edge.sources import SourceError, read_image

@dataclass
class FacesReport:
    """What eval-faces measured (also written as JSON with --json)."""

    dataset: str
    split: str
    detector: str
    model: str
    n: int
    unreadable: int
    detected: int
    accuracy: float                 # posed label, all model classes, undetected = wrong
    accuracy_7way: float            # posed label, argmax over the dataset's classes only
    accuracy_detected: float        # posed label, over photographs with a face
    accuracy_rated: float           # observers' majority rating, where it maps to a class
    n_rated: int
    recall: dict[str, float]
    counts: dict[str, int]
    confusion: list[list[int]]      # rows: posed label (dataset classes), columns: model classes + "none"
    classes: list[str]
    stage_ms: dict[str, float]
    seconds: float
    prior_correction: float = 0.0   # model.prior_correction in effect
    by_intensity: dict[str, list[int]] = field(default_factory=dict)  # band -> [correct, n], emotional poses only
    undetected: list[str] = field(default_factory=list)

    @property
    def detection_rate(self) -> float:
        return self.detected / self.n if self.n else 0.0

    def table(self) -> str:
        """The human-readable report."""
        rows = list(self.recall)
        lines = [
            f"eval-faces: {self.dataset} (split {self.split}), {self.n} photographs",
            f"detector {self.detector}; model {self.model}; prior correction {self.prior_correction:g}",
            f"face found:                 {self.detected}/{self.n} = {self.detection_rate:.2%}"
            + (f"   ({self.unreadable} unreadable)" if self.unreadable else ""),
            f"accuracy vs posed label:    {self.accuracy:.2%}   (argmax over all {len(self.classes)} model classes; "
            "no face = wrong)",
            f"  7-way (dataset classes):  {self.accuracy_7way:.2%}",
            f"  on photos with a face:    {self.accuracy_detected:.2%}",
            f"accuracy vs observers' rating: {self.accuracy_rated:.2%} of {self.n_rated}",
            "",
            f"{'posed label':<12} {'n':>5} {'recall':>7}",
        ]
        lines += [f"{c:<12} {self.counts[c]:>5} {self.recall[c]:>7.1%}" for c in rows]
        cols = self.classes + ["none"]
        lines += ["", "confusion (rows posed, columns predicted):",
                  " " * 12 + "".join(f"{c[:6]:>7}" for c in cols)]
        lines += [f"{r:<12}" + "".join(f"{v:>7}" for v in row) for r, row in zip(rows, self.confusion)]
        if self.by_intensity:
            lines += ["", "emotional poses with a face, by observers' rated intensity:"]
            lines += [f"  {band:<12} {ok / n if n else 0:>7.1%}  of {n}" for band, (ok, n) in self.by_intensity.items()]
        lines += ["", "mean ms per photograph: " + ", ".join(f"{k} {v:.2f}" for k, v in self.stage_ms.items())
                  + f"; {self.seconds:.1f} s in all"]
        return "\n".join(lines)


def evaluate(analyzer: FaceAnalyzer, samples: list[Sample], dataset: str = "", split: str = "all",
             progress: bool = False) -> FacesReport:
    """Run the pipeline on every sample and tally the results."""
    classes = list(analyzer.model.classes)
    rows = list(LABEL_MAP.values())                       # the dataset's classes, as model class names
    col = {c: i for i, c in enumerate(classes)}
    in_data = np.array([c in rows for c in classes])        # the 7 classes the dataset has
    confusion = np.zeros((len(rows), len(classes) + 1), int)
    correct = correct7 = detected = unreadable = rated_ok = n_rated = 0
    undetected = []
    by_intensity = {band: [0, 0] for band, _, _ in INTENSITY_BANDS}
    analyzer.clock.reset()
    start = time.perf_counter()
    for i, s in enumerate(samples):
        n_rated += s.rated is not None        # a photograph without a face counts as wrong here too
        try:
            image = read_image(s.path)
        except SourceError as exc:
            print(f"fer-edge eval-faces: {exc}", file=sys.stderr)
            unreadable += 1
            confusion[rows.index(s.label), -1] += 1
            continue
        results = analyzer.analyze(image)
        if not results:
            undetected.append(str(s.path))
            confusion[rows.index(s.label), -1] += 1
            continue
        detected += 1
        scores = results[0][1].scores                          # the largest face
        pred = classes[int(np.argmax(scores))]
        pred7 = classes[int(np.argmax(np.where(in_data, scores, -1.0)))]
        confusion[rows.index(s.label), col[pred]] += 1
        correct += pred == s.label
        _tally_intensity(by_intensity, s, pred == s.label)
        correct7 += pred7 == s.label
        rated_ok += pred == s.rated
        if progress and (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(samples)}", file=sys.stderr)
    n = len(samples)
    counts = {c: int(confusion[k].sum()) for k, c in enumerate(rows)}
    recall = {c: (confusion[k, col[c]] / counts[c] if counts[c] else 0.0) for k, c in enumerate(rows)}
    per_photo = {k: v * analyzer.clock.calls[k] / max(1, n - unreadable) for k, v in analyzer.clock.mean_ms().items()}
    return FacesReport(
        dataset=dataset, split=split, detector=analyzer.detector_id, model=analyzer.model_id or "none", n=n,
        unreadable=unreadable, detected=detected, accuracy=correct / n if n else 0.0,
        accuracy_7way=correct7 / n if n else 0.0, accuracy_detected=correct / detected if detected else 0.0,
        accuracy_rated=rated_ok / n_rated if n_rated else 0.0, n_rated=n_rated, recall=recall, counts=counts,
        confusion=confusion.tolist(), classes=classes, stage_ms=per_photo,
        seconds=time.perf_counter() - start, undetected=undetected,
        prior_correction=analyzer.sections.model.prior_correction,
        by_intensity={k: v for k, v in by_intensity.items() if v[1]})


#: Bands of the observers' rated intensity (the database's scale; strong poses rate 4 and more).
INTENSITY_BANDS = (("below 2", 0.0, 2.0), ("2 to 4", 2.0, 4.0), ("4 and more", 4.0, float("inf")))


def _tally_intensity(bands: dict[str, list[int]], s: Sample, ok: bool) -> None:
    """Count an emotional (not neutral) pose in its intensity band; the bands cover detected faces only."""
    if s.intensity is None or s.label == "neutral":
        return
    for band, lo, hi in INTENSITY_BANDS:
        if lo <= s.intensity < hi:
            bands[band][0] += int(ok)
            bands[band][1] += 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset folder, split, limit, JSON output, pipeline options."""
    parser.add_argument("dataset", nargs="?", type=Path, default=None,
                        help="folder with labels.csv and the photographs (default: DATA/faces/taiwanese_fed)")
    add_data_argument(parser)
    parser.add_argument("--split", choices=("all", "tune", "test"), default="all",
                        help="performers: all, tune (odd numbers) or test (even numbers)")
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N photographs (0: all)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--list-undetected", action="store_true", help="print the photographs without a face")
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the report; exit code as in the module docstring."""
    sections, code = sections_from_args(args, "fer-edge eval-faces")   # option errors first, before any file is read
    if sections is None:
        return code
    dataset = args.dataset or default_dataset(args.data)
    if not (dataset / "labels.csv").is_file():
        print("fer-edge eval-faces: " + missing(dataset / "labels.csv", "labels.csv", "give the shared data folder "
                                                "with --data DIR, or the dataset folder"), file=sys.stderr)
        return EXIT_USAGE
    samples = load_samples(dataset, args.split)
    if args.limit:
        samples = samples[: args.limit]
    if not samples:
        print(f"fer-edge eval-faces: no labelled photographs in {dataset} for split {args.split}", file=sys.stderr)
        return EXIT_USAGE
    analyzer, code = analyzer_from_args(args, "fer-edge eval-faces", sections=sections)
    if analyzer is None:
        return code
    report = evaluate(analyzer, samples, str(dataset), args.split, progress=True)
    print(report.table())
    if args.list_undetected and report.undetected:
        print("\nno face found in:\n" + "\n".join(report.undetected))
    if args.json:
        args.json.write_text(json.dumps({**asdict(report), "detection_rate": report.detection_rate}, indent=2) + "\n")
    return EXIT_FAILED if report.unreadable else EXIT_OK


__all__ = ["LABEL_MAP", "FacesReport", "Sample", "default_dataset", "evaluate", "load_samples", "EXIT_MODEL"]
