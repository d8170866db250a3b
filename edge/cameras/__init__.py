"""Several cameras in one service: a reader thread per camera, one shared detector and emotion model.

:class:`~edge.cameras.feed.CameraFeed` reads one camera on its own thread (live sources keep only the
newest frame; files wait for the consumer). :class:`~edge.cameras.camera_set.CameraSet` hands the
pipeline thread one frame of every camera that has one ready, round after round, so a busy camera
cannot starve a quiet one. :class:`~edge.cameras.processor.MultiProcessor` runs each camera's
:class:`~edge.frame_processor.FrameProcessor` and classifies the faces of the whole round in one batch.
"""
from edge.cameras.camera_set import CameraSet, FrameBatch
from edge.cameras.feed import CameraFeed
from edge.cameras.processor import MultiProcessor

__all__ = ["CameraFeed", "CameraSet", "FrameBatch", "MultiProcessor"]
