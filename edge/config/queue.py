"""Section `queue`: the on-disk queue of unsent events (edge/publish/queue.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class QueueConfig(StrictModel):
    """Section `queue`: the on-disk queue of events not yet acknowledged by the broker."""

    path: str = Field("", description="SQLite file of the queue. Empty: $STATE_DIRECTORY/queue.db under systemd, "
                                      "else ~/.local/state/fer-edge/queue.db. One process per file.")
    max_events: int = Field(100_000, ge=10, le=100_000_000,
                            description="Size bound. When full, each new event drops the oldest queued one "
                                        "(counted in stats as queue.dropped and logged once per interval).")
    log_interval_s: float = Field(60.0, ge=0.1, description="At most one 'queue full' or 'cannot write the queue' "
                                                            "log line per this many seconds.")
    max_held: int = Field(10_000, ge=1, le=10_000_000,
                          description="While the queue file cannot be written (disk full, I/O error), up to this many "
                                      "events wait in memory, with their seq, and are stored once it can; beyond "
                                      "it the oldest are lost (counted in stats as queue.lost, a seq gap).")
