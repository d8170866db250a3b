"""Backend: the built-in demo clip (``source.uri: demo``, ``fer-edge run --demo``), made at run time from one photograph.

The photograph is NASA's public-domain portrait of the astronaut Eileen Collins (the copy
scikit-image ships as ``skimage/data/astronaut.png``; provenance in ``demo_data/NOTICE`` beside
it). The clip is a camera-like 640x480 picture at 25 frames a second, 12 s long: a person walks in
from the left and steps closer, a second person (the mirrored photograph) walks in from the right
part way, both leave, and the last seconds are empty, so that a run sees faces appear, be tracked
and leave. It plays like a video file: media time, ``source.pace`` and ``source.loop`` apply, and
it ends after its last frame (``fer-edge run`` then stops with exit code 0).

Frames are drawn when asked (a few milliseconds each), never stored: the clip as raw pixels
would be hundreds of megabytes, and a video file of it a second asset to ship. Every frame is a
pure function of its index (the sensor noise is seeded), so two runs produce the same events.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from edge.config.source import SourceConfig
from edge.sources.base import SourceError

FPS = 25.0
WIDTH, HEIGHT = 640, 480
DURATION_S = 12.0
PHOTO = "demo_data/astronaut.jpg"          # inside this package; its NOTICE is beside it

# The 512x512 photograph: where its face is (BlazeFace's box: x 178-272, y 81-175), and the
# head-and-shoulders cut-out taken from it, in photograph pixels.
_FACE_WIDTH = 94.0
_CUT = (95, 0, 355, 340)                   # x0, y0, x1, y1
_FACE_IN_CUT = (130.0, 128.0)              # face centre inside the cut-out
_NOISE_MARGIN = 32


@dataclass(frozen=True)
class Key:
    """Where one person's face is at time ``t``: centre (x, y) and width, in frame pixels."""

    t: float
    x: float
    y: float
    width: float


@dataclass(frozen=True)
class Sprite:
    """A cut-out (BGR float32), its soft mask (float32 0..1) and where the face centre is in it."""

    pixels: np.ndarray
    alpha: np.ndarray
    face: tuple[float, float]


# Face widths stay within 120-160 px of the 640 px frame: large enough for BlazeFace short-range
# (faces down to about 1/7 of the frame's longer side), not so large that far-face detectors
# (BlazeFace full-range, YuNet) miss them, and far above the quality gate's 40 px.
PEOPLE: tuple[tuple[bool, tuple[Key, ...]], ...] = (
    (False, (Key(0.8, -170, 200, 120), Key(3.0, 210, 200, 120), Key(5.0, 200, 210, 160),
             Key(7.5, 215, 205, 160), Key(9.0, -230, 205, 160))),            # the photograph, from the left
    (True, (Key(4.5, 830, 215, 130), Key(6.0, 470, 215, 130), Key(9.0, 460, 215, 135),
            Key(10.5, 850, 215, 135))),                                      # its mirror image, from the right
)


def as_demo(cfg: SourceConfig) -> SourceConfig:
    """``cfg`` turned into the demo (``--demo``): played once at its frame rate, as a camera would deliver it."""
    return cfg.model_copy(update={"uri": "demo", "kind": "demo", "pace": True, "loop": False})


def frame_count() -> int:
    """Frames in the clip."""
    return int(round(DURATION_S * FPS))


def position(keys: tuple[Key, ...], t: float) -> Key | None:
    """The face's place at time ``t`` (eased between key frames), or None outside its keys."""
    if t < keys[0].t or t > keys[-1].t:
        return None
    for a, b in zip(keys, keys[1:]):
        if a.t <= t <= b.t:
            u = (t - a.t) / (b.t - a.t)
            u = u * u * (3.0 - 2.0 * u)          # smoothstep: people start and stop gently
            return Key(t, a.x + (b.x - a.x) * u, a.y + (b.y - a.y) * u, a.width + (b.width - a.width) * u)
    return keys[-1]


