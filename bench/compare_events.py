"""Compare the events of `fer-edge run` on the shared videos between two git revisions.

    python bench/compare_events.py BEFORE [AFTER]      # AFTER: the working tree (default)

Besides the videos, ``fer-edge run --demo`` (the built-in demo clip) runs under each profile too.

Each revision is checked out with ``git worktree add`` into a temporary folder and run with its
own PYTHONPATH (``python -m edge.cli run``), so the two never share code. Both runs use the same
explicit config (``bench/compare_events.yaml``: the shipped config.yaml of the restructure's base,
detector and thresholds spelled out) and the same emotion model (BEFORE's shipped .tflite and card,
taken with ``git show``), so a later change of a default or of the shipped model does not show up
as a difference. Events are normalised: ``id`` becomes its index, ``instance`` (per process), ``ts``, ``epoch`` and
``summary.start`` are dropped; everything else (types, order, seq, track ids, labels, scores, boxes, dwell times,
histograms) must match byte for byte. Exit code 0 identical, 1 different, 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT.parent / "shared" / "data" / "video"
CONFIG = Path(__file__).resolve().parent / "compare_events.yaml"
# Where the shipped model lived in the base revision, then after the restructure.
MODEL_PATHS = ("models/fer_emotion_int8.tflite", "edge/model/fer_emotion_int8.tflite")
# Per-event and per-process ids (``instance``: one per running process, since issue 12.6) and wall-clock times.
TIME_KEYS = ("id", "instance", "ts", "epoch")
# Config profiles each video runs under: the shipped one, and BlazeFace over 320-px tiles (the crowd
# video's small faces give ~100 events there, against one summary with the shipped profile).
PROFILES = {"shipped": (), "tiled": (("tile_px: 0 ", "tile_px: 320 "),)}


def git(*args: str, cwd: Path = ROOT, text: bool = True) -> str | bytes:
    """Run git in the repository; its stdout."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=text).stdout


def model_of(rev: str, out: Path) -> tuple[Path, Path]:
    """Write REV's shipped model and card into OUT; their paths."""
    for path in MODEL_PATHS:
        try:
            blob = git("show", f"{rev}:{path}", text=False)
        except subprocess.CalledProcessError:
            continue
        card = git("show", f"{rev}:{path[:-len('.tflite')]}.json", text=False)
        model, card_path = out / "model.tflite", out / "model.json"
        model.write_bytes(blob)
        card_path.write_bytes(card)
        return model, card_path
    raise SystemExit(f"compare_events: no shipped model in {rev} (looked at {', '.join(MODEL_PATHS)})")


def config_for(profile: str, model: Path, card: Path, out: Path) -> Path:
    """The comparison config of PROFILE with the model pinned to MODEL."""
    text = CONFIG.read_text().replace("@MODEL@", str(model)).replace("@CARD@", str(card))
    for old, new in PROFILES[profile]:
        if old not in text:
            raise SystemExit(f"compare_events: {CONFIG.name} has no {old.strip()!r} for profile {profile}")
        text = text.replace(old, new)
    path = out / f"config-{profile}.yaml"
    path.write_text(text)
    return path


DEMO = Path("run --demo")       # stands for `fer-edge run --demo` among the videos


def run_events(tree: Path, config: Path, video: Path, state: Path) -> list[dict]:
    """`fer-edge run` from TREE on VIDEO (DEMO: with --demo); the events it printed."""
    env = dict(os.environ, PYTHONPATH=str(tree), FER_EDGE_SOURCE="0" if video == DEMO else str(video),
               STATE_DIRECTORY=str(state), PYTHONDONTWRITEBYTECODE="1")
    origin = subprocess.run([sys.executable, "-c", "import edge; print(edge.__file__)"], env=env, cwd=tree,
                            check=True, capture_output=True, text=True).stdout.strip()
    if not origin.startswith(str(tree)):
        raise SystemExit(f"compare_events: edge was imported from {origin}, not from {tree}")
    demo = ["--demo"] if video == DEMO else []
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config), *demo], env=env, cwd=tree,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"compare_events: run in {tree} on {video.name} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def normalise(events: list[dict]) -> list[str]:
    """One canonical JSON line per event, without ids and wall-clock times."""
    lines = []
    for i, event in enumerate(events):
        event = dict(event)
        for key in TIME_KEYS:
            event.pop(key, None)
        if isinstance(event.get("summary"), dict):
            event["summary"] = {k: v for k, v in event["summary"].items() if k != "start"}
        event["index"] = i
        lines.append(json.dumps(event, sort_keys=True, separators=(",", ":")))
    return lines


def checkout(rev: str, into: Path) -> Path:
    """REV checked out (detached) under INTO; its path."""
    tree = into / rev.replace("/", "_")
    git("worktree", "add", "--detach", "--force", str(tree), rev)
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="git revision to compare against (e.g. the pre-restructure commit)")
    parser.add_argument("after", nargs="?", default=None, help="git revision (default: the working tree)")
    parser.add_argument("--video", action="append", default=None,
                        help="video file (default: both shared videos and the demo)")
    args = parser.parse_args(argv)
    videos = [Path(v) for v in args.video] if args.video else [DEMO, *sorted(VIDEOS.glob("*.mp4"))]
    if not videos:
        print(f"compare_events: no videos in {VIDEOS}", file=sys.stderr)
        return 2
    worktrees: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="fer-compare-") as tmp:
        tmp_path = Path(tmp)
        try:
            before = checkout(args.before, tmp_path)
            worktrees.append(before)
            if args.after:
                after = checkout(args.after, tmp_path)
                worktrees.append(after)
            else:
                after = ROOT
            model, card = model_of(args.before, tmp_path)
            same = True
            print(f"{'video':24} {'profile':8} {'events before':>13} {'events after':>12}  result")
            for profile in PROFILES:
                config = config_for(profile, model, card, tmp_path)
                for video in videos:
                    runs = []
                    for name, tree in (("before", before), ("after", after)):
                        state = tmp_path / f"state-{name}-{profile}-{video.stem.replace(' ', '_')}"
                        state.mkdir()
                        runs.append(normalise(run_events(tree, config, video, state)))
                    diff = [(i, a, b) for i, (a, b) in enumerate(zip(*runs)) if a != b]
                    ok = not diff and len(runs[0]) == len(runs[1])
                    same &= ok
                    print(f"{video.name:24} {profile:8} {len(runs[0]):>13} {len(runs[1]):>12}  "
                          f"{'identical' if ok else 'DIFFERENT'}")
                    for i, a, b in diff[:5]:
                        print(f"  event {i}:\n    before {a}\n    after  {b}")
        finally:
            for tree in worktrees:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    print("identical apart from ids and times" if same else "events differ")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
