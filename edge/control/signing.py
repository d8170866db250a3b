"""Replay-safe signed config messages: HMAC-SHA256 over a header that names signer, serial and target.

A signed message is the signature line followed by the signed bytes, which begin with three
header lines (YAML comments, so the rest still parses as the document)::

    # signature: sha256=<hex HMAC-SHA256 of every byte after this line's newline>
    # signer: ops                  who signed (one serial counter per signer)
    # serial: 1764583380123        only grows per signer (default: the time in ms)
    # target: device/lobby-cam-1   or group/<group>: the topic it is meant for
    tracking:
      smoothing: ema

The signature covers the header, so none of it can be changed. A device accepts a message only
on the topic its target names, and keeps, per signer and target, the highest serial it applied
(:class:`ReplayGuard`, a small JSON file in the service's state directory):

* a higher serial is new;
* the same serial with the same bytes is a duplicate (a retained or group message arriving
  again): already applied, reported without error, nothing done;
* a lower serial, or the same serial with other bytes, is a replay and rejected.

The operator's side calls :func:`sign_message`; the device's side :func:`verify_message` then
:meth:`ReplayGuard.check` / :meth:`ReplayGuard.record`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.control.storage import write_config

SIGNATURE_LINE = re.compile(rb"^#\s*signature:\s*sha256=([0-9A-Fa-f]{64})\s*$")
_HEADER = re.compile(rb"^#\s*(signer|serial|target):\s*(\S*)\s*$")
_SIGNER = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_TARGET = re.compile(r"^(device|group)/[A-Za-z0-9_-]{1,64}$")
MAX_SERIAL = (1 << 63) - 1
DEFAULT_SIGNER = "fer-edge"
REPLAY_FILE = "config-serials.json"


class SignatureError(ValueError):
    """A signed message that cannot be accepted; ``str()`` is one line saying why."""


class ReplayError(SignatureError):
    """A correctly signed message that is older than (or conflicts with) one already applied."""


@dataclass(frozen=True)
class Signed:
    """What a verified message carries: who signed it, its serial and target, and the signed bytes."""

    signer: str
    serial: int
    target: str
    body: bytes            # the document: the signed bytes without the header lines (line numbers as written)
    digest: str            # sha256 (hex) of every signed byte: tells a duplicate from another message

    @property
    def stream(self) -> str:
        """The key serials are counted under: signer and target."""
        return f"{self.signer} {self.target}"


# ----------------------------------------------------------------------------------------------
# Targets and serials
# ----------------------------------------------------------------------------------------------

def device_target(device_id: str) -> str:
    """The target of a message for one device (topic ``<prefix>/<device>/config/set``)."""
    return check_target(f"device/{device_id}")


def group_target(group: str) -> str:
    """The target of a message for a group (topic ``<prefix>/group/<group>/config/set``)."""
    return check_target(f"group/{group}")


def check_target(target: str) -> str:
    """Return ``target`` if it is ``device/<id>`` or ``group/<name>``, else raise SignatureError."""
    if not _TARGET.match(target):
        raise SignatureError(f"target {target!r} must be device/<id> or group/<name> "
                             "(letters, digits, '-', '_')")
    return target


_last_serial = 0
_serial_lock = threading.Lock()


def new_serial() -> int:
    """A serial from the clock (ms since 1970), larger than any this process made before."""
    global _last_serial
    with _serial_lock:
        _last_serial = max(_last_serial + 1, time.time_ns() // 1_000_000)
        return _last_serial


# ----------------------------------------------------------------------------------------------
# Signing (operator) and verifying (device)
# ----------------------------------------------------------------------------------------------

def sign_message(body: bytes, key: bytes, target: str, serial: int | None = None,
                 signer: str = DEFAULT_SIGNER) -> bytes:
    """A signed message for ``target`` (``device/<id>`` or ``group/<g>``): signature line, header, body.

    ``serial`` defaults to :func:`new_serial`. Signature, signer, serial and target lines already
    at the top of ``body`` (a message signed before) are replaced, so re-signing is safe.
    Raises SignatureError for an empty key, a bad signer name, target or serial.
    """
    if not key:
        raise SignatureError("no signing key (the shared secret is empty)")
    if not _SIGNER.match(signer):
        raise SignatureError(f"signer {signer!r}: use 1-64 letters, digits, '.', '@', '-', '_'")
    check_target(target)
    serial = new_serial() if serial is None else serial
    if not isinstance(serial, int) or not 0 < serial <= MAX_SERIAL:
        raise SignatureError(f"serial {serial!r} must be a whole number from 1 to {MAX_SERIAL}")
    signed = (f"# signer: {signer}\n# serial: {serial}\n# target: {target}\n".encode()
              + _strip_header(body))
    digest = hmac.new(key, signed, hashlib.sha256).hexdigest()
    return f"# signature: sha256={digest}\n".encode() + signed


def has_signature(payload: bytes) -> bool:
    """True when the first line of ``payload`` is a signature line."""
    return SIGNATURE_LINE.match(payload.partition(b"\n")[0].rstrip(b"\r")) is not None


def verify_message(payload: bytes, key: bytes, target: str) -> Signed:
    """Check the signature and header of a message that arrived on ``target``'s topic.

    Returns the :class:`Signed` message; raises SignatureError (no or wrong signature, missing or
    malformed header, meant for another target). Replays are :class:`ReplayGuard`'s business.
    """
    first, _, rest = payload.partition(b"\n")
    match = SIGNATURE_LINE.match(first.rstrip(b"\r"))
    if match is None:
        raise SignatureError("not signed (first line must be '# signature: sha256=<hex>')")
    expected = hmac.new(key, rest, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), match.group(1).lower()):
        raise SignatureError("signature does not match (HMAC-SHA256 of the bytes after the signature line)")
    header = _read_header(rest)
    missing = [name for name in ("signer", "serial", "target") if name not in header]
    if missing:
        raise SignatureError("signed message without " + ", ".join(f"'# {m}:'" for m in missing)
                             + " line: it could be replayed; sign it with `fer-edge config sign`")
    signer, serial_text, msg_target = header["signer"], header["serial"], header["target"]
    if not _SIGNER.match(signer):
        raise SignatureError(f"signer {signer!r} is not a valid name")
    if not serial_text.isdigit() or not 0 < int(serial_text) <= MAX_SERIAL:
        raise SignatureError(f"serial {serial_text!r} is not a whole number from 1 to {MAX_SERIAL}")
    if msg_target != target:
        raise SignatureError(f"signed for {msg_target}, but it arrived on the topic of {target}")
    return Signed(signer, int(serial_text), msg_target, _strip_header(rest), hashlib.sha256(rest).hexdigest())


def _leading_comments(body: bytes) -> list[bytes]:
    lines = []
    for raw in body.splitlines(keepends=True):
        if not raw.lstrip().startswith(b"#"):
            break
        lines.append(raw)
    return lines


def _read_header(body: bytes) -> dict[str, str]:
    header: dict[str, str] = {}
    for raw in _leading_comments(body):
        m = _HEADER.match(raw.rstrip(b"\r\n"))
        if m:
            name = m.group(1).decode()
            if name in header:
                raise SignatureError(f"'# {name}:' given twice in the header")
            header[name] = m.group(2).decode("utf-8", "replace")
    return header


def _strip_header(body: bytes) -> bytes:
    drop = 0
    for raw in _leading_comments(body):
        line = raw.rstrip(b"\r\n")
        if SIGNATURE_LINE.match(line) or _HEADER.match(line):
            drop += len(raw)
        else:
            break
    return body[drop:]


# ----------------------------------------------------------------------------------------------
# The device's record of applied serials
# ----------------------------------------------------------------------------------------------

Verdict = Literal["new", "duplicate"]


@dataclass(frozen=True)
class Applied:
    """The last message applied from one stream (signer and target)."""

    serial: int
    digest: str
    outcome: str           # "applied", "rolled back: <why>", ...


class ReplayGuard:
    """The highest serial applied per signer and target, kept in a JSON file (atomic writes).

    A missing file means nothing was applied yet; an unreadable one raises SignatureError at
    :meth:`check` time (refusing every signed message is safer than accepting replays).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def last(self, signed: Signed) -> Applied | None:
        """What was last applied from ``signed``'s stream, if anything."""
        entry = self._load().get(signed.stream)
        return None if entry is None else Applied(int(entry["serial"]), str(entry["digest"]),
                                                  str(entry.get("outcome", "applied")))

    def check(self, signed: Signed) -> Verdict:
        """``new`` or ``duplicate``; raises ReplayError for an older serial or a reused one."""
        last = self.last(signed)
        if last is None or signed.serial > last.serial:
            return "new"
        if signed.serial == last.serial:
            if hmac.compare_digest(signed.digest, last.digest):
                return "duplicate"
            raise ReplayError(f"serial {signed.serial} of signer {signed.signer} for {signed.target} was "
                              "already used by another message; sign again (a new serial)")
        raise ReplayError(f"replay rejected: serial {signed.serial} of signer {signed.signer} for "
                          f"{signed.target} is older than the last one applied ({last.serial})")

    def record(self, signed: Signed, outcome: str = "applied") -> None:
        """Remember ``signed`` as the last applied of its stream (raises OSError if it cannot be written)."""
        with self._lock:
            data = self._load()
            data[signed.stream] = {"serial": signed.serial, "digest": signed.digest, "outcome": outcome,
                                   "ts": round(time.time(), 3)}
            _write_json(self.path, {"v": 1, "streams": data})

    def pending(self, outcome: str = "probation") -> list[str]:
        """The streams whose last message still has ``outcome`` (e.g. applied, then the service stopped
        before its probation ended)."""
        return [stream for stream, entry in self._load().items() if entry.get("outcome") == outcome]

    def set_outcome(self, stream: str, outcome: str) -> None:
        """Change the recorded outcome of a stream's last message (its serial stays consumed)."""
        with self._lock:
            data = self._load()
            if stream in data:
                data[stream] = {**data[stream], "outcome": outcome}
                _write_json(self.path, {"v": 1, "streams": data})

    def _load(self) -> dict[str, dict]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SignatureError(f"cannot read {self.path} ({exc.strerror or exc}): refusing signed "
                                 "messages until it can be read") from None
        try:
            streams = json.loads(text)["streams"]
            if not isinstance(streams, dict):
                raise TypeError("streams is not a mapping")
            return streams
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError(f"{self.path} is damaged ({exc}); refusing signed messages: fix or "
                                 "remove it (removing it accepts any serial once)") from None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_config(path, json.dumps(data, indent=1, sort_keys=True) + "\n", backups=0)    # atomic, fsynced
