"""Section `schedule`: what runs on which frame (edge/frame_processor.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class ScheduleConfig(StrictModel):
    """Section `schedule`: how much work each frame gets (the knobs that make a small board keep up)."""

    detect_every: int = Field(5, ge=1, le=300, description="Run the face detector on every Nth processed frame; "
                              "in between, tracks move by their motion model. 1 detects on every frame. "
                              "5 suits 25-30 fps cameras (faces are re-found 5-6 times a second).")
    classify_hz: float = Field(5.0, gt=0.0, le=120.0, description="Classify each tracked face at most this many "
                               "times per second (the smoothing needs a few samples a second, not one per frame).")
    max_lag_s: float = Field(0.5, ge=0.0, le=60.0, description="Live sources: a frame older than this when "
                             "processing starts is dropped (counted in stats) instead of processed late; "
                             "0 never drops.")
