"""Person and vehicle detection with ONNX Runtime on the CPU.

    spec = load_spec("nanodet")            # or a user's YOLOv8/YOLOv5/SSD export + YAML spec
    detector = Detector(spec, threads=1)   # DetectorError if the file is missing or unusable
    for d in detector.detect(image_bgr):   # H x W x 3 uint8, any size
        print(d.class_name, d.confidence, d.box)   # box: x1, y1, x2, y2 in image pixels

One pass is: scale the image to the model's input (swscale through PyAV: letterbox or
stretch, colour order, normalisation), run the session, decode the model's output layout
into candidate boxes (NanoDet GFL/DFL head, YOLOv5, YOLOv8, SSD), apply the per-class
thresholds, non-maximum suppression per class, and map the boxes back to the image.
Only person, bicycle, car, motorcycle, bus and truck are reported unless told otherwise.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from citywatch.analytics.models import (
    BUILD_HINT,
    COCO80,
    DEFAULT_CLASSES,
    VEHICLES,
    ModelSpec,
    ModelSpecError,
    load_spec,
)
from citywatch.analytics.types import Box, Detection

__all__ = [
    "Detection",
    "Detector",
    "DetectorError",
    "Timing",
    "batched_nms",
    "load_detector",
    "nms",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

DEFAULT_THRESHOLD = 0.35
DEFAULT_IOU = 0.5
MAX_CANDIDATES = 3000  # best-scoring candidates kept for NMS


@dataclass(frozen=True, slots=True)
class Timing:
    """Milliseconds spent in each step of the last ``detect`` call."""

    prepare_ms: float
    infer_ms: float
    decode_ms: float

    @property
    def total_ms(self) -> float:
        return self.prepare_ms + self.infer_ms + self.decode_ms


class DetectorError(RuntimeError):
    """The model cannot be used: missing, corrupt, or not what its spec says."""


@dataclass(frozen=True, slots=True)
class Candidates:
    """Decoded boxes before NMS: model-input pixels, score, model class index."""

    boxes: FloatArray  # (n, 4) x1, y1, x2, y2
    scores: FloatArray  # (n,)
    labels: IntArray  # (n,)

    @staticmethod
    def empty() -> Candidates:
        return Candidates(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        )


Outputs = Mapping[str, npt.NDArray[Any]]
Decoder = Callable[[Outputs, ModelSpec, FloatArray], Candidates]


# decoders ------------------------------------------------------------------------------
def _above(scores: FloatArray, thresholds: FloatArray) -> tuple[IntArray, IntArray]:
    """(row, class) of every score at or above its class threshold."""
    rows, cols = np.nonzero(scores >= thresholds[None, : scores.shape[1]])
    return rows.astype(np.int64), cols.astype(np.int64)


def _check_classes(n: int, spec: ModelSpec, what: str) -> None:
    if n != len(spec.classes):
        raise DetectorError(
            f"{spec.path}: the {what} has {n} classes but the spec names {len(spec.classes)}"
        )


def _xywh_to_xyxy(b: FloatArray) -> FloatArray:
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1).astype(np.float32)


def decode_nanodet(outputs: Outputs, spec: ModelSpec, thresholds: FloatArray) -> Candidates:
    """NanoDet GFL head: per level, scores (1, HW, C) after sigmoid and box distributions
    (1, HW, 4 * (R + 1)): softmax over the R + 1 bins, expectation = distance in strides
    from the cell centre ((col + 0.5) * stride, (row + 0.5) * stride) to the left, top,
    right and bottom edges. A class may fire on several cells and one cell on several
    classes (multi-label, as NanoDet does); NMS sorts that out."""
    levels: dict[int, dict[str, npt.NDArray[Any]]] = {}
    n_classes = len(spec.classes)
    for value in outputs.values():
        if value.ndim != 3 or value.shape[0] != 1:
            raise DetectorError(f"{spec.path}: NanoDet output of shape {value.shape}")
        kind = "scores" if value.shape[2] == n_classes else "dist"
        levels.setdefault(value.shape[1], {})[kind] = value[0]
    area = spec.width * spec.height
    parts: list[Candidates] = []
    for n, pair in sorted(levels.items(), reverse=True):
        if set(pair) != {"scores", "dist"} or pair["dist"].shape[1] % 4:
            raise DetectorError(
                f"{spec.path}: NanoDet outputs must pair (1, N, {n_classes}) scores with "
                f"(1, N, 4*bins) distributions; got {sorted(pair)} for N={n}"
            )
        stride = math.sqrt(area / n)
        if spec.strides:
            stride = float(min(spec.strides, key=lambda s: abs(s - stride)))
        grid_w = round(spec.width / stride)
        if grid_w * round(spec.height / stride) != n:
            raise DetectorError(f"{spec.path}: NanoDet level of {n} cells fits no stride")
        rows, cols = _above(pair["scores"].astype(np.float32, copy=False), thresholds)
        if rows.size == 0:
            continue
        cells = np.unique(rows)
        dist = pair["dist"][cells].astype(np.float32).reshape(len(cells), 4, -1)
        dist = np.exp(dist - dist.max(axis=2, keepdims=True))
        dist /= dist.sum(axis=2, keepdims=True)
        ltrb = (dist @ np.arange(dist.shape[2], dtype=np.float32)) * stride  # (cells, 4)
        cx = ((cells % grid_w).astype(np.float32) + 0.5) * stride
        cy = ((cells // grid_w).astype(np.float32) + 0.5) * stride
        boxes = np.stack(
            [cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], axis=1
        )
        where = np.searchsorted(cells, rows)
        parts.append(Candidates(boxes[where], pair["scores"][rows, cols], cols))
    return _concat(parts)


def decode_yolov5(outputs: Outputs, spec: ModelSpec, thresholds: FloatArray) -> Candidates:
    """YOLOv5 (and v7, YOLOX-style) (1, N, 5 + C): cx, cy, w, h, objectness, class scores;
    score = objectness * class score."""
    out = _single(outputs, spec)
    if out.ndim == 2:
        out = out[None]
    if out.ndim != 3 or out.shape[2] < 6:
        raise DetectorError(f"{spec.path}: YOLOv5 output must be (1, N, 5 + C), not {out.shape}")
    pred = out[0].astype(np.float32, copy=False)
    _check_classes(pred.shape[1] - 5, spec, "YOLOv5 output")
    obj = pred[:, 4]
    pre = obj >= float(thresholds.min())
    pred = pred[pre]
    scores = pred[:, 5:] * pred[:, 4:5]
    rows, cols = _above(scores, thresholds)
    boxes = _xywh_to_xyxy(pred[rows, :4])
    return Candidates(_denormalise(boxes, spec), scores[rows, cols], cols)


def decode_yolov8(outputs: Outputs, spec: ModelSpec, thresholds: FloatArray) -> Candidates:
    """YOLOv8/v11 (1, 4 + C, N): cx, cy, w, h and class scores, no objectness. A
    (1, N, 4 + C) output (transposed export) is accepted too."""
    out = _single(outputs, spec)
    if out.ndim != 3 or out.shape[0] != 1:
        raise DetectorError(f"{spec.path}: YOLOv8 output must be (1, 4 + C, N), not {out.shape}")
    pred = out[0]
    n_classes = len(spec.classes)
    if pred.shape[0] == 4 + n_classes and pred.shape[1] != 4 + n_classes:
        pred = pred.T
    elif pred.shape[1] != 4 + n_classes:
        raise DetectorError(
            f"{spec.path}: YOLOv8 output {out.shape} does not hold 4 + {n_classes} channels"
        )
    pred = pred.astype(np.float32, copy=False)
    scores = pred[:, 4:]
    rows, cols = _above(scores, thresholds)
    boxes = _xywh_to_xyxy(pred[rows, :4])
    return Candidates(_denormalise(boxes, spec), scores[rows, cols], cols)


def decode_ssd(outputs: Outputs, spec: ModelSpec, thresholds: FloatArray) -> Candidates:
    """TF Object Detection API style: boxes (1, N, 4) as ymin, xmin, ymax, xmax normalised
    to the input, scores (1, N), classes (1, N) and optionally a count (1,)."""
    named = {name.split(":")[0]: value for name, value in outputs.items()}
    roles = spec.ssd_outputs
    try:
        boxes = np.asarray(named[roles["boxes"]], np.float32).reshape(-1, 4)
        scores = np.asarray(named[roles["scores"]], np.float32).reshape(-1)
        labels = np.asarray(named[roles["classes"]]).reshape(-1)
    except KeyError as exc:
        raise DetectorError(
            f"{spec.path}: SSD output {exc.args[0]!r} not found; the model has "
            f"{sorted(outputs)} (set ssd_outputs in the spec)"
        ) from None
    if not boxes.shape[0] == scores.shape[0] == labels.shape[0]:
        raise DetectorError(f"{spec.path}: SSD boxes, scores and classes differ in length")
    count = named.get(roles.get("count", ""))
    if count is not None and count.size:
        n = int(np.asarray(count).reshape(-1)[0])
        boxes, scores, labels = boxes[:n], scores[:n], labels[:n]
    idx = np.rint(labels).astype(np.int64) + spec.class_offset
    valid = (idx >= 0) & (idx < len(spec.classes))
    boxes, scores, idx = boxes[valid], scores[valid], idx[valid]
    keep = scores >= thresholds[idx]
    boxes, scores, idx = boxes[keep], scores[keep], idx[keep]
    xyxy = boxes[:, [1, 0, 3, 2]] * np.array(
        [spec.width, spec.height, spec.width, spec.height], np.float32
    )
    return Candidates(xyxy.astype(np.float32), scores, idx)


DECODERS: dict[str, Decoder] = {
    "nanodet": decode_nanodet,
    "yolov5": decode_yolov5,
    "yolov8": decode_yolov8,
    "ssd": decode_ssd,
}


def _single(outputs: Outputs, spec: ModelSpec) -> npt.NDArray[Any]:
    if len(outputs) != 1:
        raise DetectorError(
            f"{spec.path}: layout {spec.layout} expects one output, the model has "
            f"{len(outputs)}: {sorted(outputs)}"
        )
    return next(iter(outputs.values()))


def _denormalise(boxes: FloatArray, spec: ModelSpec) -> FloatArray:
    if spec.normalised_boxes:
        return boxes * np.array([spec.width, spec.height, spec.width, spec.height], np.float32)
    return boxes


def _concat(parts: list[Candidates]) -> Candidates:
    if not parts:
        return Candidates.empty()
    return Candidates(
        np.concatenate([p.boxes for p in parts]).astype(np.float32),
        np.concatenate([p.scores for p in parts]).astype(np.float32),
        np.concatenate([p.labels for p in parts]).astype(np.int64),
    )


# NMS -------------------------------------------------------------------------------------
def nms(boxes: FloatArray, scores: FloatArray, iou: float) -> IntArray:
    """Greedy non-maximum suppression: indices of the boxes kept, best first."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-9), 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def batched_nms(boxes: FloatArray, scores: FloatArray, labels: IntArray, iou: float) -> IntArray:
    """NMS within each class only (boxes of different classes never suppress each other)."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    span = float(boxes.max() - min(float(boxes.min()), 0.0)) + 1.0
    shifted = boxes + (labels.astype(np.float32) * span)[:, None]
    return nms(shifted, scores, iou)


# the detector --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Placement:
    """Where the source image lies in the model input: input = source * scale + pad."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    width: int
    height: int


