"""What every frame source shares: kinds, errors, counters, and how a uri is read as a kind."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from edge.config.source import SourceConfig

log = logging.getLogger("edge.sources")


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"})


VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts"})


SourceKind = Literal["image", "folder", "video", "camera", "stream", "picamera2", "demo"]


LIVE_KINDS = frozenset({"camera", "stream", "picamera2"})


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message is one line a person can act on.

    ``hint`` says what to check (device node, group...); the Source reports it with the first
    failure only, so that a service retrying for hours does not repeat it at every attempt.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class Stalled(SourceError):
    """A live source delivered no frame within ``stall_timeout_s``."""


@dataclass
class SourceStats:
    """What a source has done so far (for the service's stats)."""

    frames: int = 0          # frames delivered
    dropped: int = 0         # live frames replaced by a newer one before anyone took them
    skipped: int = 0         # unreadable files in an image folder
    failures: int = 0        # open/read failures and stalls (each reported)
    reopens: int = 0         # successful reopenings after a failure
    outages: int = 0         # times frames stopped after they had been coming (each: one or more failures)
    outage_s: float = 0.0    # seconds without frames in outages that are over (frames came back)
    last_error: str = ""
    state: str = "new"       # new, open, reopening, ended, closed, failed


def resolve_kind(cfg: SourceConfig) -> SourceKind:
    """The source kind: as configured, or guessed from the uri's form."""
    if cfg.kind != "auto":
        return cfg.kind
    uri = cfg.uri.strip()
    if uri == "demo":
        return "demo"
    if re.fullmatch(r"picamera2(:\d+)?", uri):
        return "picamera2"
    if uri.isdigit() or uri.startswith("/dev/video"):
        return "camera"
    if "://" in uri and not uri.startswith("file://"):
        return "stream"
    path = Path(uri.removeprefix("file://")).expanduser()
    if path.is_dir():
        return "folder"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    return "video"


FILE_KINDS = {"video": "video file", "image": "image file", "folder": "folder"}


def missing_file(cfg: SourceConfig) -> str | None:
    """One line saying that a file source's path does not exist, or None (also for every other kind).

    Checked once when a service or command starts: a file that is not there will not appear by
    retrying, unlike a camera that may be plugged in later (cameras are not checked here).
    """
    kind = resolve_kind(cfg)
    if kind not in FILE_KINDS:
        return None
    path = Path(cfg.uri.strip().removeprefix("file://")).expanduser()
    if path.exists():
        return None
    what = "file or folder" if cfg.kind == "auto" else FILE_KINDS[kind]
    return (f"source.uri: {path}: no such {what} (check the path; `fer-edge run --demo` plays the built-in "
            "demo without any file or camera)")


def quiet_opencv() -> None:
    """Keep OpenCV's own WARN lines (e.g. 'can't open camera by index') out of the log: we report instead."""
    import cv2

    if not log.isEnabledFor(logging.DEBUG):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def redact(uri: str) -> str:
    """A stream URL without its password (rtsp://user:secret@host -> rtsp://user:***@host)."""
    return re.sub(r"(://[^/:@]+:)[^@/]*@", r"\1***@", uri)


class Backend(Protocol):
    """One kind of source: ``open()`` raises SourceError; ``read()`` returns (image, media time or None,
    path or None), or None at the end (files); ``release()`` lets go of the device or file."""

    live: bool
    fps: float | None

    def open(self) -> None: ...
    def read(self) -> tuple[np.ndarray, float | None, str | None] | None: ...
    def release(self) -> None: ...
