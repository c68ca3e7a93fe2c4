"""The licence-plate detector: the platedet YOLOv8-seg model (boxes only) on ONNX Runtime.

    detector = PlateDetector()              # PlateReaderError if the model is missing
    for (x1, y1, x2, y2), score in detector.detect(image_bgr):
        ...

The model (``platedet/artifacts/platedet.onnx`` from the ``platedet`` PyPI wheel) is an
Ultralytics YOLOv8s-seg export: fixed 640x640 fp16 input, boxes and 32 mask coefficients
per anchor, plus a 160x160 mask prototype. CityWatch uses only the boxes, so at load the
graph is cut (needs the ``onnx`` package; nothing is written to disk):

- the segmentation branch (the 160x160 mask prototype and the mask coefficients) and the
  in-graph box decoding are dropped: the graph ends at the raw head output (64
  distribution bins for the four box sides + one class logit per anchor), decoded here
  with numpy for the few anchors over the threshold;
- fp16 becomes fp32;
- the input height and width become free, so an image is letterboxed to its own aspect
  ratio (sides multiples of 32) instead of a 640x640 square, and a small image (a vehicle
  crop) is not blown up to 640 beyond ``max_upscale``.

Measured (BENCHMARKS.md, section 7): the same accuracy as the original graph at 640x640
(openalpr-us exact 73.0 vs 72.1 %, uc3m-lp recall 76.0 vs 75.6 %), the detector about 2x
faster (1 thread: 212 vs 447 ms a 1280x720 photo). A model whose graph is not
such an export (another file given by ``$CITYWATCH_PLATE_DETECTOR``) runs as it is, at its
fixed input size (``fast`` is then False).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from citywatch.analytics.detector import nms
from citywatch.analytics.models import models_dir

__all__ = [
    "PLATEDET_ENV",
    "PlateDetector",
    "PlateReaderError",
    "boxes_only_graph",
    "platedet_model_path",
    "resize",
]

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels

PLATEDET_ENV = "CITYWATCH_PLATE_DETECTOR"
STRIDES = (8, 16, 32)
DFL_BINS = 16


class PlateReaderError(RuntimeError):
    """A model is missing or unusable."""


def resize(image: Image, width: int, height: int, fmt: str = "bgr24") -> Image:
    """``image`` (BGR) scaled to width x height (bilinear, PyAV swscale), in ``fmt``."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
    out = frame.reformat(width=width, height=height, format=fmt, interpolation="BILINEAR")
    return np.ascontiguousarray(out.to_ndarray())


