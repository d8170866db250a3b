"""Export a trained Keras emotion model to a fully int8 TFLite model (and a float one for comparison).

    python -m models.export --run models/runs/main [--ship]

Writes ``model_int8.tflite`` and ``model_float.tflite`` into the run folder. The int8 model has
integer input and output; its representative dataset is drawn from FER+ *training* images.
The exported graph can average the logits of several views of each face (test-time augmentation:
mirror image, centre zoom; 1.0.0's four were chosen on validation by models.studies.select_tta,
2.0 and 3.0 have one view) inside the model, so the runtime needs nothing extra. ``--ship`` then
evaluates and copies the int8 model with its card into edge/model/.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from models import ferplus
from models.card import base_card

INPUT_SIZE = 48

#: Test-time view sets a graph can average (models.studies.select_tta chose 1.0.0's on validation;
#: 2.0 and 3.0 have one view, "none"): name -> the views, each one of ``view``'s names.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "none": ("id",),
    "flip": ("id", "flip"),
    "flip-zoom44": ("id", "flip", "zoom44", "zoom44-flip"),
    "flip-zoom42": ("id", "flip", "zoom42", "zoom42-flip"),
    "flip-zoom40": ("id", "flip", "zoom40", "zoom40-flip"),
}


def view(x, name: str):
    """One view of a batch of 48x48 faces (NHWC, float), as a TensorFlow op that converts to TFLite.

    ``id``, ``flip`` (mirror), ``zoomC`` (the centre CxC pixels resized to 48x48) and ``zoomC-flip``.
    """
    import tensorflow as tf

    flip = name.endswith("flip") and name != "id"
    base = name.removesuffix("-flip") if name != "flip" else "id"
    if base.startswith("zoom"):
        c = int(base[4:])
        o = (INPUT_SIZE - c) // 2
        x = tf.image.resize(x[:, o:o + c, o:o + c, :], (INPUT_SIZE, INPUT_SIZE), method="bilinear")
    return x[:, :, ::-1, :] if flip else x


def inference_model(backbone, views: tuple[str, ...]):
    """Wrap the logits backbone: average the logits of the given views of each face, then softmax.

    The views (``view``'s names) are stacked in one batch, so the weights exist once in the
    file; any batch size is accepted.
    """
    import tensorflow as tf

    inp = tf.keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="pixels")
    if len(views) == 1 and views[0] == "id":
        logits = backbone(inp, training=False)
    else:
        stacked = tf.keras.layers.Lambda(lambda t: tf.concat([view(t, v) for v in views], axis=0))(inp)
        logits = backbone(stacked, training=False)
        logits = tf.keras.layers.Lambda(
            lambda t: tf.reduce_mean(tf.reshape(t, (len(views), -1, len(ferplus.CLASSES))), axis=0))(logits)
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


def fold_prior_correction(backbone, tau: float, data_dir: Path) -> None:
    """Subtract tau * log(training prior) from the output bias: the runtime's prior correction, in the graph.

    softmax(z - tau log p) is the runtime's scores / p^tau renormalised (edge.classify), so the
    default config gets it without a setting; tau is one scalar chosen on the odd-numbered Taiwanese
    performers (models.taiwanese.tune_prior), the only tuning those photographs may be used for.
    """
    from models.card import training_prior

    prior = np.array([training_prior(data_dir)[c] for c in ferplus.CLASSES], np.float32)
    dense = backbone.get_layer("logits")
    dense.bias.assign(dense.bias.numpy() - tau * np.log(np.maximum(prior, 1e-4)))


def export_run(run: Path, data_dir: Path, tta: str | None = None, prior_correction: float = 0.0) -> dict[str, Path]:
    """Convert ``run/best.keras`` to ``run/model_int8.tflite`` and ``run/model_float.tflite``.

    ``tta``: a CANDIDATES name; None takes ``run/tta.json`` (written by models.studies.select_tta)
    where it exists, else the mirror averaging if validation preferred it during training.
    ``prior_correction``: tau folded into the output bias (see fold_prior_correction); 0: none.
    """
    import tensorflow as tf

    log = json.loads((run / "train_log.json").read_text())
    if tta is None:
        chosen = run / "tta.json"
        tta = json.loads(chosen.read_text())["chosen"] if chosen.exists() else \
            ("flip" if log.get("best", {}).get("flip_tta") else "none")
    views = CANDIDATES[tta]
    backbone = tf.keras.models.load_model(run / "best.keras")
    if prior_correction:
        fold_prior_correction(backbone, prior_correction, data_dir)
    model = inference_model(backbone, views)
    paths = {"float": run / "model_float.tflite", "int8": run / "model_int8.tflite"}
    paths["float"].write_bytes(convert(model, int8=False))
    paths["int8"].write_bytes(convert(model, int8=True, representative=representative_images(data_dir)))
    for path in paths.values():  # provisional cards (I/O, hash), so evaluators and bench/accuracy.py open them
        path.with_suffix(".json").write_text(json.dumps(base_card(path, views), indent=2))
    meta = {"tta": tta, "views": list(views), "params": int(backbone.count_params()), "best": log.get("best"),
            "prior_correction_in_graph": prior_correction}
    (run / "export.json").write_text(json.dumps(meta, indent=2))
    print(f"exported {paths['int8']} ({paths['int8'].stat().st_size / 1e6:.2f} MB), test-time views {views}")
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="models/runs/main", type=Path)
    p.add_argument("--data", default=ferplus.default_data_dir(), type=Path)
    p.add_argument("--tta", default="auto", help="test-time views baked into the graph: auto (run/tta.json from "
                   "models.studies.select_tta) or a candidate name (none, flip, flip-zoom42, ...)")
    p.add_argument("--prior-correction", type=float, default=0.0, metavar="TAU",
                   help="fold a prior correction of this strength into the output bias (chosen on the "
                        "odd-numbered Taiwanese performers by bench/accuracy.py --tune-prior)")
    p.add_argument("--ship", action="store_true", help="evaluate and install into edge/model/ (package data) with its card")
    args = p.parse_args(argv)
    paths = export_run(args.run, args.data, None if args.tta == "auto" else args.tta, args.prior_correction)
    if args.ship:
        from models import card

        card.ship(args.run, paths, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
