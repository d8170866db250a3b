"""Start a student from a float TFLite emotion model (the 1.0.0 reference), not from random weights.

The 1.0.0 network (models.studies.train_v1.build_backbone, widths 32-64-128-256) survives only as
its float .tflite, whose converter folded each BatchNormalization into its convolution's kernel and bias and
the input Rescaling into the first kernel. ``student_from_tflite`` rebuilds that network without
batch normalisation (models.student.build_student(batchnorm=False)) and loads the folded weights,
so one view of it computes what one view of the reference computed: fine-tuning then starts from
85% FER+ instead of from chance, which a 2-core machine cannot otherwise reach in an afternoon.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.student import build_student


def folded_weights(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """The (kernel HWIO, bias) of each CONV_2D in graph order, and the dense (kernel, bias), from ``path``."""
    from edge.interpreter import open_interpreter

    # the runtime the board uses (LiteRT where installed); the file's tensors are the same either way
    interp = open_interpreter(path)
    ops = [(op["op_name"], [int(i) for i in op["inputs"][1:3]])  # the public API has no op list;
           for op in interp._get_ops_details()                      # this one is stable since TF 2.5
           if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    if not any(name == "CONV_2D" for name, _ in ops) or ops[-1][0] != "FULLY_CONNECTED":
        raise ValueError(f"{path}: no CONV_2D layers ending in FULLY_CONNECTED logits; not a float fer-edge model")
    if any(i < 0 for _, pair in ops for i in pair):
        raise ValueError(f"{path}: a layer without bias; not a float fer-edge model (BN folded into biases)")
    convs = [(np.transpose(interp.get_tensor(w), (1, 2, 3, 0)), interp.get_tensor(b))  # OHWI -> HWIO
             for name, (w, b) in ops if name == "CONV_2D"]
    w, b = ops[-1][1]
    dense = (interp.get_tensor(w).T, interp.get_tensor(b))
    return convs, dense


def student_from_tflite(path: Path, dropout: float = 0.4):
    """A Keras student (no batch norm) whose single view equals one view of the float model at ``path``."""
    convs, (dense_w, dense_b) = folded_weights(path)
    if len(convs) % 2:
        raise ValueError(f"{path}: {len(convs)} convolutions; expected blocks of two")
    widths = tuple(int(convs[i][0].shape[-1]) for i in range(0, len(convs), 2))
    model = build_student(widths, dropout=dropout, batchnorm=False, name="fer_warm")
    conv_layers = [layer for layer in model.layers if layer.name.startswith("conv")]
    for n, (layer, (w, b)) in enumerate(zip(conv_layers, convs)):
        # The converter folded Rescaling(1/255) into the first kernel; the rebuilt graph keeps
        # the Rescaling layer, so undo the fold there.
        layer.set_weights([w * 255.0 if n == 0 else w, b])
    model.get_layer("logits").set_weights([dense_w, dense_b])
    return model
