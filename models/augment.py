"""Training-time augmentation of 48x48 face crops, in NumPy and OpenCV (no framework).

Runs on the CPU beside any Keras backend (TensorFlow here, PyTorch on a GPU machine), seeded per
batch so that a resumed run sees the very batches an uninterrupted run would. Two families:

- **geometry and light** (1.0.0's recipe): mirror, rotation, shift, zoom in one affine warp with
  mirrored borders; contrast and brightness; one random occluding rectangle;
- **camera degradation** (3.0): the face as a shop camera sees it. A crop from a face N px wide in
  the frame holds about 1.1 N source pixels across (the aligner puts the eyes 0.365 of the crop
  apart; they are about 0.41 of the face box apart), so the crop is shrunk to that many pixels, blurred (lens, motion), given sensor noise and JPEG-compressed at
  stream qualities, then enlarged back to 48 px as the runtime's aligner does (bilinear).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIZE = 48


@dataclass(frozen=True)
class Augment:
    """Strength of each augmentation; the recipe's ``augment:`` section."""

    flip: bool = True
    rotate_deg: float = 15.0
    shift: float = 0.1
    zoom: tuple[float, float] = (-0.1, 0.15)
    contrast: float = 0.3
    brightness: float = 0.2
    erase_p: float = 0.4
    degrade_p: float = 0.0               # share of faces given camera degradation
    degrade_px: tuple[int, int] = (18, 44)   # source px across the crop: faces ~16-40 px wide
    blur_sigma: tuple[float, float] = (0.0, 1.0)
    noise_sigma: tuple[float, float] = (0.0, 6.0)
    jpeg_quality: tuple[int, int] = (35, 95)


def geometry_light(face: np.ndarray, rng: np.random.Generator, a: Augment) -> np.ndarray:
    """Mirror, rotation, shift and zoom (one warp, mirrored borders), then contrast and brightness."""
    img = face[:, ::-1] if a.flip and rng.random() < 0.5 else face
    angle = rng.uniform(-a.rotate_deg, a.rotate_deg)
    scale = 1.0 / (1.0 + rng.uniform(*a.zoom))          # zoom > 0 shows less of the face's surroundings
    m = cv2.getRotationMatrix2D((SIZE / 2 - 0.5, SIZE / 2 - 0.5), angle, 1.0 / scale)
    m[:, 2] += rng.uniform(-a.shift, a.shift, 2) * SIZE
    out = cv2.warpAffine(np.ascontiguousarray(img), m, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
    c = 1.0 + rng.uniform(-a.contrast, a.contrast)
    mean = out.mean()
    out = (out - mean) * c + mean + rng.uniform(-a.brightness, a.brightness) * 255.0
    return np.clip(out, 0, 255)


def degrade(face: np.ndarray, rng: np.random.Generator, a: Augment) -> np.ndarray:
    """The crop of a small, soft, noisy, JPEG-streamed face: shrink, blur, noise, JPEG, enlarge back."""
    px = int(rng.integers(a.degrade_px[0], a.degrade_px[1] + 1))
    small = cv2.resize(np.clip(face, 0, 255).astype(np.uint8), (px, px), interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(*a.blur_sigma)
    img = small.astype(np.float32)
    if sigma > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0.0, rng.uniform(*a.noise_sigma), img.shape).astype(np.float32)
    q = int(rng.integers(a.jpeg_quality[0], a.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else np.clip(img, 0, 255).astype(np.uint8)
    return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def erase_box(rng: np.random.Generator) -> tuple[int, int, int, int, int]:
    """One random occluding rectangle (hand, glasses, scarf): (y, x, h, w, grey value)."""
    h, w = (int(v) for v in rng.integers(8, 20, 2))
    y, x = int(rng.integers(0, SIZE - h)), int(rng.integers(0, SIZE - w))
    return y, x, h, w, int(rng.integers(0, 255))


def erase(face: np.ndarray, box: tuple[int, int, int, int, int]) -> np.ndarray:
    """``face`` with the rectangle ``box`` (from erase_box) painted over."""
    y, x, h, w, value = box
    face = face.copy()
    face[y:y + h, x:x + w] = value
    return face


def augment_one(face: np.ndarray, rng: np.random.Generator, a: Augment) -> tuple[np.ndarray, np.ndarray]:
    """(the face as training shows it, the same view without the camera degradation).

    The second is what a teacher reading the clean view sees: the same warp, light and occlusion.
    """
    img = geometry_light(face, rng, a)
    clean = img
    if a.degrade_p and rng.random() < a.degrade_p:
        img = degrade(img, rng, a)
    if a.erase_p and rng.random() < a.erase_p:
        box = erase_box(rng)
        img, clean = erase(img, box), erase(clean, box)
    return img, clean


def augment_batch(faces: np.ndarray, rng: np.random.Generator, a: Augment, clean_view: bool = False) -> np.ndarray:
    """(B, 48, 48) uint8 -> (B, 48, 48, 1) float32 0..255, each face augmented independently.

    ``clean_view``: (B, 48, 48, 2), channel 1 the same faces without the camera degradation (for a
    live teacher that reads the clean view while the student learns from the degraded one); channel 0
    is then exactly what the call without it gives.
    """
    out = np.empty((len(faces), SIZE, SIZE, 2 if clean_view else 1), np.float32)
    for i, face in enumerate(faces):
        img, clean = augment_one(face, rng, a)
        out[i, :, :, 0] = img
        if clean_view:
            out[i, :, :, 1] = clean
    return out