def platedet_model_path() -> Path:
    """Where the platedet ONNX model is: ``$CITYWATCH_PLATE_DETECTOR``, else
    ``platedet.onnx`` in the model cache (``scripts/build_models.sh`` puts it there), else
    the installed ``platedet`` wheel's ``artifacts/platedet.onnx``. PlateReaderError if
    none."""
    env = os.environ.get(PLATEDET_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise PlateReaderError(f"{PLATEDET_ENV}={env}: no such file")
        return path
    cached = models_dir() / "platedet.onnx"
    if cached.is_file():
        return cached
    spec = importlib.util.find_spec("platedet")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "artifacts" / "platedet.onnx"
        if path.is_file():
            return path
    raise PlateReaderError(
        f"plate detector missing: {cached} not found; run scripts/build_models.sh (or "
        f"`pip install --no-deps platedet==0.0.2`, or set {PLATEDET_ENV} to a platedet.onnx)"
    )


# the graph cut -----------------------------------------------------------------------------
def boxes_only_graph(path: Path) -> tuple[bytes, int] | None:
    """The model at ``path`` cut to its raw YOLOv8 head output, fp32, with a free input
    height and width: (serialised model, number of classes). None when ``onnx`` is not
    installed or the graph is not an Ultralytics YOLOv8 export (no ``Split`` of
    ``4 x 16`` distribution bins and the class logits)."""
    if importlib.util.find_spec("onnx") is None:
        return None
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    consts = {i.name: i for i in graph.initializer}
    head: str | None = None
    classes = 0
    for node in graph.node:
        if node.op_type != "Split" or len(node.input) < 2 or node.input[1] not in consts:
            continue
        sizes = numpy_helper.to_array(consts[node.input[1]]).tolist()
        if len(sizes) == 2 and sizes[0] == 4 * DFL_BINS and 1 <= sizes[1] <= 1000:
            head, classes = node.input[0], int(sizes[1])
    if head is None or len(graph.input) != 1:
        return None
    needed = {head}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.value_info[:]
    del graph.output[:]
    graph.output.append(
        onnx.helper.make_tensor_value_info(
            head, TensorProto.FLOAT, [1, 4 * DFL_BINS + classes, "n"]
        )
    )
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT16:
            init.CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name)
            )
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT16:
                attr.t.CopyFrom(
                    numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32))
                )
    tensor_type = graph.input[0].type.tensor_type
    tensor_type.elem_type = TensorProto.FLOAT
    dims = tensor_type.shape.dim
    if len(dims) != 4:
        return None
    for dim, name in ((dims[2], "height"), (dims[3], "width")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    return model.SerializeToString(), classes


def _anchors(height: int, width: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Anchor centres (2, N) in grid units and their strides (N,), in the head's order."""
    points, strides = [], []
    for s in STRIDES:
        gh, gw = math.ceil(height / s), math.ceil(width / s)
        ys, xs = np.meshgrid(np.arange(gh) + 0.5, np.arange(gw) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(gh * gw, s))
    return (
        np.concatenate(points, axis=1).astype(np.float32),
        np.concatenate(strides).astype(np.float32),
    )


class PlateDetector:
    """Plate boxes on an image. ``max_side``: the longest side of the network input (the
    model's training size, 640); ``max_upscale``: how much a small image may be enlarged to
    get there (a 320x240 photo goes in at 640x480 with 2.0, at 320x256 with 1.0).
    ``fast=False`` runs the model file's graph as it is (fixed 640x640)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        threads: int = 1,
        threshold: float = 0.3,
        iou: float = 0.5,
        *,
        fast: bool = True,
        max_side: int = 640,
        max_upscale: float = 2.0,
    ) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        path = Path(model_path) if model_path is not None else platedet_model_path()
        if not path.is_file():
            raise PlateReaderError(f"plate detector missing: {path} not found")
        if max_side < 32 or max_upscale <= 0:
            raise ValueError(f"bad input size: max_side {max_side}, max_upscale {max_upscale}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        graph: bytes | str = str(path)
        self.classes = 1
        self.fast = False
        if fast:
            try:
                cut = boxes_only_graph(path)
            except Exception as exc:  # onnx raises its own types for a bad file
                raise PlateReaderError(f"plate detector {path} cannot be loaded: {exc}") from None
            if cut is None:
                logger.info("plate detector %s: running the graph as it is (fixed size)", path)
            else:
                graph, self.classes = cut
                self.fast = True
        try:
            self._session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types
            raise PlateReaderError(f"plate detector {path} cannot be loaded: {exc}") from None
        inp = self._session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not (self.fast or all(isinstance(v, int) for v in shape[2:])):
            raise PlateReaderError(f"plate detector {path}: unexpected input {shape}")
        self._input = inp.name
        self._fp16 = "float16" in inp.type
        self.height, self.width = (max_side, max_side) if self.fast else map(int, shape[2:])
        self.max_upscale = max_upscale
        self._output = self._session.get_outputs()[0].name
        self._anchor_cache: dict[tuple[int, int], tuple[Any, Any]] = {}
        self.threshold = threshold
        self.iou = iou
        self.path = path
        self.licence = str(self._session.get_modelmeta().custom_metadata_map.get("license", ""))

    def input_size(self, width: int, height: int) -> tuple[int, int, float]:
        """Network input width, height and the image's scale factor for an image of this
        size."""
        if not self.fast:
            return self.width, self.height, min(self.width / width, self.height / height)
        r = min(self.width / max(width, height), self.max_upscale)
        iw = max(32, math.ceil(width * r / 32) * 32)
        ih = max(32, math.ceil(height * r / 32) * 32)
        return iw, ih, r

    def detect(self, image: Image) -> list[tuple[Box, float]]:
        """Plate boxes (image pixels) and scores, best first."""
        h, w = image.shape[:2]
        if h < 2 or w < 2:
            return []
        iw, ih, r = self.input_size(w, h)
        nw, nh = max(1, min(iw, round(w * r))), max(1, min(ih, round(h * r)))
        canvas = np.full((ih, iw, 3), 114, np.uint8)
        px, py = (iw - nw) // 2, (ih - nh) // 2
        canvas[py : py + nh, px : px + nw] = resize(image, nw, nh, "rgb24")
        dtype = np.float16 if self._fp16 else np.float32
        tensor = (canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).astype(dtype)
        out = self._session.run([self._output], {self._input: np.ascontiguousarray(tensor)})[0]
        pred = np.asarray(out[0], np.float32)
        boxes, scores = self._decode(pred, ih, iw) if self.fast else self._decode_fixed(pred)
        if not len(scores):
            return []
        order = nms(boxes, scores, self.iou)
        found: list[tuple[Box, float]] = []
        for i in order.tolist():
            x1, y1, x2, y2 = boxes[i].tolist()
            x1 = min(max((x1 - px) / r, 0.0), float(w))
            x2 = min(max((x2 - px) / r, 0.0), float(w))
            y1 = min(max((y1 - py) / r, 0.0), float(h))
            y2 = min(max((y2 - py) / r, 0.0), float(h))
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                found.append(((x1, y1, x2, y2), round(float(scores[i]), 4)))
        return found

    def _decode(
        self, raw: npt.NDArray[np.float32], height: int, width: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Raw head output (64 + classes, N) -> xyxy boxes in input pixels and scores, for
        the anchors over the threshold (distribution-focal box sides: softmax expectation
        over 16 bins, times the anchor's stride)."""
        logits = raw[4 * DFL_BINS :].max(axis=0)
        # sigmoid(x) > t  <=>  x > logit(t): no exp over every anchor
        t = min(max(self.threshold, 1e-6), 1 - 1e-6)
        keep = np.flatnonzero(logits > math.log(t / (1 - t)))
        if not keep.size:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        key = (height, width)
        if key not in self._anchor_cache:
            if len(self._anchor_cache) > 32:
                self._anchor_cache.clear()
            self._anchor_cache[key] = _anchors(height, width)
        points, strides = self._anchor_cache[key]
        if points.shape[1] != raw.shape[1]:
            raise PlateReaderError(
                f"plate detector: {raw.shape[1]} anchors, expected {points.shape[1]}"
            )
        bins = raw[: 4 * DFL_BINS, keep].reshape(4, DFL_BINS, -1)
        bins = np.exp(bins - bins.max(axis=1, keepdims=True))
        dist = (bins * np.arange(DFL_BINS, dtype=np.float32)[None, :, None]).sum(axis=1)
        dist /= bins.sum(axis=1)  # (4, k): left, top, right, bottom in grid units
        p, s = points[:, keep], strides[keep]
        boxes = np.stack(
            [
                (p[0] - dist[0]) * s,
                (p[1] - dist[1]) * s,
                (p[0] + dist[2]) * s,
                (p[1] + dist[3]) * s,
            ],
            axis=1,
        )
        scores = 1.0 / (1.0 + np.exp(-logits[keep]))
        return boxes.astype(np.float32), scores.astype(np.float32)

    def _decode_fixed(
        self, pred: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The original graph's output0 (cx, cy, w, h, class scores, mask coefficients)."""
        scores = pred[4 : 4 + self.classes].max(axis=0)
        keep = scores > self.threshold
        cx, cy, bw, bh = pred[0, keep], pred[1, keep], pred[2, keep], pred[3, keep]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return boxes.astype(np.float32), scores[keep].astype(np.float32)
