"""Section `model`: which emotion model runs and how (edge/classify.py); where the shipped one is."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge.config.base import StrictModel

#: The model this project trains and ships: package data of `edge` (edge/model/), its card beside it.
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "model" / "fer_emotion_int8.tflite"


class ModelConfig(StrictModel):
    """Section `model`: which emotion model to run and how."""

    path: Path = Field(SHIPPED_MODEL, description="The int8 .tflite emotion model; its card is the .json beside it.")
    card: Path | None = Field(None, description="Model card (JSON); default: the model path with .json.")
    threads: int = Field(1, ge=1, le=8, description="Interpreter threads (1 leaves the other cores to detection).")
    verify_sha256: bool = Field(True, description="Refuse a model whose sha256 differs from its card.")
    prior_correction: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Divide the scores by the training class prior to this power (0: off, the model's own "
                    "FER+-calibrated scores; 1: as if every emotion were equally common). Raise it where faces "
                    "show emotions more often or more subtly than in FER+, where most faces are neutral.")


def prior_correction_error(value: float) -> str | None:
    """The one-line complaint for a ``--prior-correction`` outside ModelConfig's bounds, else None."""
    try:
        ModelConfig(prior_correction=value)
    except ValueError:
        return "--prior-correction must be between 0 and 1"
    return None
