"""Reading images for the face engine, checking arrays, and cutting face crops."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import av
import numpy as np

from citywatch.analytics.faces.types import FaceBox, Image, ImageError
from citywatch.imaging import encode_jpeg_array

__all__ = ["MAX_FILE_BYTES", "MAX_PIXELS", "check_image", "crop_jpeg", "load_image"]

MAX_PIXELS = 50_000_000  # larger images are refused before they are decoded (about 8K x 6K)
MAX_FILE_BYTES = 64 * 1024 * 1024
MIN_SIDE = 16


def load_image(
    source: str | Path | bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS
) -> Image:
    """An image file or its bytes (JPEG, PNG, BMP, WebP, TIFF, ...) as H x W x 3 uint8 BGR.

    ImageError, saying why, for a missing or empty file, data that is not an image (a video,
    text, a truncated file), or an image over ``max_pixels`` pixels (checked before
    decoding). Only the first frame of an animated image is used. EXIF orientation is not
    applied."""
    name: str
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = "image data"
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if not path.is_file():
            raise ImageError(f"{name}: not a file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{name}: file too large for an image ({size} bytes)")
        data = path.read_bytes()
    if not data:
        raise ImageError(f"{name}: empty file")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: too large for an image ({len(data)} bytes)")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            fmt = container.format.name
            if not container.streams.video:
                raise ImageError(f"{name}: not an image (no picture in it)")
            if not (fmt.endswith("_pipe") or fmt in {"image2", "gif", "webp", "apng"}):
                raise ImageError(f"{name}: not an image (a {fmt} file)")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: image too large: {width}x{height} pixels "
                    f"(at most {max_pixels:,} pixels)"
                )
            stream.codec_context.options = {"err_detect": "explode"}  # truncated: an error
            frame = next(container.decode(stream))
            image: Image = np.ascontiguousarray(frame.to_ndarray(format="bgr24"))
    except ImageError:
        raise
    except av.error.InvalidDataError:
        raise ImageError(f"{name}: not an image (unrecognised or damaged data)") from None
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError) as exc:
        raise ImageError(f"{name}: not an image or unreadable ({exc})") from None
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ImageError(f"{name}: image too large: {image.shape[1]}x{image.shape[0]} pixels")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{name}: image too small: {image.shape[1]}x{image.shape[0]} pixels")
    return image


def check_image(image: Any) -> Image:
    """An H x W x 3 uint8 BGR array (a grey H x W one is expanded), C-contiguous; ImageError
    otherwise. dlib silently finds nothing in a non-contiguous array, hence the copy."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError(f"expected an H x W x 3 uint8 BGR image, got {image.shape} {image.dtype}")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"image too large: {image.shape[1]}x{image.shape[0]} pixels")
    checked: Image = np.ascontiguousarray(image)
    return checked


def crop_jpeg(image_bgr: Image, box: FaceBox, margin: float = 0.4, max_side: int = 320) -> bytes:
    """The face in ``box`` with ``margin`` x its size added on every side (clipped to the
    image), as JPEG, scaled down to at most ``max_side`` pixels on its longer side."""
    if margin < 0:
        raise ValueError("margin must be >= 0")
    h, w = image_bgr.shape[:2]
    mx, my = box.width * margin, box.height * margin
    x1 = max(0, math.floor(box.x1 - mx))
    y1 = max(0, math.floor(box.y1 - my))
    x2 = min(w, math.ceil(box.x2 + mx))
    y2 = min(h, math.ceil(box.y2 + my))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError(
            f"face box {box.x1:.0f},{box.y1:.0f},{box.x2:.0f},{box.y2:.0f} is "
            f"outside the {w}x{h} image"
        )
    crop = image_bgr[y1:y2, x1:x2]
    longest = max(crop.shape[:2])
    return encode_jpeg_array(crop, max_width=_width_for(crop.shape, longest, max_side))


def _width_for(shape: tuple[int, ...], longest: int, max_side: int) -> int | None:
    if longest <= max_side:
        return None
    return max(2, int(shape[1] * max_side / longest))
