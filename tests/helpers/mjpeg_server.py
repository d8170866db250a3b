"""A real HTTP MJPEG camera for the stream tests: multipart/x-mixed-replace JPEG frames over HTTP.

It serves the frames of a video file (decoded once, re-encoded as JPEG) at the file's frame rate,
like a network camera's MJPEG endpoint, on a loopback port. ``stop()`` cuts the camera off (closes
the listening socket and every open stream); ``start()`` brings it back on the same port.
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BOUNDARY = "ferframe"


def video_jpegs(path: Path, max_frames: int = 120, quality: int = 80) -> tuple[list[bytes], float]:
    """The first ``max_frames`` frames of a video as JPEG bytes, and its frame rate."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < max_frames:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    cap.release()
    if not frames:
        raise RuntimeError(f"{path}: no frames")
    return frames, float(fps)


class MjpegCamera:
    """An MJPEG-over-HTTP camera on 127.0.0.1:``port`` (0: a free port), looping over ``frames``."""

    def __init__(self, frames: list[bytes], fps: float, port: int = 0, path: str = "/video.mjpg") -> None:
        self.frames, self.fps, self.path = frames, fps, path
        self.port = port
        self.served = 0                      # frames sent, over all connections
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        """Listen (again) on the port; the first start picks a free port when ``port`` is 0."""
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path != camera.path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                with camera._lock:
                    camera._conns.add(self.connection)
                i = 0
                try:
                    while not camera._stopping.is_set():
                        jpg = camera.frames[i % len(camera.frames)]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpg)}\r\n\r\n".encode() + jpg + b"\r\n")
                        camera.served += 1
                        i += 1
                        time.sleep(1.0 / camera.fps)
                except OSError:
                    pass                          # the client went away, or stop() cut the connection
                finally:
                    with camera._lock:
                        camera._conns.discard(self.connection)

        ThreadingHTTPServer.allow_reuse_address = True
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="mjpeg-camera", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cut the camera off: stop listening and close every open stream at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for conn in list(self._conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._conns.clear()
