"""An annotated picture of what the device sees: boxes, track ids, emotions, scores.

Two ways to look at it, both local unless configured otherwise (face images never leave the
device by default):
- an OpenCV window, for `fer-edge recognize` on a machine with a display;
- an MJPEG stream over HTTP (``http://127.0.0.1:8090/``), off by default and bound to loopback,
  served by the standard library's HTTP server from a background thread.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from edge.config.preview import MjpegConfig, PreviewConfig
from edge.track import Track

log = logging.getLogger(__name__)

BOUNDARY = "ferEdgeFrame"

# BGR colours per emotion; anything else is drawn grey.
COLOURS = {
    "neutral": (200, 200, 200), "happiness": (0, 200, 0), "surprise": (0, 200, 255), "sadness": (200, 80, 0),
    "anger": (0, 0, 230), "disgust": (0, 120, 80), "fear": (160, 0, 160), "contempt": (80, 80, 160),
}


# what a viewer reads for the quality gate that kept a face unread (edge/quality.py's reasons are internal words)
QUALITY_WORDS = {"small": "too small", "low_score": "unsure face", "turned": "turned away", "blurry": "blurred"}
# faces narrower than this get no score in their label, only the emotion (their box says the rest)
SMALL_FACE_PX = 60


def _label(tr: "Track", cfg: PreviewConfig, small: bool) -> str:
    emotion = tr.emotion
    if emotion is None:
        return QUALITY_WORDS.get(tr.quality or "", "reading...") if not small else "?"
    text = emotion if small else f"#{tr.id} {emotion}"
    if cfg.show_scores and not small:
        text += f" {tr.scores.get(emotion, 0.0):.2f}"
    return text


def _overlaps(a: tuple[int, int, int, int], placed: list[tuple[int, int, int, int]]) -> bool:
    return any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3] for b in placed)


def annotate(image: np.ndarray, tracks: list["Track"], cfg: PreviewConfig | None = None,
             status: str | None = None) -> np.ndarray:
    """Draw the confirmed tracks (box, id, emotion, score or why unread) on a copy of a BGR image.

    Labels stay inside the frame and never on top of each other: the larger faces are labelled first,
    a label that would cover another goes below its box, and where both places are taken the box alone
    (its colour is the emotion) is drawn. Small faces get a short label (the emotion only).
    """
    import cv2  # heavy import kept out of config loading

    cfg = cfg or PreviewConfig()
    out = image.copy()
    height, width = out.shape[:2]
    placed: list[tuple[int, int, int, int]] = []
    shown = sorted((tr for tr in tracks if tr.confirmed), key=lambda tr: -(tr.box[2] * tr.box[3]))
    for tr in shown:
        x, y, w, h = (int(round(v)) for v in tr.box)
        colour = COLOURS.get(tr.emotion or "", (128, 128, 128))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        placed.append((x, y, x + w, y + h))
    for tr in shown:
        x, y, w, h = (int(round(v)) for v in tr.box)
        small = w < SMALL_FACE_PX
        text = _label(tr, cfg, small)
        scale = 0.4 if small else 0.5
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        lx = min(max(0, x), max(0, width - tw - 4))                         # inside the frame, left and right
        for top in (y - th - base - 4, y + h + 2):                          # above the box, else below it
            top = min(max(0, top), max(0, height - th - base - 2))
            rect = (lx, top, lx + tw + 4, top + th + base + 2)
            if not _overlaps(rect, [r for r in placed if r != (x, y, x + w, y + h)]):    # other faces, labels
                colour = COLOURS.get(tr.emotion or "", (128, 128, 128))
                cv2.rectangle(out, rect[:2], (rect[2], rect[3]), colour, -1)
                cv2.putText(out, text, (lx + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                            cv2.LINE_AA)
                placed.append(rect)
                break
    if status:
        cv2.putText(out, status, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class FpsMeter:
    """Frames per second over the last ``window_s`` seconds (a steady figure, not 1 / the last frame's gap)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> float:
        """Count a frame at ``now`` (time.monotonic()); the rate over the window (0 until two frames)."""
        self._times.append(now)
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
        span = now - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


def display_problem() -> str | None:
    """Why an OpenCV window cannot be opened here (no display, or a headless OpenCV build), or None."""
    import cv2

    if os.name != "nt" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    try:
        cv2.namedWindow("fer-edge probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("fer-edge probe")
    except cv2.error:
        return "this OpenCV build has no window support (opencv-python-headless; pip install opencv-python)"
    return None


class MjpegServer:
    """Serves the latest published frame as MJPEG (``/stream``), one JPEG (``/snapshot.jpg``) and a page (``/``).

    ``publish(image)`` only keeps a reference: frames are JPEG-encoded in the server's threads, at
    most once each and only while someone is watching, so an unwatched stream costs nothing.
    """

    def __init__(self, cfg: MjpegConfig | None = None) -> None:
        self.cfg = cfg or MjpegConfig(enabled=True)
        self._cond = threading.Condition()
        self._image: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None     # (seq, bytes) of the last encoded frame
        self._closing = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.viewers = 0

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        assert self._httpd is not None, "start() first"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.cfg.host if ":" not in self.cfg.host else f"[{self.cfg.host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> "MjpegServer":
        """Bind and serve from a daemon thread; OSError (port in use, bad address) says which address."""
        handler = type("Handler", (_Handler,), {"stream": self})
        try:
            self._httpd = ThreadingHTTPServer((self.cfg.host, self.cfg.port), handler)
        except OSError as exc:
            raise OSError(f"preview.mjpeg: cannot listen on {self.cfg.host}:{self.cfg.port}: {exc.strerror or exc}") \
                from None
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mjpeg", daemon=True)
        self._thread.start()
        if not _is_loopback(self.cfg.host):
            log.warning("MJPEG preview on %s is reachable from the network: it shows faces", self.url)
        else:
            log.info("MJPEG preview at %s", self.url)
        return self

    def publish(self, image: np.ndarray) -> None:
        """Offer a new (annotated, BGR) frame to viewers; the caller must not modify it afterwards."""
        with self._cond:
            self._image, self._seq = image, self._seq + 1
            self._cond.notify_all()

    def close(self) -> None:
        """Stop serving and end open streams."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def jpeg(self, after: int = 0, timeout: float = 1.0) -> tuple[int, bytes] | None:
        """The latest frame newer than sequence ``after`` as (seq, JPEG bytes); None on timeout or closing."""
        import cv2

        with self._cond:
            if not self._cond.wait_for(lambda: self._closing or self._seq > after, timeout=timeout):
                return None
            if self._closing or self._image is None:
                return None
            seq, image = self._seq, self._image
            if self._jpeg is not None and self._jpeg[0] == seq:
                return self._jpeg
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.cfg.jpeg_quality])
        if not ok:
            return None
        with self._cond:
            self._jpeg = (seq, buf.tobytes())
            return self._jpeg

    @property
    def closing(self) -> bool:
        return self._closing

    def _count_viewer(self, delta: int) -> None:
        with self._cond:
            self.viewers += delta


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _Handler(BaseHTTPRequestHandler):
    """HTTP requests of the MJPEG server (``stream`` is set on a subclass per server)."""

    stream: MjpegServer
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/":
            body = (b"<!doctype html><title>fer-edge preview</title>"
                    b"<body style='margin:0;background:#111'><img src='/stream' style='max-width:100%'></body>")
            self._reply(200, "text/html; charset=utf-8", body)
        elif path == "/snapshot.jpg":
            frame = self.stream.jpeg(after=self.stream._seq - 1, timeout=2.0)
            if frame is None:
                self._reply(503, "text/plain", b"no frame yet\n")
            else:
                self._reply(200, "image/jpeg", frame[1])
        elif path == "/stream":
            self._stream()
        else:
            self._reply(404, "text/plain", b"not found: try / or /stream or /snapshot.jpg\n")

    def _reply(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.stream._count_viewer(+1)
        seq, interval, last = self.stream._seq - 1, 1.0 / self.stream.cfg.max_fps, 0.0
        try:
            while not self.stream.closing:
                frame = self.stream.jpeg(after=seq, timeout=1.0)
                if frame is None:
                    continue
                seq, data = frame
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                                 .encode() + data + b"\r\n")
                self.wfile.flush()
                wait = interval - (time.monotonic() - last)
                if wait > 0:
                    time.sleep(wait)                  # rate limit per viewer
                last = time.monotonic()
        except (BrokenPipeError, ConnectionResetError):
            pass                                      # the viewer went away
        finally:
            self.stream._count_viewer(-1)

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("mjpeg %s: " + fmt, self.client_address[0], *args)
