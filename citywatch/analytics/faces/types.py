"""The values the face engine hands out: boxes, quality, faces, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "EnrolmentRejected",
    "Face",
    "FaceBox",
    "FaceEngineError",
    "FaceQuality",
    "ImageError",
]

Image = npt.NDArray[np.uint8]
Embedding = npt.NDArray[np.float32]
Point = tuple[float, float]


class FaceEngineError(RuntimeError):
    """A model file is missing or unusable, or a detector name is unknown."""


class ImageError(ValueError):
    """The input is not a usable image (not an image, empty, too large, wrong shape)."""


class EnrolmentRejected(ValueError):
    """An image is unfit for enrolment; ``reason`` says why, in words for the operator
    ("no face found", "2 faces found: one person per enrolment image", "face too small: 38 px
    < 80 px", ...)."""

    def __init__(self, reason: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = problems or (reason,)


@dataclass(frozen=True, slots=True)
class FaceBox:
    """One face found in an image, in pixel coordinates of that image.

    ``score``: the detector's confidence in 0..1 (BlazeFace: its probability; HOG: the
    logistic of dlib's SVM margin, 0.5 at dlib's own decision boundary). ``landmarks``: the
    5 points of dlib's ``shape_predictor_5_face_landmarks`` in its order (0-1: the corners
    of the eye on the image's right, 2-3: those of the eye on the image's left, 4: below the
    nose), filled in by :meth:`FaceEngine.faces`; ``()`` from :meth:`FaceEngine.detect`."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    landmarks: tuple[Point, ...] = ()

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)],
            "score": round(self.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
        }


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """How good a face shot is.

    ``size``: box height in pixels. ``sharpness``: variance of the Laplacian of the aligned
    150x150 face (grey, central part) over its mean squared gradient, x 100, so it does not
    depend on light, contrast or background (sharp: 35 and up; see
    :func:`.quality.chip_sharpness`). ``frontal``: 0..1 from
    the landmarks (1: looking at the camera; 0: nose under one eye, about 45 degrees or more
    of head turn, or strongly tilted up/down). ``score``: 0..1, the three combined, used to
    rank shots of one person. ``problems``: why the shot is unfit for ENROLMENT, in words;
    empty when it is fit (a live shot with problems is still matched, only ranked lower)."""

    size: float
    sharpness: float
    frontal: float
    score: float
    problems: tuple[str, ...] = ()

    @property
    def fit_for_enrolment(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": round(self.size, 1),
            "sharpness": round(self.sharpness, 1),
            "frontal": round(self.frontal, 3),
            "score": round(self.score, 3),
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """A detected face with its landmarks, quality and embedding.

    ``embedding``: float32, shape (128,), L2-normalised (dlib ResNet descriptor); compare
    two with :func:`similarity`. ``chip``: the aligned face, 150x150 BGR (dlib's
    ``get_face_chip``, padding 0.25): what the embedding was computed from.
    ``descriptor_norm``: the length of dlib's raw descriptor (about 1.3-1.5), so that
    ``embedding * descriptor_norm`` is dlib's own descriptor (for its L2 distance rule)."""

    box: FaceBox
    quality: FaceQuality
    embedding: Embedding = field(repr=False)
    chip: Image = field(repr=False)
    descriptor_norm: float = 1.0

    def crop_jpeg(self, image_bgr: Image, margin: float = 0.4, max_side: int = 320) -> bytes:
        """The face cut out of ``image_bgr`` (the image it was found in) as JPEG; see
        :func:`crop_jpeg`."""
        from citywatch.analytics.faces.image import crop_jpeg

        return crop_jpeg(image_bgr, self.box, margin, max_side)

    def chip_jpeg(self) -> bytes:
        """The aligned 150x150 face as JPEG."""
        from citywatch.imaging import encode_jpeg_array

        return encode_jpeg_array(self.chip)

    def as_dict(self) -> dict[str, Any]:
        return {**self.box.as_dict(), "quality": self.quality.as_dict()}
