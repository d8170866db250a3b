"""A measuring helper for the tracker: likely id switches, counted without ground truth.

Used by tests/test_track.py and by bench/pipeline.py and bench/crowd.py; not part of the runtime.
"""
from __future__ import annotations

import math

from edge.config.tracking import TrackingConfig
from edge.geometry import centre
from edge.track import Track, TrackChanges, Tracker


class IdSwitchCounter:
    """Counts likely id switches without ground truth: a new track confirmed where a track was just lost.

    A switch is counted when a track confirmed now had started within ``max_age_s + 1 s`` of another
    track's last detection, its first box's centre within one face width of that track's last box. Each lost
    track can account for one switch. (A proxy for benchmarks and stats: people who really leave
    and others who really arrive at the same spot at once are counted too.)
    """

    def __init__(self, cfg: TrackingConfig | None = None) -> None:
        self.cfg = cfg or TrackingConfig()
        self.count = 0
        self._lost: list[Track] = []          # ended tracks, kept for a while
        self._used: set[int] = set()          # keys of lost tracks already blamed for a switch

    def observe(self, changes: TrackChanges, tracker: Tracker, t: float) -> None:
        """Feed one tracker step (its changes and the tracker after it) at time ``t``."""
        window = self.cfg.max_age_s + 1.0
        coasting = [tr for tr in tracker.confirmed if tr.last_seen < t]
        candidates = [tr for tr in self._lost + coasting if tr.key not in self._used]
        for new in changes.confirmed:
            first = new.detection.box
            for old in candidates:
                if old.key == new.key or old.key in self._used or new.first_seen - old.last_seen > window:
                    continue
                (ox, oy), (nx, ny) = centre(old.box_at_last_seen), centre(first)
                if math.hypot(nx - ox, ny - oy) <= max(old.box_at_last_seen[2], first[2]):
                    self.count += 1
                    self._used.add(old.key)
                    break
        # keep lost tracks while a candidate that started near them could still be confirmed
        self._lost = [tr for tr in self._lost + changes.removed if t - tr.last_seen <= window + 5.0]
        live = {tr.key for tr in tracker.tracks} | {tr.key for tr in self._lost}
        self._used &= live

