"""Section `preview`: the annotated picture, window and MJPEG stream (edge/preview.py)."""
from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class MjpegConfig(StrictModel):
    """The MJPEG-over-HTTP preview stream (off by default; loopback only unless `host` says otherwise)."""

    enabled: bool = Field(False, description="Serve the annotated preview as MJPEG over HTTP. It shows faces: "
                          "enable only where viewers are allowed to see them.")
    host: str = Field("127.0.0.1", description="Address to listen on. 127.0.0.1 keeps the stream on this device "
                      "(reach it with an SSH tunnel); 0.0.0.0 exposes it to the network.")
    port: int = Field(8090, ge=0, le=65535, description="TCP port (0: any free port, logged at start).")
    max_fps: float = Field(10.0, gt=0.0, le=60.0, description="Most frames per second sent to each viewer.")
    jpeg_quality: int = Field(75, ge=10, le=100, description="JPEG quality of streamed frames (higher: sharper, "
                              "more bandwidth).")


class PreviewConfig(StrictModel):
    """Section `preview`: the annotated picture (a window for `fer-edge recognize`, an optional MJPEG stream)."""

    window: bool = Field(True, description="`fer-edge recognize`: show an OpenCV window when a display exists.")
    show_scores: bool = Field(True, description="Write the smoothed score of the shown emotion beside it.")
    mjpeg: MjpegConfig = Field(default_factory=MjpegConfig, description="MJPEG-over-HTTP stream")
