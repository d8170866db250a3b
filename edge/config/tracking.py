"""Section `tracking`: how faces are followed and their emotion smoothed (edge/track.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import StrictModel


class TrackingConfig(StrictModel):
    """Section `tracking`: how faces are followed between frames and how their emotion is smoothed."""

    iou_threshold: float = Field(0.3, ge=0.0, le=1.0, description="A detection continues a track when their boxes "
                                 "overlap at least this much (intersection over union).")
    max_center_distance: float = Field(1.0, ge=0.0, le=5.0, description="... or when its centre is within this "
                                       "many face widths of the track's predicted centre (fast movement; small "
                                       "far faces move more than half their width between detections).")
    min_hits: int = Field(3, ge=1, le=50, description="Detections needed before a track is confirmed (reported, "
                          "classified, face_appeared sent); a track that misses a detection before that is "
                          "dropped silently, which removes one-off false faces.")
    new_track_score: float = Field(0.5, ge=0.0, le=1.0, description="Only a detection at least this sure starts a "
                                   "track. Less sure ones (down to detector.min_score) only continue a confirmed "
                                   "track that no sure detection matched, by overlap (a second association pass, "
                                   "as in ByteTrack): a face that blurs or turns keeps its id.")
    max_age_s: float = Field(1.0, ge=0.0, le=60.0, description="A confirmed track that no detection matched for "
                             "this long is ended (face_left); shorter gaps keep its id.")
    position_gain: float = Field(0.7, gt=0.0, le=1.0, description="How far a matched box moves towards the new "
                                 "detection (1: jump to it; lower: steadier boxes).")
    velocity_gain: float = Field(0.3, ge=0.0, le=1.0, description="How quickly the motion model's velocity follows "
                                 "the observed movement (0: no motion prediction).")
    smoothing: Literal["ema", "window"] = Field("ema", description="Class-score smoothing per track: exponential "
                                                "moving average ('ema') or mean over the last window_s ('window').")
    ema_half_life_s: float = Field(0.5, gt=0.0, le=60.0, description="EMA: a classification's weight halves after "
                                   "this many seconds.")
    window_s: float = Field(1.0, gt=0.0, le=60.0, description="Window: classifications from the last this many "
                            "seconds are averaged.")
    hysteresis_s: float = Field(1.0, ge=0.0, le=60.0, description="A track's emotion changes only after another "
                                "emotion has led the smoothed scores for this long.")
    switch_margin: float = Field(0.05, ge=0.0, le=1.0, description="... and leads the current emotion's smoothed "
                                 "score by at least this much at that moment.")
