"""Frame sources behind one interface: image, folder, video file, V4L2/USB camera, RTSP/HTTP stream, picamera2.

``open_source(cfg)`` returns a :class:`Source`: iterate it for :class:`~edge.types.Frame` objects,
``close()`` it from any thread. A source that fails to open, fails to read or stalls is reported
(one log line) and reopened with exponential backoff; iteration never raises for such a
transient failure (only after ``max_reopens`` failures in a row, when that is set).

Files are read as fast as the consumer asks (benchmarks) unless ``pace`` plays them at their
frame rate. Live sources (cameras, streams, picamera2) are read by a grab thread that keeps only
the newest frame, so a slow consumer always gets a fresh picture; frames it never saw are counted
in ``dropped``.
"""
from edge.sources.base import (IMAGE_EXTENSIONS, LIVE_KINDS, VIDEO_EXTENSIONS, SourceError, SourceStats, missing_file,
                               redact, resolve_kind)
from edge.sources.images import list_images, read_image
from edge.sources.source import Source, open_source

__all__ = ["IMAGE_EXTENSIONS", "LIVE_KINDS", "VIDEO_EXTENSIONS", "Source", "SourceError", "SourceStats", "list_images",
           "missing_file",
           "open_source", "read_image", "redact", "resolve_kind"]
