"""Several cameras: one process serving N cameras against N separate one-camera processes, one invocation.

    nice -n 10 python bench/cameras.py                      # 1, 2 and 4 cameras, 200 frames each
    python bench/cameras.py --frames 150 --write bench/results.md

Two camera sets, the first N cameras of each:

- ``files``: the shared single-face clip, the shared crowd clip, and each once more. Every camera
  processes exactly its first ``--frames`` frames (read as fast as they are taken, nothing dropped),
  so both modes do exactly the same work.
- ``live``: the single-face clip, the RTSP test server's stream of it (tests/helpers/rtsp_server.py,
  GStreamer; live, 25 fps), the crowd clip, a second RTSP stream. Each camera processes ``--frames``
  frames; a stream keeps only its newest frame while the pipeline is busy, so a slower mode drops
  (and has decoded) more of a stream's frames: the ``dropped`` column.

- **one process**: `cameras:` with N entries (edge/cameras/: a reader thread per camera, one shared
  detector and emotion model, the faces of a round classified in one call), the service's frame path
  as edge/service/parts.py builds it;
- **separate**: N processes at once, each with `source:` set to one camera (what one had to do before).

Each run is its own process (or N of them) measuring itself with getrusage: CPU seconds (user + system,
all threads: decoding, detection, the model, tracking) over the whole process (start-up and model
loading included) and over the frames alone, peak RSS, frames processed per camera, faces per frame
(confirmed tracks in view) and the model's batch sizes (faces per call). The table gives CPU
milliseconds per frame per camera = CPU seconds / frames processed summed over cameras, total peak
RSS = the processes' peaks summed. The RTSP server's own CPU (the camera) is not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "video"
RTSP_SERVER = REPO / "tests" / "helpers" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"          # has Debian's PyGObject + GStreamer for the RTSP server
sys.path.insert(0, str(REPO))


def cpu_s() -> float:
    """This process's CPU seconds so far (user + system, all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(config: Path, limit: int) -> dict:
    """Build the service's frame path for CONFIG, process LIMIT frames of every camera, return the measurements."""
    from edge.cameras import CameraSet
    from edge.clock import dated
    from edge.config import load_file
    from edge.service.parts import build_parts, close_parts

    cfg = load_file(config).config
    parts = build_parts(cfg)
    cpu_loaded = cpu_s()
    source, processor = parts.source, parts.processor
    frames: dict[str, int] = {}
    if isinstance(source, CameraSet):
        wanted = len(source.feeds)
        for batch in source:
            batch.frames = [(f, live) for f, live in batch.frames if frames.get(f.camera, 0) < limit]
            if not batch.frames:
                continue
            processor.process(batch)
            for frame, _ in batch.frames:
                frames[frame.camera] = frames.get(frame.camera, 0) + 1
                if frames[frame.camera] == limit:            # this camera is done: stop reading it
                    next(f for f in source.feeds if f.name == frame.camera).stop()
            if sum(n >= limit for n in frames.values()) == wanted:
                break
    else:
        for frame in dated(source, source.live):
            processor.process(frame, time.time() if source.live else None)
            frames[frame.camera] = frames.get(frame.camera, 0) + 1
            if frames[frame.camera] >= limit:
                break
    cpu_end = cpu_s()
    single_calls = getattr(processor, "stats", None)     # a FrameProcessor: its model calls are its classify stage's
    calls = single_calls.stages.calls.get("classify", 0) if single_calls is not None else 0
    stats = processor.take_stats()
    sizes: dict[str, int] = {}
    if "classify_batch" in stats:
        calls, sizes = stats["classify_batch"]["calls"], stats["classify_batch"]["sizes"]
    close_parts(parts)
    processed = stats["frames"]
    return {"cameras": frames, "processed": processed, "dropped": stats["dropped"],
            "faces_per_frame": stats["faces_per_frame"], "classified": stats["classified"],
            "classify_calls": calls, "batch_sizes": sizes, "cpu_total_s": cpu_end, "cpu_frames_s": cpu_end - cpu_loaded,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_rtsp(video: Path) -> tuple[subprocess.Popen, str]:
    """The RTSP test server streaming VIDEO; (process, url)."""
    port = free_port()
    proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(video), str(port), "/cam"],
                            stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("cameras.py: the RTSP test server did not start (apt-get install python3-gi "
                         "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)")
    return proc, f"rtsp://127.0.0.1:{port}/cam"


def camera_entries(kind: str, rtsp: list[str]) -> list[dict]:
    """The four cameras of set KIND (files, live), in the order runs take them."""
    single, crowd = VIDEOS / "single_face.mp4", VIDEOS / "crowd_street_test.mp4"
    if kind == "files":
        return [{"name": "single", "uri": str(single)}, {"name": "crowd", "uri": str(crowd)},
                {"name": "single2", "uri": str(single)}, {"name": "crowd2", "uri": str(crowd)}]
    return [{"name": "single", "uri": str(single)},
            {"name": "rtsp1", "uri": rtsp[0], "kind": "stream", "stall_timeout_s": 5.0, "reopen_delay_s": 0.2},
            {"name": "crowd", "uri": str(crowd)},
            {"name": "rtsp2", "uri": rtsp[1], "kind": "stream", "stall_timeout_s": 5.0, "reopen_delay_s": 0.2}]


