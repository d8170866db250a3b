"""MediaPipe BlazeFace short-range face detector (TFLite): boxes plus 6 landmarks.

The model takes a 128x128 RGB image scaled to [-1, 1] and returns, for each of 896 fixed SSD
anchors, 16 regressors (box centre/size and 6 keypoints, in input pixels relative to the
anchor) and one logit. Decoding follows MediaPipe's face_detection_short_range graph:
anchors from strides 8,16,16,16; sigmoid scores; weighted non-maximum suppression.
"""
from __future__ import annotations


import numpy as np
from edge.config.detector import CommonDetectorOptions
from edge.config.detectors.blazeface import BlazeFaceOptions
from edge.detect.base import keep_largest
from edge.detect.fetched import BLAZEFACE_SHORT, FetchedModel, resolve_model_path
from edge.geometry import iou, iou_many
from edge.interpreter import ModelError, open_interpreter, sha256_file
from edge.types import Detection

# MediaPipe's keypoint order; "right"/"left" are the subject's (right eye is on the image's left).
LANDMARKS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


def ssd_anchors(size: int, layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Anchor centres (x, y) in 0..1, in the order of the model's outputs: (stride, anchors per cell) per grid."""
    out = []
    for stride, per_cell in layers:
        n = size // stride
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


class BlazeFaceDetector:
    """BlazeFace short-range on the TFLite interpreter; ``detect(bgr) -> [Detection]`` with 6 landmarks each.

    The full-range model (edge/detect/blazeface_full.py) is the same decoder with another input
    size, anchor grid and pinned file: it overrides the class attributes and ``tile_sizes``.
    """

    INPUT = 128
    # strides 8,16,16,16: layers sharing a stride share a grid (2 and 6 anchors per cell)
    ANCHORS = ssd_anchors(128, ((8, 2), (16, 6)))
    MODEL: FetchedModel = BLAZEFACE_SHORT
    NAME = "short-range"

    def __init__(self, opts: BlazeFaceOptions | None = None, common: CommonDetectorOptions | None = None) -> None:
        self.opts = opts or BlazeFaceOptions()
        self.common = common or CommonDetectorOptions()
        path = resolve_model_path(self.MODEL, self.opts.model_path)
        digest = sha256_file(path)
        if self.opts.verify_sha256 and digest != self.MODEL.sha256:
            raise ModelError(f"{path}: sha256 {digest[:12]}... is not the pinned BlazeFace model "
                             f"({self.NAME}, {self.MODEL.sha256[:12]}...); corrupt or replaced: re-run "
                             "`python deploy/fetch_models.py --force`")
        self.interp = open_interpreter(path, self.opts.threads)
        size, n = self.INPUT, len(self.ANCHORS)
        inp = self.interp.get_input_details()[0]
        if tuple(inp["shape"]) != (1, size, size, 3):
            raise ModelError(f"{path}: input shape {tuple(inp['shape'])}, expected (1, {size}, {size}, 3) "
                             f"for BlazeFace {self.NAME}")
        self._in = inp["index"]
        outs = {tuple(o["shape"]): o["index"] for o in self.interp.get_output_details()}
        try:
            self._reg, self._cls = outs[(1, n, 16)], outs[(1, n, 1)]
        except KeyError:
            raise ModelError(f"{path}: outputs {list(outs)} are not BlazeFace {self.NAME}'s (1,{n},16) and "
                             f"(1,{n},1)") from None
        sizes = self.tile_sizes()
        self.detector_id = f"blazeface-{self.NAME}@{digest[:8]}" + \
            ("+tiles" + "-".join(map(str, sizes)) if sizes else "")
        self._tensor = np.zeros((1, size, size, 3), np.float32)

    def tile_sizes(self) -> list[int]:
        """Sides of the tiles searched besides the whole frame."""
        return [self.opts.tile_px] if self.opts.tile_px else []

    def refine_below(self) -> float:
        """Faces narrower than this share of the frame's longer side are searched again around themselves."""
        return self.opts.refine_below

    def _letterbox(self, image: np.ndarray) -> tuple[float, float, float]:
        """Resize ``image`` into the square input keeping its aspect (centred, zero-padded).

        Returns (scale, pad_x, pad_y) mapping input pixels back: x_img = (x_in - pad_x) / scale.
        """
        import cv2  # kept out of module import: config loading must not load OpenCV

        h, w = image.shape[:2]
        size = self.INPUT
        scale = size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        px, py = (size - nw) // 2, (size - nh) // 2
        t = self._tensor
        t.fill(0.0)   # 0 is mid-grey after [-1, 1] scaling, as MediaPipe pads
        # BGR -> RGB and [0,255] -> [-1,1] in one step, written straight into the input tensor
        t[0, py:py + nh, px:px + nw] = small[..., ::-1].astype(np.float32) * (1 / 127.5) - 1.0
        return scale, float(px), float(py)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR uint8 image, largest first, with right/left eye, nose, mouth, right/left ear."""
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        found = self._detect_region(image)
        h, w = image.shape[:2]
        sizes = [t for t in self.tile_sizes() if max(h, w) > t]
        for tile in sizes:
            for x0, y0, x1, y1 in tiles(w, h, tile):
                for score, box, pts in self._detect_region(image[y0:y1, x0:x1]):
                    box, pts = box + (x0, y0, 0, 0), pts + (x0, y0)
                    # a face cut by an inner tile edge is whole in a neighbouring tile (they overlap)
                    if not _touches_inner_edge(box, (x0, y0, x1, y1), w, h):
                        found.append((score, box, pts))
        if sizes:
            found = _best_per_face(found, self.opts.nms_iou)
        small = self.refine_below() * max(h, w)
        found = [self._refined(image, f) if f[1][2] < small else f for f in found]
        dets = [Detection(box=tuple(float(v) for v in box), score=float(score),
                          landmarks={name: (float(pts[i, 0]), float(pts[i, 1])) for i, name in enumerate(LANDMARKS)})
                for score, box, pts in found]
        return keep_largest(dets, self.common)

    def _refined(self, image: np.ndarray, face: tuple) -> tuple:
        """``face`` (score, box, keypoints) as a second run sees it in a patch around it, or as it is.

        Near the bottom of the model's range (a face ~13-25 px in the 128 px input) boxes come out ~25%
        too wide and keypoints a few frame pixels off, enough to misalign a 64 px face; in a patch a
        few times its size the face fills the input, the range the model was trained for.
        """
        box = face[1]
        h, w = image.shape[:2]
        half = self.opts.refine_patch * max(box[2], box[3]) / 2
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        x0, y0 = max(0, int(round(cx - half))), max(0, int(round(cy - half)))
        x1, y1 = min(w, int(round(cx + half))), min(h, int(round(cy + half)))
        best, best_iou = face, 0.3             # the same face: overlapping the first box by more than this
        for score, b, pts in self._detect_region(image[y0:y1, x0:x1]):
            b, pts = b + (x0, y0, 0, 0), pts + (x0, y0)
            overlap = iou(box, b)
            if overlap > best_iou:
                best, best_iou = (score, b, pts), overlap
        return best

    def _detect_region(self, image: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """One model run on ``image``: (score, box xywh, 6x2 keypoints) per face, in ``image`` pixels."""
        scale, px, py = self._letterbox(image)
        self.interp.set_tensor(self._in, self._tensor)
        self.interp.invoke()
        logits = self.interp.get_tensor(self._cls)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = np.nonzero(scores >= self.common.min_score)[0]
        if keep.size == 0:
            return []
        size = self.INPUT
        raw = self.interp.get_tensor(self._reg)[0][keep] / size
        anc = self.ANCHORS[keep]
        pts = raw[:, 4:].reshape(-1, 6, 2) + anc[:, None, :]            # keypoints, 0..1 of the input
        cx, cy = raw[:, 0] + anc[:, 0], raw[:, 1] + anc[:, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, raw[:, 2], raw[:, 3]], axis=1)
        out = []
        for score, box, kp in weighted_nms(scores[keep], boxes, pts, self.opts.nms_iou):
            box = box * size
            box = np.array([(box[0] - px) / scale, (box[1] - py) / scale, box[2] / scale, box[3] / scale])
            out.append((score, box, (kp * size - (px, py)) / scale))
        return out


def tiles(width: int, height: int, tile: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Square tiles (x0, y0, x1, y1) of side ``tile`` covering the frame, neighbours overlapping by ``overlap``."""
    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        n = int(np.ceil((length - tile) / (tile * (1 - overlap)))) + 1
        return [round(i * (length - tile) / (n - 1)) for i in range(n)]
    return [(x, y, min(width, x + tile), min(height, y + tile)) for y in starts(height) for x in starts(width)]


def _touches_inner_edge(box: np.ndarray, region: tuple[int, int, int, int], width: int, height: int) -> bool:
    x, y, w, h = box
    x0, y0, x1, y1 = region
    margin = 2.0
    return bool((x0 > 0 and x < x0 + margin) or (y0 > 0 and y < y0 + margin)
                or (x1 < width and x + w > x1 - margin) or (y1 < height and y + h > y1 - margin))


def _best_per_face(found: list[tuple[float, np.ndarray, np.ndarray]], iou: float) -> list:
    """Hard NMS across passes: where passes saw the same face, keep the surest sighting."""
    found = sorted(found, key=lambda f: -f[0])
    kept: list = []
    boxes = np.array([f[1] for f in found]).reshape(-1, 4)
    alive = np.ones(len(found), bool)
    for i, f in enumerate(found):
        if alive[i]:
            kept.append(f)
            alive &= iou_many(boxes[i], boxes) <= iou
    return kept


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, points: np.ndarray,
                 iou: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's weighted NMS: each cluster of overlapping anchors becomes their score-weighted mean.

    Averaging (instead of keeping the single best anchor) steadies boxes and landmarks, which
    matters for alignment. Returns (score of the best anchor, box xywh, keypoints) per face.
    """
    order = np.argsort(-scores)
    scores, boxes, points = scores[order], boxes[order], points[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        members = alive & (iou_many(boxes[i], boxes) > iou)
        members[i] = True
        alive &= ~members
        w = scores[members][:, None]
        box = (boxes[members] * w).sum(0) / w.sum()
        pts = (points[members] * w[:, :, None]).sum(0) / w.sum()
        out.append((float(scores[i]), box, pts))
    return out