class Detector:
    """An ONNX detection model on ONNX Runtime, ready to run. Loading checks the file
    (present, the recorded sha256, a loadable ONNX graph, the input size of the spec) and
    runs it once, so that a wrong layout fails here and not on the first camera frame.

    ``classes``: what is reported (names or COCO ids); by default the keys of
    ``thresholds`` when given, else person and road vehicles. ``thresholds``: minimum
    confidence per class name, ``threshold`` for the others. NMS runs per class; with
    ``merge_vehicles`` the vehicle classes count as one, so a vehicle seen as both a bus
    and a truck is reported once, as the more confident of the two."""

    def __init__(
        self,
        spec: ModelSpec,
        threads: int = 1,
        *,
        classes: Iterable[str | int] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        iou: float = DEFAULT_IOU,
        max_detections: int = 100,
        merge_vehicles: bool = True,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.spec = spec
        self.threads = threads
        self.iou = iou
        self.max_detections = max_detections
        self._decode = DECODERS[spec.layout]
        self._names = spec.classes
        self._coco_ids = [COCO80.index(n) if n in COCO80 else i for i, n in enumerate(spec.classes)]
        self.thresholds = self._class_thresholds(classes, threshold, thresholds or {})
        # NMS groups: each class alone, or all vehicle classes as one when merging them.
        vehicle_group = len(spec.classes)
        self._nms_group = np.asarray(
            [
                vehicle_group if merge_vehicles and n in VEHICLES else i
                for i, n in enumerate(spec.classes)
            ],
            np.int64,
        )
        self._session = _open_session(spec, threads, providers)
        self._input = self._session.get_inputs()[0]
        self._input_uint8 = self._input.type == "tensor(uint8)"
        if self._input.type not in ("tensor(float)", "tensor(uint8)"):
            raise DetectorError(
                f"{spec.path}: input {self._input.name} is {self._input.type}; "
                "float32 and uint8 inputs are supported"
            )
        self._check_input_shape()
        self._output_names = [o.name for o in self._session.get_outputs()]
        mul = np.float32(spec.scale) / np.asarray(spec.std, np.float32)
        add = -np.asarray(spec.mean, np.float32) / np.asarray(spec.std, np.float32)
        self._mul, self._add = mul, add
        self._plain_scale = bool(np.all(add == 0) and np.all(mul == mul[0]))
        self.last_timing = Timing(0.0, 0.0, 0.0)
        self._warm_up()
        logger.info(
            "detector %s (%s, %dx%d) loaded from %s, %d thread(s), %.0f ms a pass",
            spec.name, spec.layout, spec.width, spec.height, spec.path, threads,
            self.last_timing.total_ms,
        )  # fmt: skip

    # setup -----------------------------------------------------------------------------
    def _class_thresholds(
        self,
        classes: Iterable[str | int] | None,
        threshold: float,
        per_class: Mapping[str, float],
    ) -> FloatArray:
        if classes is None:
            classes = list(per_class) if per_class else list(DEFAULT_CLASSES)
        wanted: set[str] = set()
        for c in classes:
            if isinstance(c, int):
                if not 0 <= c < len(COCO80):
                    raise ValueError(f"unknown COCO class id {c}")
                wanted.add(COCO80[c])
            else:
                wanted.add(c)
        unknown = (wanted | set(per_class)) - set(self._names)
        if unknown:
            raise ValueError(
                f"class(es) {sorted(unknown)} not among the classes of {self.spec.name}"
            )
        thr = np.full(len(self._names), np.inf, np.float32)
        for i, name in enumerate(self._names):
            if name in wanted and name:
                thr[i] = per_class.get(name, threshold)
        return thr

    def _check_input_shape(self) -> None:
        shape = list(self._input.shape)
        spec = self.spec
        want = (
            [1, 3, spec.height, spec.width]
            if spec.input_format == "NCHW"
            else [1, spec.height, spec.width, 3]
        )
        if len(shape) != 4 or any(
            isinstance(have, int) and have > 0 and have != w
            for have, w in zip(shape, want, strict=False)
        ):
            raise DetectorError(
                f"{spec.path}: input {self._input.name} has shape {shape}, the spec expects "
                f"{spec.input_format} {want}; fix the spec (width, height, input_format) or "
                f"the model{self._hint()}"
            )

    def _hint(self) -> str:
        return f" (rebuild it with {BUILD_HINT} --force)" if self.spec.builtin else ""

    def _warm_up(self) -> None:
        grey = np.full((self.spec.height, self.spec.width, 3), 114, np.uint8)
        try:
            self.detect(grey)
        except DetectorError:
            raise
        except Exception as exc:
            raise DetectorError(
                f"{self.spec.path}: the model does not run as a {self.spec.layout} model: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                f"{self._hint()}"
            ) from exc

    # running ---------------------------------------------------------------------------
    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> list[Detection]:
        """Objects in an H x W x 3 BGR uint8 image (a grey H x W one works too)."""
        if image_bgr.ndim == 2:
            image_bgr = np.repeat(image_bgr[:, :, None], 3, axis=2)
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 BGR image, got {image_bgr.shape}")
        if image_bgr.shape[0] < 2 or image_bgr.shape[1] < 2:
            return []
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        return self.detect_frame(frame)

    def detect_frame(self, frame: av.VideoFrame) -> list[Detection]:
        """Objects in a decoded PyAV frame (any pixel format): scaled and converted to the
        model's input in one swscale step, without a full-size RGB copy."""
        t0 = time.perf_counter()
        tensor, place = self._prepare(frame)
        t1 = time.perf_counter()
        values = self._session.run(self._output_names, {self._input.name: tensor})
        t2 = time.perf_counter()
        found = self._finish(dict(zip(self._output_names, values, strict=True)), place)
        t3 = time.perf_counter()
        self.last_timing = Timing((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return found

    def detect_crops(
        self, image_bgr: npt.NDArray[np.uint8], regions: Sequence[Box]
    ) -> list[Detection]:
        """Objects inside some regions of an image (e.g. where motion was seen), each region
        run at the model's resolution; boxes are in pixels of the whole image, and boxes
        found twice where regions overlap are merged."""
        height, width = image_bgr.shape[:2]
        found: list[Detection] = []
        for x1, y1, x2, y2 in regions:
            a, b = max(0, int(math.floor(x1))), max(0, int(math.floor(y1)))
            c, d = min(width, int(math.ceil(x2))), min(height, int(math.ceil(y2)))
            if c - a < 2 or d - b < 2:
                continue
            for det in self.detect(image_bgr[b:d, a:c]):
                bx1, by1, bx2, by2 = det.box
                found.append(
                    Detection(
                        det.class_name,
                        det.class_id,
                        det.confidence,
                        (bx1 + a, by1 + b, bx2 + a, by2 + b),
                    )  # fmt: skip
                )
        if len(regions) < 2 or not found:
            return found
        boxes = np.asarray([f.box for f in found], np.float32)
        scores = np.asarray([f.confidence for f in found], np.float32)
        groups = self._nms_group[[self._names.index(f.class_name) for f in found]]
        return [found[i] for i in batched_nms(boxes, scores, groups, self.iou)]

    def _prepare(self, frame: av.VideoFrame) -> tuple[npt.NDArray[Any], _Placement]:
        spec = self.spec
        src_w, src_h = frame.width, frame.height
        if spec.resize == "stretch":
            new_w, new_h = spec.width, spec.height
        else:
            r = min(spec.width / src_w, spec.height / src_h)
            new_w = max(1, min(spec.width, round(src_w * r)))
            new_h = max(1, min(spec.height, round(src_h * r)))
        fmt = "rgb24" if spec.colour == "RGB" else "bgr24"
        scaled = frame.reformat(
            width=new_w, height=new_h, format=fmt, interpolation="BILINEAR", threads=self.threads
        ).to_ndarray()
        pad_x = (spec.width - new_w) // 2
        pad_y = (spec.height - new_h) // 2
        if (new_w, new_h) != (spec.width, spec.height):
            canvas = np.full((spec.height, spec.width, 3), spec.pad_value, np.uint8)
            canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = scaled
            scaled = canvas
        place = _Placement(new_w / src_w, new_h / src_h, pad_x, pad_y, src_w, src_h)
        if self._input_uint8:
            pixels: npt.NDArray[Any] = scaled
        elif self._plain_scale:
            pixels = scaled.astype(np.float32) * self._mul[0]
        else:
            pixels = scaled.astype(np.float32) * self._mul + self._add
        if spec.input_format == "NCHW":
            pixels = pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels[None]), place

    def _finish(self, outputs: Outputs, place: _Placement) -> list[Detection]:
        cand = self._decode(outputs, self.spec, self.thresholds)
        if cand.scores.size == 0:
            return []
        if cand.scores.size > MAX_CANDIDATES:
            best = np.argpartition(-cand.scores, MAX_CANDIDATES)[:MAX_CANDIDATES]
            cand = Candidates(cand.boxes[best], cand.scores[best], cand.labels[best])
        groups = self._nms_group[cand.labels]
        keep = batched_nms(cand.boxes, cand.scores, groups, self.iou)[: self.max_detections]
        boxes = cand.boxes[keep].astype(np.float64)
        boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - place.pad_x) / place.scale_x, 0, place.width)
        boxes[:, [1, 3]] = np.clip(
            (boxes[:, [1, 3]] - place.pad_y) / place.scale_y, 0, place.height
        )
        result = []
        for (x1, y1, x2, y2), score, label in zip(
            boxes.tolist(), cand.scores[keep].tolist(), cand.labels[keep].tolist(), strict=True
        ):
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            result.append(
                Detection(
                    class_name=self._names[label],
                    class_id=self._coco_ids[label],
                    confidence=round(float(score), 4),
                    box=(round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)),
                )
            )
        return result


