"""What the pipeline thread runs with (:class:`Parts`) and the event sink: building and closing them.

Everything is built from a config before anything running is touched, so a missing model or a
taken port becomes one :class:`~edge.control.runtime.ApplyError` line and the previous parts keep running.
"""
from __future__ import annotations

from dataclasses import dataclass

from edge.cameras import CameraSet, MultiProcessor
from edge.config import AppConfig
from edge.control.runtime import ApplyError
from edge.face_analyzer import FaceAnalyzer, PipelineSections
from edge.frame_processor import FrameProcessor
from edge.interpreter import ModelError
from edge.preview import MjpegServer
from edge.publish import EventSink, make_sink
from edge.publish.queue import QueueError
from edge.sources import Source, missing_file, open_source
from edge.sources.demo import as_demo


@dataclass
class Parts:
    """What the pipeline thread uses; replaced as a whole or in part on a config change."""

    analyzer: FaceAnalyzer
    processor: FrameProcessor | MultiProcessor     # MultiProcessor, CameraSet: with `cameras` (edge/cameras/)
    source: Source | CameraSet            # one per pipeline thread: a closed one cannot reopen
    preview: MjpegServer | None = None    # when preview.mjpeg.enabled


def build_parts(cfg: AppConfig, reuse_analyzer: FaceAnalyzer | None = None, demo: bool = False) -> Parts:
    """Analyzer (models), processor, source and preview for ``cfg``; ApplyError with one line if not.

    With `cameras`, one source per camera behind a :class:`CameraSet` and a :class:`MultiProcessor`
    sharing the analyzer. ``demo``: every camera plays the built-in demo instead (``--demo``).
    """
    cams = cfg.camera_configs()
    if demo:
        cams = [c.model_copy(update={"source": as_demo(c.source)}) for c in cams]
    for cam in cams:           # before the models load: the only line a wrong path prints
        problem = missing_file(cam.source)
        if problem:
            raise ApplyError(f"camera {cam.source.name}: {problem}" if cfg.cameras else problem)
    if cfg.cameras and cfg.preview.mjpeg.enabled:
        raise ApplyError("preview.mjpeg shows one camera: turn it off with `cameras`, or run one camera")
    try:
        # one detector for every camera, holding the searches their profiles need
        analyzer = reuse_analyzer if reuse_analyzer is not None else \
            FaceAnalyzer(PipelineSections(cfg.shared_detector(), cfg.align, cfg.model))
        processor: FrameProcessor | MultiProcessor = (MultiProcessor(cams, analyzer) if cfg.cameras
                                                      else FrameProcessor(cams[0], analyzer=analyzer))
    except (ModelError, OSError, ValueError) as exc:
        raise ApplyError(f"cannot load the models: {exc}") from None
    preview = None
    if cfg.preview.mjpeg.enabled:
        try:
            preview = MjpegServer(cfg.preview.mjpeg).start()
        except OSError as exc:
            raise ApplyError(str(exc)) from None
    source = CameraSet([open_source(c.source) for c in cams]) if cfg.cameras else open_source(cams[0].source)
    return Parts(analyzer, processor, source, preview)


def close_parts(parts: Parts, keep_analyzer: bool = False) -> None:
    """Close the source and the preview, and the analyzer unless it is reused by newer parts."""
    parts.source.close()
    if parts.preview is not None:
        parts.preview.close()
    if not keep_analyzer:
        parts.analyzer.close()


def open_sink(cfg: AppConfig) -> EventSink:
    """The event sink for ``cfg`` (MQTT with its queue, or stdout); ApplyError with one line if not."""
    try:
        return make_sink(cfg)
    except (QueueError, ValueError, OSError) as exc:
        raise ApplyError(f"cannot open the event sink: {exc}") from None
