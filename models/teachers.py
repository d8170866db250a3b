"""Teacher models for distillation (training time only: never shipped, never committed).

    python -m models.teachers --teachers ../shared/teachers        # fill the soft-label cache

Three teachers can score the 48x48 grayscale training faces:

- ``A``: Intel emotions-recognition-retail-0003 (OpenVINO IR, Apache-2.0, AffectNet; 5 classes).
- ``B``: OpenCV Zoo MobileFaceNet FER int8 (ONNX through cv2.dnn, Apache-2.0, RAF-DB; 7 classes).
- ``ref``: this project's own 1.0.0 float model (models/reference/fer_emotion_float.tflite, 8 classes).

Each teacher's scores are mapped onto the 8 FER+ classes with a mask of the classes it can
express (A has no disgust, fear or contempt; B no contempt): the training loss compares the
student with a teacher only over that teacher's classes. Files come from ``--teachers DIR``
(matched by sha256, whatever their folder) or are fetched from the official URLs below and
checked against the same pinned sha256.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import ferplus

RUNS_DIR = Path(__file__).resolve().parent / "runs"
REF_MODEL = Path(__file__).resolve().parent / "reference" / "1.0.0" / "fer_emotion_float.tflite"
#: 2.0.0's float parent: the teacher "v2" (self-distillation: 3.0 learns to read degraded faces as 2.0 reads clean ones)
V2_MODEL = Path(__file__).resolve().parent / "reference" / "2.0.0" / "fer_emotion_float.tflite"
REF_MODELS = {"ref": REF_MODEL, "v2": V2_MODEL}


@dataclass(frozen=True)
class TeacherFile:
    name: str
    url: str
    sha256: str


#: Official sources, pinned by sha256 (see ../shared/teachers/README.md for provenance and licences).
_OMZ = ("https://storage.openvinotoolkit.org/repositories/open_model_zoo/2022.1/models_bin/3/"
        "emotions-recognition-retail-0003/FP16-INT8/emotions-recognition-retail-0003")
FILES: dict[str, list[TeacherFile]] = {
    "A": [TeacherFile("emotions-recognition-retail-0003.xml", _OMZ + ".xml",
                      "8ac2f4440d52a3983f8f4930a13673bff46e4c802f81ac5391df631151c83297"),
          TeacherFile("emotions-recognition-retail-0003.bin", _OMZ + ".bin",
                      "a682e642406131e36624cde0bd491a2d46f1e3c48bcd7be8d3e0ca23262e9c4e")],
    "B": [TeacherFile("facial_expression_recognition_mobilefacenet_2022july_int8.onnx",
                      "https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/"
                      "facial_expression_recognition/facial_expression_recognition_mobilefacenet_2022july_int8.onnx",
                      "f0d7093aff10e2638c734c5f18a6a7eabd2b9239b20bdb9b8090865a6f69a1ed")],
}

#: Teacher output column -> FER+ class (index into ferplus.CLASSES).
_IDX = {c: i for i, c in enumerate(ferplus.CLASSES)}
COLUMNS: dict[str, list[int]] = {
    "A": [_IDX[c] for c in ("neutral", "happiness", "sadness", "surprise", "anger")],
    "B": [_IDX[c] for c in ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")],
    "ref": list(range(len(ferplus.CLASSES))),
    "v2": list(range(len(ferplus.CLASSES))),
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve(teacher: str, teachers_dir: Path | None, download_dir: Path = RUNS_DIR / "teachers") -> list[Path]:
    """Local paths of a teacher's files: found under ``teachers_dir`` by sha256, else downloaded and checked."""
    found = []
    for tf in FILES[teacher]:
        candidates = list(Path(teachers_dir).rglob(tf.name)) if teachers_dir else []
        candidates.append(download_dir / tf.name)
        path = next((c for c in candidates if c.is_file() and sha256_of(c) == tf.sha256), None)
        if path is None:
            download_dir.mkdir(parents=True, exist_ok=True)
            dest = download_dir / tf.name
            print(f"fetching teacher {teacher}: {tf.url}", flush=True)
            urllib.request.urlretrieve(tf.url, dest)
            if sha256_of(dest) != tf.sha256:
                dest.unlink()
                raise RuntimeError(f"teacher {teacher}: {tf.name} from {tf.url} does not match its pinned sha256")
            path = dest
        found.append(path)
    return found


def _in_graph_prior(model: Path) -> np.ndarray | None:
    """prior ** tau of a fer-edge model whose output bias holds a prior correction (its card says), else None."""
    import json

    card = model.with_name("fer_emotion_int8.json")
    if not card.exists():
        return None
    training = json.loads(card.read_text()).get("training", {})
    tau = float(training.get("prior_correction_in_graph") or 0.0)
    if not tau:
        return None
    prior = np.array([training["class_prior"][c] for c in ferplus.CLASSES])
    return np.maximum(prior, 1e-4) ** tau


def to_fer8(teacher: str, scores: np.ndarray) -> np.ndarray:
    """Teacher scores (N, its classes) -> probabilities over the 8 FER+ classes (0 where it has no column).

    A fer-edge model with a prior correction in its graph (2.0.0) is given its calibrated scores
    back (times prior ** tau), so that it teaches the same kind of distribution as the votes.
    """
    s = scores.astype(np.float64)
    if teacher in REF_MODELS:
        undo = _in_graph_prior(REF_MODELS[teacher])
        if undo is not None:
            s = s * undo
    if teacher == "B":  # B answers raw scores: softmax them
        s = np.exp(s - s.max(axis=1, keepdims=True))
    s = s / np.maximum(s.sum(axis=1, keepdims=True), 1e-9)
    out = np.zeros((len(s), len(ferplus.CLASSES)), np.float32)
    out[:, COLUMNS[teacher]] = s
    return out


