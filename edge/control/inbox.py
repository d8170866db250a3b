"""The inbox that hands config messages from paho's thread to the main thread."""
from __future__ import annotations

import queue
from typing import Any


class ConfigInbox:
    """Config messages waiting for the main thread: filled from paho's thread, bounded, drops counted."""

    def __init__(self, size: int) -> None:
        self._messages: queue.Queue[tuple[str, Any]] = queue.Queue(size)
        self._dropped = 0

    def put(self, layer: str, payload: Any) -> None:
        """Hand one message for ``layer`` over (never blocks: a full inbox drops it and counts)."""
        try:
            self._messages.put_nowait((layer, payload))
        except queue.Full:
            self._dropped += 1

    def dropped(self) -> int:
        """Messages dropped since the last call."""
        dropped, self._dropped = self._dropped, 0
        return dropped

    def next(self) -> tuple[str, Any] | None:
        """The oldest waiting (layer, payload), or None."""
        try:
            return self._messages.get_nowait()
        except queue.Empty:
            return None