# loading ---------------------------------------------------------------------------------
def load_detector(
    model: str | Path = "nanodet",
    threads: int = 1,
    *,
    classes: Iterable[str | int] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    thresholds: Mapping[str, float] | None = None,
) -> Detector:
    """A ready detector for a built-in model name, a model spec file or an .onnx with its
    spec beside it; any problem with either is a DetectorError."""
    try:
        spec = load_spec(model)
    except ModelSpecError as exc:
        raise DetectorError(str(exc)) from None
    return Detector(spec, threads, classes=classes, threshold=threshold, thresholds=thresholds)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open_session(spec: ModelSpec, threads: int, providers: Sequence[str]) -> Any:
    path = spec.path
    hint = (
        f"build it with {BUILD_HINT} (writes {path.parent})"
        if spec.builtin
        else "check the file: in the model spec"
    )
    if not path.is_file():
        raise DetectorError(f"model file {path} not found: {hint}")
    if spec.sha256 and _sha256(path) != spec.sha256:
        raise DetectorError(
            f"model file {path} is not the one recorded (sha256 differs from {spec.sha256}): "
            f"damaged or replaced; "
            + (f"rebuild it with {BUILD_HINT} --force" if spec.builtin else "check the spec")
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DetectorError(
            f"model file {path} is not a loadable ONNX model ({first[:300]}); "
            + (f"rebuild it with {BUILD_HINT} --force" if spec.builtin else "re-export it")
        ) from exc
