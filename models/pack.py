"""A training pack: every face and target a training stage reads, in one folder small enough to travel.

A recipe's first step writes it from ``../shared/data`` and the teachers' soft-label cache; the
training stages read only the pack, so the same code trains here and on a GPU machine that has
neither the shared data nor the teachers (the pack travels with the working tree, under 64 MiB).

Layout: ``faces_<set>.webp`` (each set's 48x48 faces as one lossless WebP mosaic, 100 faces a row:
the FER+ training faces are 66 MB raw, about 46 MB so) and ``arrays.npz`` (vote distributions,
labels, CK+ subjects, teachers' soft labels), plus ``pack.json`` (counts and sha256 of each file).
The FER+ test split and the Taiwanese photographs are never put in a pack.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models import ckplus, ferplus, teachers

ROW = 100          # faces per mosaic row
TEACHERS = ("A", "B", "ref", "v2")     # every teacher a pack can hold


def _to_mosaic(faces: np.ndarray) -> np.ndarray:
    rows = -(-len(faces) // ROW)
    padded = np.zeros((rows * ROW, 48, 48), np.uint8)
    padded[: len(faces)] = faces
    return padded.reshape(rows, ROW, 48, 48).transpose(0, 2, 1, 3).reshape(rows * 48, ROW * 48)


def _from_mosaic(img: np.ndarray, n: int) -> np.ndarray:
    rows = img.shape[0] // 48
    return img.reshape(rows, 48, ROW, 48).transpose(0, 2, 1, 3).reshape(rows * ROW, 48, 48)[:n]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(out: Path, data_dir: Path, teachers_dir: Path | None, cache_dir: Path = teachers.CACHE_DIR,
          limit: int = 0, use: tuple[str, ...] = ("A", "B", "ref")) -> Path:
    """Build a pack in ``out`` from the shared data and the teachers ``use`` (soft labels cached once).

    ``limit``: the first N FER+ training and validation faces only, every 10th CK+ face (tiny runs).
    """
    tr = ferplus.load_split("train", data_dir)
    va = ferplus.load_split("valid", data_dir)
    ck = ckplus.load(data_dir)
    if limit:
        tr = ferplus.Split(tr.images[:limit], tr.votes[:limit], tr.names[:limit])
        va = ferplus.Split(va.images[:limit], va.votes[:limit], va.names[:limit])
        ck = ck.subset(np.arange(len(ck)) % 10 == 0)
    key = "full" if not limit else f"limit{limit}"
    soft = teachers.soft_labels({"train": tr.images, "ckplus": ck.images, "valid": va.images}, tuple(use),
                                teachers_dir, key=key, cache_dir=cache_dir)
    dist, keep = ferplus.vote_distributions(tr.votes)
    x_val, y_val = ferplus.majority_subset(va)
    val_keep = ferplus.majority_labels(va.votes) >= 0
    sets = {"train": tr.images[keep], "ckplus": ck.images, "valid": x_val}
    arrays = {"train_votes": dist[keep], "valid_labels": y_val, "ckplus_labels": ck.labels,
              "ckplus_subjects": ck.subjects.astype("U16")}
    for t in use:
        arrays[f"train_{t}"] = soft[f"train_{t}"][keep].astype(np.float16)
        arrays[f"ckplus_{t}"] = soft[f"ckplus_{t}"].astype(np.float16)
        arrays[f"valid_{t}"] = soft[f"valid_{t}"][val_keep].astype(np.float16)
    return save(out, sets, arrays, limit=limit)


def save(out: Path, sets: dict[str, np.ndarray], arrays: dict[str, np.ndarray], limit: int = 0) -> Path:
    """Write faces (``train``, ``ckplus``, ``valid``: uint8 (N, 48, 48)) and arrays as a pack, with pack.json."""
    out.mkdir(parents=True, exist_ok=True)
    for name, faces in sets.items():
        ok, buf = cv2.imencode(".webp", _to_mosaic(faces), [cv2.IMWRITE_WEBP_QUALITY, 101])  # 101: lossless
        if not ok:
            raise RuntimeError(f"could not encode the {name} faces as lossless WebP")
        (out / f"faces_{name}.webp").write_bytes(buf.tobytes())
    np.savez_compressed(out / "arrays.npz", **arrays)
    meta = {"counts": {k: len(v) for k, v in sets.items()}, "limit": limit,
            "files": {p.name: _sha256(p) for p in sorted(out.glob("*")) if p.name != "pack.json"}}
    (out / "pack.json").write_text(json.dumps(meta, indent=2))
    return out


@dataclass
class Pack:
    """What a training stage reads: faces (uint8) and their targets."""

    train: np.ndarray            # (N, 48, 48) FER+ training faces worth training on
    train_votes: np.ndarray      # (N, 8) vote distributions
    ckplus: np.ndarray           # (981, 48, 48) CK+ faces, reframed to FER+ framing
    ckplus_labels: np.ndarray
    ckplus_subjects: np.ndarray
    valid: np.ndarray            # FER+ validation faces the majority protocol keeps
    valid_labels: np.ndarray
    soft: dict[str, np.ndarray]  # "{set}_{teacher}" -> (N, 8) float32

    @property
    def prior(self) -> np.ndarray:
        """Mean FER+ training vote distribution: the class prior the model learns."""
        return self.train_votes.mean(axis=0)


def read(folder: Path) -> Pack:
    """Load a pack, checking each file against the sha256 in pack.json."""
    folder = Path(folder)
    meta_path = folder / "pack.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"no training pack at {folder} (pack.json missing): build it with the recipe's pack step")
    meta = json.loads(meta_path.read_text())
    for name, digest in meta["files"].items():
        if _sha256(folder / name) != digest:
            raise ValueError(f"training pack file {folder / name} is damaged (sha256 differs from pack.json)")
    faces = {}
    for name, n in meta["counts"].items():
        img = cv2.imdecode(np.fromfile(folder / f"faces_{name}.webp", np.uint8), cv2.IMREAD_GRAYSCALE)
        faces[name] = _from_mosaic(img, n)
    with np.load(folder / "arrays.npz") as d:
        a = {k: d[k] for k in d.files}
    soft = {k: a[k].astype(np.float32) for k in a if k.rsplit("_", 1)[-1] in TEACHERS}
    return Pack(train=faces["train"], train_votes=a["train_votes"], ckplus=faces["ckplus"],
                ckplus_labels=a["ckplus_labels"], ckplus_subjects=a["ckplus_subjects"], valid=faces["valid"],
                valid_labels=a["valid_labels"], soft=soft)
