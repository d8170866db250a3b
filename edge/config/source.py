"""Section `source`: where frames come from (edge/sources/)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import ID_PATTERN, StrictModel


class SourceConfig(StrictModel):
    """Section `source`: where frames come from."""

    uri: str = Field("0", description="What to read: a camera index (0) or device (/dev/video0), an "
                     "rtsp:// or http(s):// stream URL, a video file, an image file, a folder of images, "
                     "'picamera2' (Raspberry Pi camera; 'picamera2:1' for the second one), or 'demo' (the built-in "
                     "demo clip: two faces that come and go, no camera needed).")
    kind: Literal["auto", "image", "folder", "video", "camera", "stream", "picamera2", "demo"] = Field(
        "auto", description="How to read `uri`; 'auto' decides from its form (digits: camera, '://': stream, "
        "'demo', a folder, an image or video extension).")
    name: str = Field("cam0", pattern=ID_PATTERN,
                      description="Camera id carried by every frame and event, and a level of the MQTT topic "
                                  "state/<camera> (letters, digits, '-', '_'; no '#', '+', '/' or spaces).")
    width: int = Field(0, ge=0, description="Requested capture width for cameras/picamera2 (0: the driver's default; "
                       "picamera2 defaults to 640).")
    height: int = Field(0, ge=0, description="Requested capture height (0: the driver's default; picamera2: 480).")
    fps: float = Field(0.0, ge=0.0, description="Requested camera frame rate (0: default). For image folders: "
                       "the frame rate their timestamps assume (0: one frame per second).")
    pace: bool = Field(False, description="Video files and the demo: play at their frame rate instead of as fast as "
                       "frames are consumed.")
    loop: bool = Field(False, description="Video files, images, folders, the demo: start again at the end (demos).")
    reopen_delay_s: float = Field(1.0, gt=0.0, description="First wait before reopening a failed source; doubles "
                                  "after each failure in a row.")
    reopen_max_delay_s: float = Field(30.0, gt=0.0, description="Longest wait between reopen attempts.")
    max_reopens: int = Field(0, ge=0, description="Give up after this many failures in a row (0: never; a "
                             "service should keep trying).")
    stall_timeout_s: float = Field(10.0, gt=0.0, description="A live source that delivers no frame for this long "
                                   "counts as failed and is reopened.")
