"""The 2.0 student network and a multiply-accumulate counter.

A single-view VGG-style CNN sized for a Raspberry Pi: the first block (48x48, the costliest
resolution) is narrow, later blocks wider; about 57 M MACs per face at the default widths, a
quarter of one view of the 1.0.0 network and an eighth of its four-view graph.
"""
from __future__ import annotations

from models import ferplus

INPUT_SIZE = 48
DEFAULT_WIDTHS = (16, 48, 96, 192)


def build_student(widths: tuple[int, ...] = DEFAULT_WIDTHS, dropout: float = 0.4, name: str = "fer_student",
                  batchnorm: bool = True):
    """Blocks of two 3x3 conv+BN+ReLU then 2x2 max-pool, global average pooling, dense logits.

    ``batchnorm=False`` gives biased convolutions instead of conv+BN: the shape of a converted
    model whose BN was folded (models.warmstart).

    Input: float pixel values 0..255, shape (48, 48, 1); output: 8 logits (no softmax). Plain Keras 3:
    builds under any backend (TensorFlow here, PyTorch on a GPU machine); the weights files are the same.
    """
    import keras
    from keras import layers

    inp = layers.Input((INPUT_SIZE, INPUT_SIZE, 1), name="pixels")
    x = layers.Rescaling(1.0 / 255.0)(inp)
    for i, w in enumerate(widths):
        for j in range(2):
            x = layers.Conv2D(w, 3, padding="same", use_bias=not batchnorm, name=f"conv{i}_{j}")(x)
            if batchnorm:
                x = layers.BatchNormalization(name=f"bn{i}_{j}")(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
        if i >= 1:
            x = layers.Dropout(0.1 * i)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(len(ferplus.CLASSES), name="logits", dtype="float32")(x)   # float32 under mixed precision too
    return keras.Model(inp, logits, name=name)


def count_macs(model) -> int:
    """Multiply-accumulates of one forward pass of one face (convolutions and dense layers)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += h * w * c * kh * kw * cin // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.input.shape[-1]) * layer.units
    return int(total)