def mask(teacher: str) -> np.ndarray:
    """1 for the FER+ classes a teacher can express, 0 elsewhere."""
    m = np.zeros(len(ferplus.CLASSES), np.float32)
    m[COLUMNS[teacher]] = 1
    return m


class Runner:
    """Scores batches of 48x48 grayscale faces (uint8) with one teacher."""

    def __init__(self, teacher: str, teachers_dir: Path | None, threads: int = 0):
        """``threads``: 0 lets the framework choose (fastest for bulk scoring), 1 for latency figures."""
        self.teacher = teacher
        if teacher == "A":
            import openvino as ov

            xml, _ = resolve("A", teachers_dir)
            core = ov.Core()
            model = core.read_model(str(xml))
            model.reshape([-1, 3, 64, 64])  # any batch size
            config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
            self._net = core.compile_model(model, "CPU", config)
        elif teacher == "B":
            import cv2

            (onnx,) = resolve("B", teachers_dir)
            if threads:
                cv2.setNumThreads(threads)
            self._net = cv2.dnn.readNet(str(onnx))
        elif teacher in REF_MODELS:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError:  # training machines have TensorFlow anyway
                from tensorflow.lite import Interpreter  # type: ignore[no-redef]
            self._net = Interpreter(model_path=str(REF_MODELS[teacher]), num_threads=threads or 2)
            self._batch = 0
        else:
            raise ValueError(f"unknown teacher {teacher!r} (A, B, ref or v2)")

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 8) probabilities over the FER+ classes."""
        import cv2

        if self.teacher == "A":  # 64x64 BGR 0..255 (gray replicated), NCHW
            x = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_LINEAR) for f in faces]).astype(np.float32)
            x = np.repeat(x[:, None], 3, axis=1)
            raw = self._net(x)[self._net.output(0)].reshape(len(faces), -1)
        elif self.teacher == "B":  # 112x112 RGB, (x/255 - 0.5)/0.5; resized, not aligned (README: 66% that way)
            x = np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_CUBIC) for f in faces]).astype(np.float32)
            x = np.repeat(((x / 255.0 - 0.5) / 0.5)[:, None], 3, axis=1)
            raw = []
            for one in x:  # its int8 graph takes batch 1 only
                self._net.setInput(one[None])
                raw.append(self._net.forward().reshape(-1))
            raw = np.stack(raw)
        else:
            it = self._net
            if self._batch != len(faces):
                it.resize_tensor_input(it.get_input_details()[0]["index"], [len(faces), 48, 48, 1])
                it.allocate_tensors()
                self._batch = len(faces)
            it.set_tensor(it.get_input_details()[0]["index"], faces[..., None].astype(np.float32))
            it.invoke()
            raw = it.get_tensor(it.get_output_details()[0]["index"])
        return to_fer8(self.teacher, raw)


def score(teacher: str, faces: np.ndarray, teachers_dir: Path | None, batch: int = 128, label: str = "") -> np.ndarray:
    """Score all faces with a teacher, printing a progress bar."""
    run = Runner(teacher, teachers_dir)
    out = np.zeros((len(faces), len(ferplus.CLASSES)), np.float32)
    t0 = time.time()
    for s in range(0, len(faces), batch):
        out[s:s + batch] = run(faces[s:s + batch])
        done = min(s + batch, len(faces))
        bar = "#" * int(30 * done / len(faces))
        print(f"\rteacher {teacher} {label}: [{bar:<30}] {done}/{len(faces)} {time.time() - t0:.0f}s",
              end="", flush=True)
    print(flush=True)
    return out


CACHE_DIR = RUNS_DIR / "teacher_cache"


def soft_labels(sets: dict[str, np.ndarray], teachers: tuple[str, ...], teachers_dir: Path | None,
                key: str, cache_dir: Path = CACHE_DIR) -> dict[str, np.ndarray]:
    """``{set}_{teacher}`` -> (N, 8) teacher probabilities, computed once and cached under models/runs/.

    ``key`` names the cache (it should change with the image sets); a cached entry whose image count
    differs is recomputed.
    """
    path = Path(cache_dir) / f"{key}.npz"
    cached: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as d:
            cached = {k: d[k] for k in d.files}
    changed = False
    for t in teachers:
        for name, faces in sets.items():
            k = f"{name}_{t}"
            if k in cached and len(cached[k]) == len(faces):
                continue
            cached[k] = score(t, faces, teachers_dir, label=name)
            changed = True
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, **cached)  # after each piece: an interrupted run keeps what it did
    if changed:
        print(f"teacher cache: {path}")
    return cached


def main(argv: list[str] | None = None) -> int:
    from models import ckplus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teachers", type=Path, default=None, help="folder holding the teacher files (else fetched)")
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir())
    p.add_argument("--use", default="A,B,ref", help="comma-separated teachers")
    args = p.parse_args(argv)
    sets = {"train": ferplus.load_split("train", args.data).images,
            "valid": ferplus.load_split("valid", args.data).images,
            "ckplus": ckplus.load(args.data).images}
    soft_labels(sets, tuple(args.use.split(",")), args.teachers, key="full")
    return 0


if __name__ == "__main__":
    sys.exit(main())
