"""Which TFLite interpreter is installed, and how to open a model with it.

Preference: LiteRT (``ai_edge_litert``), then ``tflite_runtime`` (older boards, numpy<2), then
``tensorflow.lite`` (a training machine). Every model the runtime runs, and the evaluator too,
is opened here, so that measured accuracy and latency are those of the interpreter the board uses.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.formatting import one_line


class ModelError(RuntimeError):
    """A model file that cannot be used: missing, corrupt, or not what its card says."""


def interpreter_class() -> tuple[type, str]:
    """Return the best available ``Interpreter`` class and the name of the package it came from."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf  # type: ignore[import-not-found]
        return tf.lite.Interpreter, "tensorflow"
    except ImportError as exc:
        raise ModelError("no TFLite interpreter installed: pip install ai-edge-litert "
                         "(or tflite-runtime on boards without LiteRT wheels)") from exc


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_interpreter(path: str | Path, threads: int = 1) -> Any:
    """Open a ``.tflite`` file and allocate its tensors; raise ModelError with one clear line on failure."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    data = path.read_bytes()
    # A .tflite is a FlatBuffer whose file identifier "TFL3" sits at bytes 4..8.
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite model (no TFL3 identifier; truncated or wrong file?)")
    cls, _ = interpreter_class()
    try:
        with _without_delegate_notice():
            interp = cls(model_content=data, num_threads=max(1, int(threads)))
            interp.allocate_tensors()
    except Exception as exc:  # the interpreters raise ValueError/RuntimeError with long C++ messages
        raise ModelError(f"{path} could not be loaded as a TFLite model (corrupt or truncated?): "
                         f"{one_line(exc, rest=False)}") from exc
    return interp


#: The line TFLite's C++ logger writes to stderr for every interpreter: nothing a user can act on.
DELEGATE_NOTICE = b"Created TensorFlow Lite XNNPACK delegate"
_STDERR_LOCK = threading.Lock()       # one redirection at a time (a nested one would keep stderr captured)


@contextmanager
def _without_delegate_notice() -> Iterator[None]:
    """Capture what is written to file descriptor 2 meanwhile and pass it on without TFLite's delegate notice.

    The C++ logger writes to the descriptor directly, beside Python's logging; anything else written
    during the few milliseconds (other threads' log lines) still reaches stderr, just after.
    """
    with _STDERR_LOCK, tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = b"".join(line for line in captured.read().splitlines(keepends=True) if DELEGATE_NOTICE not in line)
            if rest:
                os.write(2, rest)
