"""Pipeline benchmark: the scheduled pipeline against the naive one, per video and detector, one thread.

    nice -n 10 python bench/pipeline.py                          # every ../shared/data/video/*.mp4
    python bench/pipeline.py --detectors blazeface --write bench/results.md

For each video and detector (haar, blazeface) two runs, each in its own process (so that peak
memory is that run's alone), in the same invocation:
- scheduled: ``FrameProcessor`` with the config (default: built-in defaults): detect every N frames,
  track in between, classify each face at a rate, events;
- naive baseline: detect + align + classify every frame, no tracking (``FaceAnalyzer.analyze``),
  on the first ``--baseline-frames`` frames.
It prints milliseconds per frame of each stage (decode, detect, align, classify, track+events),
frames per second (decode included), faces per frame (confirmed tracks in view for the scheduled
run, raw detections for the naive one), tracks, id switches, emotion_changed per 10 s, peak RSS,
and the speed-up ratio scheduled / naive. Everything runs on one thread (OpenCV and interpreters).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "video"
sys.path.insert(0, str(REPO))

# Small faces need more pixels: the crowd clip's faces are 25-60 px in a 1280x720 frame, which
# the default Haar search width (320) cannot see, so Haar searches that clip at full resolution.
OVERRIDES = {("crowd_street_test", "haar"): {"detect_width": 0}}


def child(video: Path, detector: str, mode: str, config: Path | None, max_frames: int) -> dict:
    """One run in this process; returns its measurements."""
    import cv2

    cv2.setNumThreads(1)
    from edge.config import AppConfig, load_config
    from edge.face_analyzer import FaceAnalyzer
    from edge.frame_processor import FrameProcessor
    from edge.config.source import SourceConfig
    from edge.sources import open_source
    from tests.helpers.id_switches import IdSwitchCounter

    base = load_config(config) if config else AppConfig()
    det = {"type": detector, **OVERRIDES.get((video.stem, detector), {})}
    if detector == "blazeface":
        det["fallback_to_haar"] = False          # measure BlazeFace or say it is missing, never Haar instead
    doc = base.model_dump(mode="json", exclude={"device"})
    doc["detector"] = {**(doc["detector"] if doc["detector"]["type"] == detector else {}), **det}
    doc["model"]["threads"] = 1
    if "threads" in doc["detector"]:
        doc["detector"]["threads"] = 1
    cfg = AppConfig.model_validate(doc)
    analyzer = FaceAnalyzer(cfg)
    source = open_source(SourceConfig(uri=str(video)))
    decode_ms = track_ms = 0.0
    frames = faces = 0
    events: list = []
    proc = FrameProcessor(cfg, analyzer) if mode == "scheduled" else None
    switches = IdSwitchCounter(cfg.tracking)
    ids: set[int] = set()
    it = iter(source)
    start = time.perf_counter()
    while not max_frames or frames < max_frames:
        t0 = time.perf_counter()
        frame = next(it, None)
        decode_ms += (time.perf_counter() - t0) * 1000
        if frame is None:
            break
        if proc is not None:
            result = proc.process(frame)
            track_ms += result.timings.get("track", 0.0) + result.timings.get("events", 0.0)
            switches.observe(result.changes, proc.tracker, frame.timestamp)
            faces += len(result.tracks)
            ids.update(tr.id for tr in result.tracks)
            events += result.events
        else:
            faces += len(analyzer.analyze(frame))
        frames += 1
    if proc is not None:
        events += proc.close()
    wall = time.perf_counter() - start
    source.close()
    clock = analyzer.clock.total_ms
    duration = frames / (source.fps or 25.0)
    changed = sum(e.type == "emotion_changed" for e in events)
    return {
        "video": video.name, "detector": analyzer.detector_id, "mode": mode, "frames": frames,
        "ms": {"decode": decode_ms / frames, "detect": clock["detect"] / frames, "align": clock["align"] / frames,
               "classify": clock["classify"] / frames, "track": track_ms / frames},
        "fps": frames / wall, "faces_per_frame": faces / frames,
        "tracks": len(ids) if proc else None, "id_switches": switches.count if proc else None,
        "changes_per_10s": changed * 10.0 / duration if proc else None,
        "detections": proc.stats.detections if proc else frames,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}; load average {load:.1f} at start")


def table(rows: list[dict]) -> list[str]:
    head = ("| video | detector | run | frames | decode | detect | align | classify | track+events | fps "
            "| faces/frame | tracks | id switches | emotion_changed /10 s | peak RSS MB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ms = r["ms"]
        opt = (lambda v, f: "-" if v is None else format(v, f))
        lines.append(f"| {r['video']} | {r['detector']} | {r['mode']} | {r['frames']} | {ms['decode']:.2f} | "
                     f"{ms['detect']:.2f} | {ms['align']:.2f} | {ms['classify']:.2f} | {ms['track']:.2f} | "
                     f"{r['fps']:.1f} | {r['faces_per_frame']:.3f} | {opt(r['tracks'], 'd')} | "
                     f"{opt(r['id_switches'], 'd')} | {opt(r['changes_per_10s'], '.2f')} | {r['peak_rss_mb']:.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", nargs="*", type=Path, help="video files (default: ../shared/data/video/*.mp4)")
    p.add_argument("--detectors", nargs="*", default=["haar", "blazeface"], choices=["haar", "blazeface"])
    p.add_argument("--config", type=Path, help="config file for the scheduled runs (default: built-in defaults)")
    p.add_argument("--baseline-frames", type=int, default=100, help="frames of the naive baseline run (0: all)")
    p.add_argument("--write", type=Path, help="also write the table as markdown to this file")
    p.add_argument("--child", nargs=4, metavar=("VIDEO", "DETECTOR", "MODE", "MAX_FRAMES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        video, detector, mode, limit = args.child
        print(json.dumps(child(Path(video), detector, mode, args.config, int(limit))))
        return 0
    videos = args.videos or sorted(VIDEOS.glob("*.mp4"))
    if not videos:
        print(f"no videos: {VIDEOS} is missing; give --videos", file=sys.stderr)
        return 2
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": "1"}
    rows, ratios = [], []
    print(f"# machine: {machine()}", flush=True)
    for video in videos:
        for detector in args.detectors:
            got = {}
            for mode, limit in (("scheduled", 0), ("naive", args.baseline_frames)):
                cmd = [sys.executable, __file__, "--child", str(video), detector, mode, str(limit)]
                if args.config:
                    cmd += ["--config", str(args.config)]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    reason = (out.stderr.strip().splitlines() or ["failed"])[-1]
                    print(f"{video.name} {detector} {mode}: skipped: {reason}", flush=True)
                    continue
                got[mode] = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(got[mode])
                print("\n".join(table([got[mode]])[2:]), flush=True)
            if len(got) == 2:
                ratio = got["scheduled"]["fps"] / got["naive"]["fps"]
                ratios.append(f"{video.name} {got['scheduled']['detector']}: scheduled {got['scheduled']['fps']:.1f} fps"
                              f" / naive {got['naive']['fps']:.1f} fps = {ratio:.1f}x")
    lines = [f"Machine: {machine()}", "", "Milliseconds per frame of each stage (mean over all frames of the run).",
             "", *table(rows), "", "Speed-up of the scheduled pipeline over the naive baseline (same invocation):",
             "", *[f"- {r}" for r in ratios]]
    print("\n" + "\n".join(lines))
    if args.write:
        args.write.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
