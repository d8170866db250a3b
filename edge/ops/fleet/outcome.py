"""What a device answered to one pushed message: applied, rejected (why), rolled back, or no answer.

Devices answer on their retained ``config/state`` (or ``model/state`` for model updates). An answer
belongs to a push when it echoes the push's ``serial``; a device without serials (unsigned messages)
is matched by the first answer it publishes after the push went out.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

APPLIED, REJECTED, ROLLED_BACK, NO_ANSWER, PENDING = "applied", "rejected", "rolled back", "no answer", "pending"
NOT_RUNNING = "not running"       # stopped or offline when the push went out: answered at once, not waited for


@dataclass
class Answer:
    """One device's outcome of a push."""

    device: str
    outcome: str = PENDING
    detail: str = ""
    version: str | None = None
    after_s: float | None = None          # seconds from the push to the final answer

    @property
    def took_it(self) -> bool:
        return self.outcome == APPLIED

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "outcome": self.outcome, "detail": self.detail, "version": self.version,
                "after_s": None if self.after_s is None else round(self.after_s, 3)}


def classify(state: dict[str, Any]) -> tuple[str, str]:
    """(outcome, detail) of one config/state or model/state payload; PENDING while on probation or in progress."""
    status = str(state.get("status") or "")
    error = state.get("error") or ""
    if status in ("probation", "downloading", "testing", "in_progress"):
        return PENDING, status
    if status == "rolled_back" or str(error).lower().startswith("rolled back"):
        return ROLLED_BACK, str(error)
    if state.get("ok") is False or status == "rejected":
        return REJECTED, str(error)
    return APPLIED, ""


class Tracker:
    """Collects answers from a set of devices to one push (fed from the Fleet listener)."""

    def __init__(self, devices: list[str], serial: int | None, kind: str = "config/state") -> None:
        self.kind = kind
        self.serial = serial
        self.answers = {d: Answer(d) for d in devices}
        self.sent_at: float | None = None        # time.monotonic() of the publish
        self.sent_epoch: float | None = None
        self.lock = threading.Lock()

    def sent(self) -> None:
        self.sent_at, self.sent_epoch = time.monotonic(), time.time()

    def not_running(self, device: str, detail: str) -> None:
        """A device the fleet knows is stopped or offline: its answer now, without waiting for it."""
        with self.lock:
            answer = self.answers[device]
            answer.outcome, answer.detail, answer.after_s = NOT_RUNNING, detail, 0.0

    def feed(self, device: str, kind: str, state: dict[str, Any]) -> None:
        """A message from the broker: record it if it answers this push."""
        answer = self.answers.get(device)
        if answer is None or kind != self.kind or self.sent_at is None or answer.outcome not in (PENDING,):
            return
        if not self._answers_this(state):
            return
        outcome, detail = classify(state)
        if self.serial is not None and isinstance(state.get("serial"), int) and state["serial"] > self.serial:
            outcome, detail = APPLIED, f"superseded by serial {state['serial']}"
        with self.lock:
            answer.version = state.get("version")
            if outcome == PENDING:
                answer.detail = detail
                return
            answer.outcome, answer.detail = outcome, detail
            answer.after_s = time.monotonic() - self.sent_at

    def _answers_this(self, state: dict[str, Any]) -> bool:
        serial = state.get("serial")
        if self.serial is not None and isinstance(serial, int):
            return serial >= self.serial
        # no serials: the first answer published after the push (Fleet passes no retained copies on)
        return True

    def done(self) -> bool:
        return all(a.outcome != PENDING for a in self.answers.values())

    def finish(self) -> list[Answer]:
        """The answers, with NO_ANSWER for devices still pending."""
        for a in self.answers.values():
            if a.outcome == PENDING:
                a.outcome = NO_ANSWER
                a.detail = a.detail and f"still {a.detail}"
        return [self.answers[d] for d in sorted(self.answers)]
