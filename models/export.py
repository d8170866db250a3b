"""Export a trained Keras emotion model to a fully int8 TFLite model (and a float one for comparison).

    python -m models.export --run models/runs/main [--ship]

Writes ``model_int8.tflite`` and ``model_float.tflite`` into the run folder. The int8 model has
integer input and output; its representative dataset is drawn from FER+ *training* images.
With ``--flip-tta`` (default: what validation chose, see train_log.json) the exported graph
averages the logits of the face and its mirror image, inside the model, so the runtime needs
nothing extra. ``--ship`` then evaluates and copies the int8 model with its card into models/.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from models import ferplus

INPUT_SIZE = 48


def inference_model(backbone, flip_tta: bool):
    """Wrap the logits backbone: optional mirror averaging, then softmax. Accepts any batch size."""
    import tensorflow as tf

    inp = tf.keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="pixels")
    if flip_tta:
        # Stack the faces and their mirror images in one batch so the weights exist once in the file.
        both = tf.keras.layers.Concatenate(axis=0)([inp, tf.keras.layers.Lambda(lambda t: t[:, :, ::-1, :])(inp)])
        logits = backbone(both, training=False)
        logits = tf.keras.layers.Lambda(
            lambda t: tf.reduce_mean(tf.reshape(t, (2, -1, len(ferplus.CLASSES))), axis=0))(logits)
    else:
        logits = backbone(inp, training=False)
    probs = tf.keras.layers.Softmax(name="scores")(logits)
    return tf.keras.Model(inp, probs, name="fer_emotion")


def convert(model, int8: bool, representative: np.ndarray | None = None) -> bytes:
    """Convert a Keras model to TFLite bytes; int8 means full integer quantization with int8 I/O."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)  # freezes the weights; batch stays dynamic
    if int8:
        assert representative is not None

        def rep():
            for img in representative:
                yield [img[None, :, :, None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def representative_images(data_dir: Path, n: int = 500, seed: int = 0) -> np.ndarray:
    """A seeded sample of FER+ training faces (never validation or test) for calibration."""
    tr = ferplus.load_split("train", data_dir)
    _, keep = ferplus.vote_distributions(tr.votes)
    imgs = tr.images[keep]
    return imgs[np.random.default_rng(seed).choice(len(imgs), n, replace=False)]


def export_run(run: Path, data_dir: Path, flip_tta: bool | None = None) -> dict[str, Path]:
    """Convert ``run/best.keras`` to ``run/model_int8.tflite`` and ``run/model_float.tflite``."""
    import tensorflow as tf

    log = json.loads((run / "train_log.json").read_text())
    if flip_tta is None:
        flip_tta = bool(log.get("best", {}).get("flip_tta", False))
    backbone = tf.keras.models.load_model(run / "best.keras")
    model = inference_model(backbone, flip_tta)
    paths = {"float": run / "model_float.tflite", "int8": run / "model_int8.tflite"}
    paths["float"].write_bytes(convert(model, int8=False))
    paths["int8"].write_bytes(convert(model, int8=True, representative=representative_images(data_dir)))
    meta = {"flip_tta": flip_tta, "params": int(backbone.count_params()), "best": log.get("best")}
    (run / "export.json").write_text(json.dumps(meta, indent=2))
    print(f"exported {paths['int8']} ({paths['int8'].stat().st_size / 1e6:.2f} MB), flip_tta={flip_tta}")
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="models/runs/main", type=Path)
    p.add_argument("--data", default=ferplus.default_data_dir(), type=Path)
    p.add_argument("--flip-tta", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--ship", action="store_true", help="evaluate and install into models/ with its card")
    args = p.parse_args(argv)
    tta = None if args.flip_tta == "auto" else args.flip_tta == "on"
    paths = export_run(args.run, args.data, tta)
    if args.ship:
        from models import card

        card.ship(args.run, paths, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