def write_config(folder: Path, name: str, body: dict) -> Path:
    """A config file: BODY plus one thread per interpreter and no broker."""
    path = folder / f"{name}.yaml"
    doc = {"mqtt": {"host": ""}, "stats": {"interval_s": 0}, **body}
    path.write_text(json.dumps(doc))           # JSON is YAML
    return path


def run_workers(configs: list[Path], limit: int) -> list[dict]:
    """One worker process per config, all at once; their measurements."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(c), "--frames", str(limit)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in configs]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"cameras.py: a worker failed ({proc.returncode}):\n{stderr[-2000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def summarise(kind: str, n: int, mode: str, runs: list[dict]) -> dict:
    """One table row from the runs of one configuration."""
    frames = sum(r["processed"] for r in runs)
    calls = sum(r["classify_calls"] for r in runs)
    sizes: dict[str, int] = {}
    for r in runs:
        for size, count in r["batch_sizes"].items():
            sizes[size] = sizes.get(size, 0) + count
    return {"set": kind, "cameras": n, "mode": mode, "processes": len(runs), "frames": frames,
            "per_camera": {k: v for r in runs for k, v in r["cameras"].items()},
            "dropped": sum(r["dropped"] for r in runs),
            "cpu_total_s": sum(r["cpu_total_s"] for r in runs), "cpu_frames_s": sum(r["cpu_frames_s"] for r in runs),
            "ms_per_frame": 1000.0 * sum(r["cpu_total_s"] for r in runs) / max(frames, 1),
            "ms_per_frame_steady": 1000.0 * sum(r["cpu_frames_s"] for r in runs) / max(frames, 1),
            "rss_mb": sum(r["peak_rss_mb"] for r in runs),
            "faces_per_frame": sum(r["faces_per_frame"] * r["processed"] for r in runs) / max(frames, 1),
            "batch_mean": sum(r["classified"] for r in runs) / calls if calls else 0.0,
            "batch_max": max((int(s) for s in sizes), default=None), "batch_sizes": sizes}


def table(rows: list[dict], limit: int) -> str:
    """The markdown table and the one-process / separate ratios."""
    lines = ["| set | cameras | mode | processes | frames processed (per camera) | dropped | CPU ms / frame / camera "
             "(whole process) | CPU ms / frame (frames only) | total peak RSS MB | faces / frame | "
             "classify batch mean / max |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per = ", ".join(f"{k} {v}" for k, v in r["per_camera"].items())
        lines.append(f"| {r['set']} | {r['cameras']} | {r['mode']} | {r['processes']} | {r['frames']} ({per}) | {r['dropped']} | "
                     f"{r['ms_per_frame']:.2f} | {r['ms_per_frame_steady']:.2f} | {r['rss_mb']:.0f} | "
                     f"{r['faces_per_frame']:.2f} | {r['batch_mean']:.2f} / {r['batch_max'] or '-'} |")
    lines.append("")
    by = {(r["set"], r["cameras"], r["mode"]): r for r in rows}
    for kind, n in dict.fromkeys((r["set"], r["cameras"]) for r in rows):
        one, sep = by.get((kind, n, "one process")), by.get((kind, n, "separate"))
        if one and sep and n > 1:
            lines.append(f"- {kind}, {n} cameras: one process / {n} processes: CPU per frame {one['ms_per_frame']:.2f} / "
                         f"{sep['ms_per_frame']:.2f} ms = {one['ms_per_frame'] / sep['ms_per_frame']:.2f}x "
                         f"(frames only {one['ms_per_frame_steady'] / sep['ms_per_frame_steady']:.2f}x), peak RSS "
                         f"{one['rss_mb']:.0f} / {sep['rss_mb']:.0f} MB = {one['rss_mb'] / sep['rss_mb']:.2f}x")
    lines.append(f"\n{limit} frames of every camera per run.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="frames each camera processes per run (<= 224)")
    parser.add_argument("--cameras", default="1,2,4", help="camera counts to run (at most 4)")
    parser.add_argument("--sets", default="files,live", help="camera sets to run: files, live")
    parser.add_argument("--write", type=Path, default=None, help="append the table to this markdown file")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.frames)))
        return 0
    if not (VIDEOS / "single_face.mp4").exists():
        print(f"cameras.py: {VIDEOS} has no single_face.mp4 (the shared data beside the checkout)", file=sys.stderr)
        return 2
    counts = [int(c) for c in args.cameras.split(",")]
    servers = [start_rtsp(VIDEOS / "single_face.mp4") for _ in range(2)]
    rows = []
    load = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="fer-bench-cameras-") as tmp:
            folder = Path(tmp)
            for kind in args.sets.split(","):
                cams = camera_entries(kind, [url for _, url in servers])
                for n in counts:
                    one = write_config(folder, f"{kind}-one-{n}", {"cameras": cams[:n]})
                    separate = [write_config(folder, f"{kind}-sep-{n}-{c['name']}", {"source": c}) for c in cams[:n]]
                    rows.append(summarise(kind, n, "one process", run_workers([one], args.frames)))
                    rows.append(summarise(kind, n, "separate", run_workers(separate, args.frames)))
                    print(f"{kind}, {n} camera(s): done", file=sys.stderr)
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=10)
    head = (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python bench/cameras.py "
            f"--frames {args.frames}` on {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; load average {load:.1f} at the start.\n")
    text = head + "\n" + table(rows, args.frames)
    print(text)
    print(json.dumps(rows), file=sys.stderr)
    if args.write:
        with args.write.open("a") as fh:
            fh.write("\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
