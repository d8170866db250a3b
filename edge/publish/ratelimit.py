"""Say a recurring problem once per interval, not once per attempt."""
from __future__ import annotations

import logging
import threading
import time


class LogEvery:
    """Log a recurring condition at most once per ``interval_s``, counting what was held back.

    The first occurrence is logged at once; later ones within the interval are only counted, and
    the count is appended to the next line that is logged ("... (12 more since last report)").
    """

    def __init__(self, logger: logging.Logger, interval_s: float, level: int = logging.WARNING) -> None:
        self.logger, self.interval_s, self.level = logger, float(interval_s), level
        self._last = float("-inf")
        self._held = 0
        self._lock = threading.Lock()

    def __call__(self, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless one was logged less than an interval ago; True when logged."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval_s:
                self._held += 1
                return False
            held, self._held, self._last = self._held, 0, now
        if held:
            msg += f" ({held} more since last report)"
        self.logger.log(self.level, msg, *args)
        return True

    def reset(self) -> None:
        """Forget the last report, so the next occurrence (a new episode) is logged at once."""
        with self._lock:
            self._last, self._held = float("-inf"), 0