def render(index: int) -> np.ndarray:
    """Frame ``index`` of the clip (BGR uint8, HEIGHT x WIDTH)."""
    t = index / FPS
    canvas = _background().copy()
    plain, mirrored = _sprites()
    for is_mirror, keys in PEOPLE:
        key = position(keys, t)
        if key is not None:
            _paste(canvas, mirrored if is_mirror else plain, key)
    # a little sensor noise, the same for the same frame every run: a window into one seeded
    # field, shifted per frame (drawing fresh noise would cost more than the rest of the frame)
    dy, dx = divmod(index * 7, _NOISE_MARGIN)
    canvas += _noise()[dy % _NOISE_MARGIN:dy % _NOISE_MARGIN + HEIGHT, dx:dx + WIDTH]
    return np.clip(canvas, 0, 255, out=canvas).astype(np.uint8)


class DemoBackend:
    """The demo clip as a source backend: like a video file (media time, ends after the last frame)."""

    live = False

    def __init__(self) -> None:
        self.fps: float | None = FPS
        self.pos = 0

    def open(self) -> None:
        _sprites()              # a damaged install says so at open time, as a missing file would
        self.pos = 0

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        if self.pos >= frame_count():
            return None
        image, ts = render(self.pos), self.pos / FPS
        self.pos += 1
        return image, ts, None

    def release(self) -> None:
        self.pos = frame_count()


@lru_cache(maxsize=1)
def _sprites() -> tuple[Sprite, Sprite]:
    """The head-and-shoulders cut-out of the photograph, and its mirror image."""
    import cv2

    try:
        data = resources.files("edge.sources").joinpath(PHOTO).read_bytes()
    except OSError as exc:
        raise SourceError(f"demo: the photograph edge/sources/{PHOTO} is missing ({exc.strerror or exc}): "
                          "reinstall fer-edge") from None
    photo = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if photo is None:
        raise SourceError(f"demo: the photograph edge/sources/{PHOTO} is not a readable image: reinstall fer-edge")
    x0, y0, x1, y1 = _CUT
    cut = photo[y0:y1, x0:x1].astype(np.float32)
    h, w = cut.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    # head and shoulders: an ellipse reaching the cut-out's top and bottom, with a soft edge
    cv2.ellipse(alpha, (w // 2, h * 3 // 5), (w // 2 - 6, h * 3 // 5 - 4), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 6)
    fx, fy = _FACE_IN_CUT
    return (Sprite(cut, alpha, (fx, fy)),
            Sprite(np.ascontiguousarray(cut[:, ::-1]), np.ascontiguousarray(alpha[:, ::-1]), (w - fx, fy)))


@lru_cache(maxsize=1)
def _background() -> np.ndarray:
    """A plain wall: a soft vertical gradient, warmer at the bottom (float32 BGR)."""
    rows = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    top, bottom = np.array([150, 140, 128], np.float32), np.array([110, 120, 138], np.float32)
    return np.broadcast_to(top + (bottom - top) * rows, (HEIGHT, WIDTH, 3)).copy()


@lru_cache(maxsize=1)
def _noise() -> np.ndarray:
    shape = (HEIGHT + _NOISE_MARGIN, WIDTH + _NOISE_MARGIN, 1)
    return np.random.default_rng(17).normal(0.0, 2.0, shape).astype(np.float32)


def _paste(canvas: np.ndarray, sprite: Sprite, key: Key) -> None:
    """Blend a cut-out, scaled so that its face is ``key.width`` wide, into ``canvas`` with the face at ``key``."""
    import cv2

    s = key.width / _FACE_WIDTH
    h, w = sprite.alpha.shape
    ox, oy = key.x - sprite.face[0] * s, key.y - sprite.face[1] * s        # cut-out's top left in the frame
    x0, y0 = max(0, int(np.floor(ox))), max(0, int(np.floor(oy)))
    x1, y1 = min(WIDTH, int(np.ceil(ox + w * s))), min(HEIGHT, int(np.ceil(oy + h * s)))
    if x1 <= x0 or y1 <= y0:
        return
    # only the region it covers: scale, then shift into the region's own coordinates
    m = np.array([[s, 0.0, ox - x0], [0.0, s, oy - y0]], np.float32)
    size = (x1 - x0, y1 - y0)
    pic = cv2.warpAffine(sprite.pixels, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(sprite.alpha, m, size, flags=cv2.INTER_LINEAR, borderValue=0.0)[:, :, None]
    region = canvas[y0:y1, x0:x1]
    region += (pic - region) * a
