"""The device's seq high-water mark, kept in a small file beside the queue (``<queue>.seq``).

The queue file holds the seq counter too, but a queue file can come back shorter than it was
(a power cut with ``synchronous=NORMAL``, an emptied ``-wal``, a damaged file moved aside). This
file is what makes seq never repeat for a device:

- ``reserved``: every seq handed out is at most this; it is raised in blocks of :data:`BLOCK`
  and each raise is flushed to the disk (``fdatasync``) before a seq above the old value is used.
  After a machine crash or power cut, seq continues above it: every seq that may have been used
  before is skipped (a gap of at most BLOCK that the start-up log explains).
- ``last`` and ``depth``: the last committed seq and the queue's length, written after every
  commit without a flush (one ``pwrite`` into the page cache, which a killed process cannot lose).
  They tell at start-up whether the queue came back shorter than it was, and by how many events.
- ``clean`` and ``boot``: whether the process closed the queue itself, and the kernel's boot id;
  ``last`` is trusted after a clean stop or a process crash (same boot), ``reserved`` otherwise.

The record is written into two fixed 64-byte slots in turn, each with a CRC, so that a write torn
by a power cut leaves the other slot readable. Writing in place never extends the file: it works
on a full disk or under a file size limit.
"""
from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK = 1000            # seqs reserved per flushed write
_SLOT = 64
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """The kernel's id of this boot (changes at every boot), or '' where there is none."""
    try:
        return _BOOT_ID.read_text().strip().replace("-", "")[:16]
    except OSError:
        return ""


@dataclass(frozen=True)
class Mark:
    """One record of the high-water mark file."""

    counter: int        # write counter: the slot with the higher one is the newer
    reserved: int
    last: int
    depth: int
    clean: bool
    boot: str

    def encode(self) -> bytes:
        body = f"v1 {self.counter} {self.reserved} {self.last} {self.depth} {int(self.clean)} {self.boot or '-'}"
        line = f"{body} {zlib.crc32(body.encode()):08x}"
        if len(line) >= _SLOT:
            raise ValueError("seq mark record too long")
        return line.encode().ljust(_SLOT - 1) + b"\n"

    @classmethod
    def decode(cls, raw: bytes) -> "Mark | None":
        try:
            body, crc = raw.decode("ascii").strip().rsplit(" ", 1)
            if int(crc, 16) != zlib.crc32(body.encode()):
                return None
            version, counter, reserved, last, depth, clean, boot = body.split(" ")
            if version != "v1":
                return None
            return cls(int(counter), int(reserved), int(last), int(depth), clean == "1", "" if boot == "-" else boot)
        except (UnicodeDecodeError, ValueError):
            return None

    def trusted_last(self) -> bool:
        """True when ``last``/``depth`` are exact: a clean stop, or a process crash on the running boot."""
        return self.clean or (bool(self.boot) and self.boot == boot_id())

    def floor(self) -> int:
        """Every seq that may have been used before is at most this."""
        return self.last if self.trusted_last() else max(self.reserved, self.last)


class SeqMark:
    """The high-water mark file of one queue; every write failure is logged, never raised."""

    def __init__(self, queue_path: Path) -> None:
        self.path = queue_path.with_name(queue_path.name + ".seq")
        self.found: Mark | None = None      # what the file said when opened (None: no readable record)
        self._fd = -1
        self._counter = 0
        self._reserved = 0
        self._boot = boot_id()
        self._failed = False
        try:
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
            raw = os.pread(self._fd, 2 * _SLOT, 0)
            if len(raw) < 2 * _SLOT:
                os.ftruncate(self._fd, 2 * _SLOT)      # both slots exist from now on: writes never extend it
            if created:
                _sync_dir(self.path.parent)
        except OSError as exc:
            log.error("seq mark %s cannot be opened (%s): seq cannot be kept apart from the queue", self.path,
                      exc.strerror)
            return
        marks = [m for m in (Mark.decode(raw[i:i + _SLOT]) for i in (0, _SLOT)) if m is not None]
        if marks:
            self.found = max(marks, key=lambda m: m.counter)
            self._counter = self.found.counter
        elif raw.strip(b"\0"):
            log.error("seq mark %s is unreadable; seq continues from the queue's own counter", self.path)

    @property
    def reserved(self) -> int:
        return self._reserved

    def reserve(self, seq: int, last: int, depth: int) -> None:
        """Make sure ``seq`` is covered: raise ``reserved`` to seq + BLOCK and flush it, when needed."""
        if seq <= self._reserved:
            return
        self._reserved = seq + BLOCK
        self._write(Mark(self._counter + 1, self._reserved, last, depth, False, self._boot), flush=True)

    def committed(self, last: int, depth: int) -> None:
        """Record the queue's state after a commit (page cache only: survives a killed process)."""
        self._write(Mark(self._counter + 1, self._reserved, last, depth, False, self._boot), flush=False)

    def close(self, last: int, depth: int) -> None:
        """A clean stop: the exact state, flushed, so that the next start continues at last + 1 without a gap."""
        self._reserved = last
        self._write(Mark(self._counter + 1, last, last, depth, True, self._boot), flush=True)
        self.release()

    def release(self) -> None:
        """Close the file without writing (the queue could not be opened)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write(self, mark: Mark, flush: bool) -> None:
        if self._fd < 0:
            return
        try:
            os.pwrite(self._fd, mark.encode(), (mark.counter % 2) * _SLOT)
            if flush:
                os.fdatasync(self._fd)
        except OSError as exc:
            if not self._failed:
                log.error("seq mark %s cannot be written (%s); seq may repeat if the queue file is lost",
                          self.path, exc.strerror)
            self._failed = True
            return
        self._counter = mark.counter
        self._failed = False


def _sync_dir(folder: Path) -> None:
    """Flush a directory entry (a new file) to the disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
