"""The emotion model and its card: open, verify, preprocess, classify a batch of face crops."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from edge.config.align import AlignConfig
from edge.config.model import SHIPPED_MODEL, ModelConfig
from edge.interpreter import ModelError, open_interpreter, sha256_file
from edge.types import Classification


@dataclass(frozen=True)
class ModelCard:
    """What the runtime needs of a model card (the JSON file holds more: data, accuracy, latency)."""

    name: str
    version: str
    sha256: str
    classes: tuple[str, ...]
    input_size: int
    channels: int
    pixel_scale: float       # x = pixel * pixel_scale + pixel_offset, before input quantization
    pixel_offset: float
    raw: dict[str, Any]
    eye_y: float | None = None           # preprocessing.framing: how the training crops were framed (edge/align.py)
    eye_distance: float | None = None

    @property
    def class_prior(self) -> np.ndarray | None:
        """How common each class was in the training targets (card ``training.class_prior``), if recorded."""
        prior = self.raw.get("training", {}).get("class_prior")
        if not prior:
            return None
        return np.array([float(prior[c]) for c in self.classes], np.float32)

    @classmethod
    def load(cls, path: Path) -> "ModelCard":
        """Read a card; raise ModelError naming the file and the missing key."""
        try:
            d = json.loads(Path(path).read_text())
            pre = d["preprocessing"]
            framing = _framing(Path(path), pre.get("framing") or {})
            card = cls(name=d["name"], version=d["version"], sha256=d["sha256"], classes=tuple(d["classes"]),
                       input_size=int(d["input"]["size"]), channels=int(d["input"]["channels"]),
                       pixel_scale=float(pre["pixel_scale"]), pixel_offset=float(pre["pixel_offset"]), raw=d,
                       eye_y=framing.eye_y, eye_distance=framing.eye_distance)
        except FileNotFoundError:
            raise ModelError(f"model card not found: {path} (every model needs its card beside it)") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model card {path} is unreadable or incomplete: {exc!r}") from None
        return card


def _framing(path: Path, framing: dict[str, Any]) -> AlignConfig:
    """A card's ``preprocessing.framing`` checked with the align section's bounds; ModelError in one line."""
    try:
        return AlignConfig(**{k: v for k, v in framing.items() if k in ("eye_y", "eye_distance")})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ModelError(f"model card {path}: preprocessing.framing.{key}: {err['msg']}") from None


def prior_weights(prior: np.ndarray, tau: float) -> np.ndarray:
    """Per-class score weights of the prior correction: prior ** -tau (a class's prior floored at 1e-4,
    so a class the training data barely had is not weighted without bound)."""
    return np.maximum(prior, 1e-4) ** -tau


class EmotionModel:
    """An int8 (or float) TFLite emotion classifier checked against its card.

    ``classify(crops)`` takes grayscale (or BGR) face crops of any size, applies the card's
    preprocessing (grayscale, INTER_AREA resize to the input size, pixel scaling, input
    quantization) and runs all faces of a frame as one batch.
    """

    def __init__(self, path: str | Path = SHIPPED_MODEL, card_path: str | Path | None = None,
                 threads: int = 1, verify_sha256: bool = True, prior_correction: float = 0.0) -> None:
        self.path = Path(path)
        if not self.path.is_file():     # before the card: "card not found" would send the user the wrong way
            raise ModelError(f"no such model: {self.path}")
        self.card = ModelCard.load(Path(card_path) if card_path else self.path.with_suffix(".json"))
        self._reweight = None      # per-class score weights for prior correction, None when off
        if prior_correction > 0:
            prior = self.card.class_prior
            if prior is None:
                raise ModelError(f"model.prior_correction needs the class prior in the model card "
                                 f"(training.class_prior), which {self.card.name} {self.card.version} lacks")
            self._reweight = prior_weights(prior, prior_correction)
        if verify_sha256 and self.path.is_file():
            actual = sha256_file(self.path)
            if actual != self.card.sha256:
                raise ModelError(f"{self.path}: sha256 {actual[:12]}... does not match its card "
                                 f"({self.card.sha256[:12]}...): wrong or modified model file")
        self.interpreter = open_interpreter(self.path, threads)
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        sig = tuple(int(v) for v in inp.get("shape_signature", inp["shape"]))
        want = (self.card.input_size, self.card.input_size, self.card.channels)
        if sig[1:] != want:
            raise ModelError(f"{self.path}: input shape {sig[1:]} does not match its card {want}")
        if int(out["shape"][-1]) != len(self.card.classes):
            raise ModelError(f"{self.path}: {out['shape'][-1]} outputs but its card lists "
                             f"{len(self.card.classes)} classes")
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype, self._out_dtype = inp["dtype"], out["dtype"]
        self._in_q = inp["quantization"]
        self._out_q = out["quantization"]
        self._batch = int(inp["shape"][0])

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "EmotionModel":
        """Open the model named by the `model` config section."""
        return cls(cfg.path, cfg.card, cfg.threads, cfg.verify_sha256, cfg.prior_correction)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    @property
    def input_size(self) -> int:
        return self.card.input_size

    @property
    def model_id(self) -> str:
        """Name, version and short hash: enough for a consumer to know which model spoke."""
        return f"{self.card.name}-{self.card.version}@{self.card.sha256[:12]}"

    def preprocess(self, crops: list[np.ndarray]) -> np.ndarray:
        """Crops -> the model's input tensor (N, size, size, channels), quantized where the input is integer."""
        import cv2  # heavy import kept out of config loading

        size = self.card.input_size
        batch = np.empty((len(crops), size, size, self.card.channels), np.float32)
        for k, crop in enumerate(crops):
            if crop.ndim == 3 and self.card.channels == 1:
                crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            if crop.shape[:2] != (size, size):
                interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
                crop = cv2.resize(crop, (size, size), interpolation=interp)
            batch[k] = crop.reshape(size, size, self.card.channels)
        x = batch * self.card.pixel_scale + self.card.pixel_offset
        if np.issubdtype(self._in_dtype, np.integer):
            scale, zero = self._in_q
            info = np.iinfo(self._in_dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        return x.astype(self._in_dtype)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run an already preprocessed batch; return float scores (N, n_classes)."""
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        if len(x) != self._batch:  # resize only when the number of faces changes
            self.interpreter.resize_tensor_input(self._in_index, list(x.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self._in_index, x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._out_index).astype(np.float32)
        if np.issubdtype(self._out_dtype, np.integer):
            scale, zero = self._out_q
            y = (y - zero) * scale
        return y

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """Raw model scores -> the scores the pipeline reports: prior-corrected where configured, summing to 1."""
        if self._reweight is not None:
            # p(c|x) / prior(c)^tau: the logit adjustment of Menon et al. 2021, applied after the model
            scores = scores * self._reweight
        return scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-6)

    def classify(self, crops: list[np.ndarray]) -> list[Classification]:
        """Classify the face crops of one frame in one batch."""
        scores = self.normalize(self.predict(self.preprocess(crops)))
        return [Classification(scores=s, classes=self.classes) for s in scores]
