"""Find licence plates in an image and read them, offline, on the CPU.

    reader = PlateReader(countries=("RS", "EU"))       # PlateReaderError if a model is missing
    for plate in reader.read(image_bgr):                 # H x W x 3 uint8 BGR, any size
        print(plate.text, plate.format, plate.confidence, plate.box)
    reader.read(frame_bgr, vehicle_box=(x1, y1, x2, y2))  # only inside a tracked vehicle

Two models, both installed from PyPI (nothing is fetched at run time):

- plate detection: the YOLOv8-seg ONNX export in the ``platedet`` wheel
  (``platedet/artifacts/platedet.onnx``, 640x640, fp16; "trained primarily on Brazilian
  plates"; its ONNX metadata says AGPL-3.0, compatible with CityWatch's AGPL-3.0-or-later).
  Only its boxes are used: the graph is cut to the box head, fp32, any input size, and run
  on ONNX Runtime with our own letterbox (PyAV swscale), decoding and NMS
  (:mod:`.detector`), so platedet's own Python code (OpenCV, Pillow) is not used.
- OCR: ``rapidocr`` 3.x, recognition only (PP-OCR rec ONNX shipped in its wheel,
  Apache-2.0) on each plate crop. Its flags are passed on every call: a call with
  ``use_det=False`` changes the defaults of later calls.

The read is then matched to the plate formats (:mod:`.formats`): confusions corrected,
printed the way the plate prints it, and the confidence is the OCR score times the format
factor.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
import numpy.typing as npt

from citywatch.analytics.plates.detector import (
    PlateDetector,
    PlateReaderError,
    resize,
)
from citywatch.analytics.plates.formats import classify, formats_for
from citywatch.imaging import encode_jpeg_array, sharpness

__all__ = [
    "MAX_SIDE",
    "PlateDetector",
    "PlateRead",
    "PlateReader",
    "PlateReaderError",
    "RapidOcrRecogniser",
    "Recogniser",
    "clean_ocr_text",
    "load_image",
]

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels

MAX_SIDE = 3840  # larger images are scaled down to this longest side first
MIN_PLATE_PX = 8  # plate boxes smaller than this (either side) are not read


@dataclass(frozen=True, eq=False)
class PlateRead:
    """One plate found in one image.

    ``box``: x1, y1, x2, y2 in pixels of the image given to ``read``. ``text``: as printed
    (``"BG 123-AB"``), or the cleaned OCR text when it fits no format. ``normalised``: upper
    case, no separators, confusions corrected by the format (``"BG123AB"``). ``raw``: what
    the OCR said. ``confidence``: OCR score x format factor (0..1). ``crop``: the plate,
    BGR. ``quality``: how good the crop is to read (size and sharpness; fusion ranks frames
    by it)."""

    box: Box
    text: str
    normalised: str
    format: str
    confidence: float
    crop: Image = field(repr=False)
    raw: str = ""
    ocr_confidence: float = 0.0
    detection_confidence: float = 0.0
    quality: float = 0.0
    country: str = ""

    def crop_jpeg(self) -> bytes:
        """The crop as JPEG bytes (for storage)."""
        crop = self.crop
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            return b""
        return encode_jpeg_array(crop)

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "text": self.text,
            "normalised": self.normalised,
            "format": self.format,
            "country": self.country,
            "confidence": self.confidence,
            "ocr_confidence": self.ocr_confidence,
            "detection_confidence": self.detection_confidence,
            "raw": self.raw,
        }


# image helpers -----------------------------------------------------------------------------
def load_image(path: str | Path) -> Image:
    """An image file (JPEG, PNG, ...) as H x W x 3 BGR, decoded with PyAV. OSError if it
    cannot be read."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            image: Image = np.ascontiguousarray(frame.to_ndarray(format="bgr24"))
            return image
    except (av.error.FFmpegError, StopIteration, IndexError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from None


def _check_image(image: Any) -> Image:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy image, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 BGR image, got {image.shape} {image.dtype}")
    checked: Image = image
    return checked


# OCR ---------------------------------------------------------------------------------------
class Recogniser(Protocol):
    """Reads one line of text from a plate crop: (text, confidence 0..1)."""

    def recognise(self, crop_bgr: Image) -> tuple[str, float]: ...


class RapidOcrRecogniser:
    """rapidocr 3.x, recognition only (no text detection, no orientation classifier)."""

    def __init__(self, threads: int = 1) -> None:
        if importlib.util.find_spec("rapidocr") is None:
            raise PlateReaderError("OCR missing: install it with `pip install rapidocr==3.10.0`")
        from rapidocr import RapidOCR

        params = {
            "Global.log_level": "error",
            "Global.use_det": False,
            "Global.use_cls": False,
            "Global.use_rec": True,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        try:
            self._engine: Any = RapidOCR(params=params)
        except Exception as exc:  # rapidocr raises plain exceptions for missing models
            raise PlateReaderError(f"rapidocr cannot start: {exc}") from None
        self._lock = threading.Lock()

    def recognise(self, crop_bgr: Image) -> tuple[str, float]:
        if crop_bgr.shape[0] < 2 or crop_bgr.shape[1] < 2:
            return "", 0.0
        with self._lock:  # the engine keeps per-call flags as state
            out = self._engine(
                np.ascontiguousarray(crop_bgr), use_det=False, use_cls=False, use_rec=True
            )
        txts = getattr(out, "txts", None) or ()
        scores = getattr(out, "scores", None) or ()
        if not txts:
            return "", 0.0
        return str(txts[0]), float(scores[0]) if scores else 0.0


def clean_ocr_text(text: str) -> str:
    """Upper-case Latin letters and digits only (OCR noise, separators and any non-Latin
    characters the recogniser may emit are dropped)."""
    return "".join(ch for ch in text.upper() if ch.isascii() and ch.isalnum())


# the reader --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReadTiming:
    detect_ms: float
    ocr_ms: float

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.ocr_ms


class PlateReader:
    """Plate detection + OCR + format rules. ``countries``: which format rules apply (see
    :func:`.formats.formats_for`; all when None). ``min_confidence``: reads below it are
    not reported. ``recogniser``: another OCR (any object with ``recognise``). ``margin``:
    how much of the plate box's width and height to add on each side before OCR (negative
    trims: measured on openalpr-us, a crop trimmed 12 % top and bottom reads best, as the
    detector's boxes include the frame and the state name)."""

    def __init__(
        self,
        countries: Iterable[str] | None = None,
        *,
        threads: int = 1,
        detector: PlateDetector | None = None,
        recogniser: Recogniser | None = None,
        detection_threshold: float = 0.3,
        min_confidence: float = 0.0,
        max_plates: int = 10,
        margin: tuple[float, float] = (0.02, -0.12),
    ) -> None:
        self.rules = formats_for(countries)
        self.detector = detector or PlateDetector(threads=threads, threshold=detection_threshold)
        self.recogniser: Recogniser = recogniser or RapidOcrRecogniser(threads=threads)
        self.min_confidence = min_confidence
        self.max_plates = max_plates
        self.margin = margin
        self.last_timing = ReadTiming(0.0, 0.0)
        self.last_found = 0  # plate boxes the detector found in the last ``read``

    def read(self, image_bgr: Image, vehicle_box: Box | None = None) -> list[PlateRead]:
        """Every plate found in the image (or only inside ``vehicle_box``), best first.
        An empty image or box gives []; ValueError for something that is not an image."""
        image = _check_image(image_bgr)
        h, w = image.shape[:2]
        self.last_found = 0
        if h < 2 or w < 2:
            return []
        scale = 1.0
        if max(h, w) > MAX_SIDE:
            scale = MAX_SIDE / max(h, w)
            image = resize(image, max(2, round(w * scale)), max(2, round(h * scale)))
        ih, iw = image.shape[:2]
        ox = oy = 0
        region = image
        if vehicle_box is not None:
            x1, y1, x2, y2 = (float(v) * scale for v in vehicle_box)
            if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
                raise ValueError(f"bad vehicle box {vehicle_box}")
            mx, my = (x2 - x1) * 0.05, (y2 - y1) * 0.05
            ox, oy = max(0, int(x1 - mx)), max(0, int(y1 - my))
            ex, ey = min(iw, int(math.ceil(x2 + mx))), min(ih, int(math.ceil(y2 + my)))
            if ex - ox < 2 or ey - oy < 2:
                return []
            region = image[oy:ey, ox:ex]
        t0 = time.perf_counter()
        found = self.detector.detect(region)[: self.max_plates]
        self.last_found = len(found)
        t1 = time.perf_counter()
        reads: list[PlateRead] = []
        for (bx1, by1, bx2, by2), det_score in found:
            box = (bx1 + ox, by1 + oy, bx2 + ox, by2 + oy)
            if box[2] - box[0] < MIN_PLATE_PX or box[3] - box[1] < MIN_PLATE_PX / 2:
                continue
            crop = self._crop(image, box)
            read = self.read_crop(crop, box=box, detection_confidence=det_score)
            if read is None:
                continue
            if scale != 1.0:
                read = _rescale(read, 1.0 / scale)
            reads.append(read)
        self.last_timing = ReadTiming((t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3)
        reads.sort(key=lambda r: -r.confidence)
        return reads

    def read_crop(
        self, crop: Image, *, box: Box | None = None, detection_confidence: float = 1.0
    ) -> PlateRead | None:
        """OCR + formats on a plate crop (already cut out); None when nothing readable."""
        crop = _check_image(crop)
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            return None
        raw, score = self.recognise(crop)
        text = clean_ocr_text(raw)
        if not text:
            return None
        cls = classify(text, rules=self.rules)
        confidence = round(score * cls.factor, 4)
        if confidence < self.min_confidence:
            return None
        if box is None:
            box = (0.0, 0.0, float(crop.shape[1]), float(crop.shape[0]))
        grey = crop.mean(axis=2, dtype=np.float32)
        quality = min(crop.shape[0], 64) / 64 * min(1.0, sharpness(grey) / 500.0) ** 0.5
        return PlateRead(
            box=tuple(round(v, 1) for v in box),  # type: ignore[arg-type]
            text=cls.text,
            normalised=cls.normalised,
            format=cls.format,
            confidence=confidence,
            crop=crop,
            raw=raw,
            ocr_confidence=round(score, 4),
            detection_confidence=round(detection_confidence, 4),
            quality=round(quality * confidence, 4),
            country=cls.country,
        )

    def recognise(self, crop: Image) -> tuple[str, float]:
        return self.recogniser.recognise(crop)

    def _crop(self, image: Image, box: Box) -> Image:
        x1, y1, x2, y2 = box
        mx, my = (x2 - x1) * self.margin[0], (y2 - y1) * self.margin[1]
        h, w = image.shape[:2]
        a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
        c, d = min(w, int(math.ceil(x2 + mx))), min(h, int(math.ceil(y2 + my)))
        return np.ascontiguousarray(image[b:d, a:c])


def _rescale(read: PlateRead, factor: float) -> PlateRead:
    from dataclasses import replace

    x1, y1, x2, y2 = read.box
    box = (x1 * factor, y1 * factor, x2 * factor, y2 * factor)
    return replace(read, box=tuple(round(v, 1) for v in box))  # type: ignore[arg-type]
