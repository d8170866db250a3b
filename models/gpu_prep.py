"""Prepare, collect and unpack the GPU run of a recipe's training stages (models/gpu_run.sh).

    python -m models.gpu_prep [--recipe R] [--limit N]        # here: .gpu/pack and .whl, size check
    python -m models.gpu_prep --collect RUN --out OUT          # there: at most 8 files into OUT
    python -m models.gpu_prep --unpack DIR --run RUN           # here: the results into a run folder
    python -m models.gpu_prep --aside | --restore              # here: tracked files not needed there, out and back

The device tool sends the working tree (tracked files and untracked ones git does not ignore) plus
the paths it is told to carry, 64 MiB in all, and brings back at most 8 files of at most 16 MiB.
The GPU machine has PyTorch but not Keras or the shared data: the training pack and Keras' wheels
travel in the git-ignored folders ``.gpu/`` and ``.whl/``. The full pack (~51 MiB) and the wheels
(~3 MiB) leave room for ~10 MiB of tracked files, less than the tree holds: ``--aside`` moves the
tracked files the run does not need (``NOT_NEEDED_THERE``: the float reference models, which only the
CPU steps read) into the git-ignored ``.gpu-aside/``, which is not carried; ``--restore`` puts them back.
"""
from __future__ import annotations

import argparse
import functools
import json
import operator
import shutil
import subprocess
import sys
from pathlib import Path

LIMIT_BYTES = 64 * 2**20
ROOT = Path(__file__).resolve().parents[1]
ASIDE = ".gpu-aside"
#: Tracked files the device run does not read (its teachers' soft labels are in the pack; no stage of
#: the GPU recipe warm-starts from a file): set aside while the tree travels.
NOT_NEEDED_THERE = ("models/reference/**/fer_emotion_float.tflite",)


def tracked(root: Path = ROOT, *globs: str) -> list[str]:
    """Paths of the tracked files, relative to ``root``; with ``globs``, only those matching one (git's ``**``)."""
    spec = [f":(glob){g}" for g in globs]
    names = subprocess.run(["git", "ls-files", "-z", "--", *spec], cwd=root, capture_output=True,
                           check=True).stdout.split(b"\0")
    return [n.decode() for n in names if n]


def tracked_bytes(root: Path = ROOT) -> tuple[int, list[tuple[int, str]]]:
    """Bytes of the tracked files present in the working tree, and the largest ones."""
    sizes = [((root / n).stat().st_size, n) for n in tracked(root) if (root / n).is_file()]
    return sum(s for s, _ in sizes), sorted(sizes, reverse=True)[:8]


def not_needed(root: Path = ROOT) -> list[str]:
    """Tracked files present in the tree that match ``NOT_NEEDED_THERE``."""
    return [n for n in tracked(root, *NOT_NEEDED_THERE) if (root / n).is_file()]


def set_aside(root: Path = ROOT) -> int:
    """Move the files the device run does not need into ``ASIDE`` (not carried); returns the bytes moved."""
    moved = 0
    for name in not_needed(root):
        dest = root / ASIDE / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        moved += (root / name).stat().st_size
        shutil.move(root / name, dest)
    return moved


