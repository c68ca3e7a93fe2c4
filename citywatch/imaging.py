"""Small image helpers shared by the live view and analytics (PyAV only, no Pillow)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt


def encode_jpeg_frame(frame: Any, max_width: int | None = None, quality: int = 4) -> bytes:
    """A decoded PyAV VideoFrame as JPEG, scaled down to `max_width` if wider."""
    width, height = frame.width, frame.height
    if max_width and width > max_width:
        height = max(2, int(height * max_width / width) // 2 * 2)
        width = max_width
    frame = frame.reformat(width=width, height=height, format="yuvj420p")
    enc: Any = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuvj420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"qscale": str(quality)}
    out = b"".join(bytes(p) for p in enc.encode(frame))
    out += b"".join(bytes(p) for p in enc.encode(None))
    return out


def encode_jpeg_array(image_bgr: npt.NDArray[np.uint8], max_width: int | None = None) -> bytes:
    """A BGR image (H x W x 3) as JPEG. Odd sizes are trimmed by a pixel for 4:2:0."""
    h, w = image_bgr.shape[:2]
    img = np.ascontiguousarray(image_bgr[: h - h % 2, : w - w % 2])
    frame = av.VideoFrame.from_ndarray(img, format="bgr24")
    return encode_jpeg_frame(frame, max_width)


def sharpness(grey: npt.NDArray[np.float32]) -> float:
    """Variance of the Laplacian: higher is sharper."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var())