def restore(root: Path = ROOT) -> list[str]:
    """Put back what ``set_aside`` moved (never over a file that is there again); the names put back."""
    aside, back = root / ASIDE, []
    if not aside.exists():
        return back
    for src in sorted(p for p in aside.rglob("*") if p.is_file()):
        name = src.relative_to(aside).as_posix()
        if not (root / name).exists():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, root / name)
            back.append(name)
    return back


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def prepare(args: argparse.Namespace) -> int:
    """Build the pack and fetch the wheels; say whether the tree fits the 64 MiB that travel."""
    import keras

    from models import pack, teachers

    dest = ROOT / ".gpu" / "pack"
    if not (dest / "pack.json").exists() or args.rebuild:
        pack.write(dest, args.data, args.teachers, teachers.CACHE_DIR, limit=args.limit)
    whl = ROOT / ".whl"
    if not list(whl.glob("keras-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp",
                        *functools.reduce(operator.iadd, (["--platform", p] for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
                                                          "manylinux_2_17_x86_64", "manylinux2014_x86_64")), []),
                        "-d", str(whl), f"keras=={keras.__version__}", "namex", "optree"], check=True)
    in_tree, largest = tracked_bytes()
    total = in_tree + folder_bytes(dest) + folder_bytes(whl)
    print(f"travels: tracked files {in_tree / 2**20:.1f} MiB + pack {folder_bytes(dest) / 2**20:.1f} MiB + "
          f"wheels {folder_bytes(whl) / 2**20:.1f} MiB = {total / 2**20:.1f} MiB (limit 64 MiB)")
    if total > LIMIT_BYTES:
        spare = sum((ROOT / n).stat().st_size for n in not_needed())
        print(f"over the limit by {(total - LIMIT_BYTES) / 2**20:.1f} MiB; the largest tracked files:")
        for size, name in largest:
            print(f"  {size / 2**20:5.1f} MiB  {name}")
        if spare:
            print(f"`python -m models.gpu_prep --aside` sets {spare / 2**20:.1f} MiB of them aside for the run "
                  f"({'then it fits' if total - spare <= LIMIT_BYTES else 'still too much'}); --restore after")
        return 1
    return 0


def collect(run: Path, out: Path) -> int:
    """On the GPU machine: every stage's log in one file, the last stage's winner weights, stdout logs."""
    out.mkdir(parents=True, exist_ok=True)
    logs = {p.parent.name: json.loads(p.read_text()) for p in sorted(run.glob("*/log.json"))}
    winners = {p.name.split(".")[0]: json.loads(p.read_text()) for p in sorted(run.glob("*.winner.json"))}
    (out / "logs.json").write_text(json.dumps({"logs": logs, "winners": winners}, indent=1))
    stdout = "".join(f"==== {p.name}\n" + p.read_text(errors="replace").replace("\r", "\n")
                     for p in sorted(run.glob("*.stdout.log")))
    (out / "variants.log").write_text(stdout)
    for stage, w in winners.items():
        src = run / w["variant"] / "best.weights.h5"
        if src.exists() and src.stat().st_size < 16 * 2**20:
            shutil.copyfile(src, out / f"{stage}.best.weights.h5")
    print("collected:", ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


def unpack(results: Path, run: Path) -> int:
    """Here: lay the GPU results out as a finished run, so ``--resume`` goes on with prior and export."""
    data = json.loads((results / "logs.json").read_text())
    for folder, log in data["logs"].items():
        (run / folder).mkdir(parents=True, exist_ok=True)
        (run / folder / "log.json").write_text(json.dumps(log, indent=2))
    for stage, w in data["winners"].items():
        (run / f"{stage}.winner.json").write_text(json.dumps(w, indent=2))
        weights = results / f"{stage}.best.weights.h5"
        if weights.exists():
            shutil.copyfile(weights, run / w["variant"] / "best.weights.h5")
    print(f"unpacked into {run}: stages {', '.join(sorted(data['winners']))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from models import ferplus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir())
    p.add_argument("--teachers", type=Path, default=None)
    p.add_argument("--limit", type=int, default=0, help="a tiny pack (first N FER+ faces), for a dry run")
    p.add_argument("--rebuild", action="store_true", help="rebuild .gpu/pack even if it exists")
    p.add_argument("--collect", type=Path, default=None, metavar="RUN")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--unpack", type=Path, default=None, metavar="DIR")
    p.add_argument("--run", type=Path, default=None)
    p.add_argument("--aside", action="store_true", help=f"move tracked files the run does not need into {ASIDE}/")
    p.add_argument("--restore", action="store_true", help="put back what --aside moved")
    args = p.parse_args(argv)
    if args.aside:
        print(f"set aside {set_aside() / 2**20:.1f} MiB into {ASIDE}/ (git shows them deleted until --restore)")
        return 0
    if args.restore:
        back = restore()
        print(f"restored {len(back)} files" + (": " + ", ".join(back) if back else ""))
        return 0
    if args.collect:
        return collect(args.collect, args.out or Path("/tmp/gpu_out"))
    if args.unpack:
        if not args.run:
            p.error("--unpack needs --run RUN")
        return unpack(args.unpack, args.run)
    return prepare(args)


if __name__ == "__main__":
    sys.exit(main())
