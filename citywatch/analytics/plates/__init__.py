"""Licence-plate recognition: plate formats per country, detection + OCR on images, and
fusion of the reads of one vehicle track into one result.

    from citywatch.analytics.plates import PlateReader, PlateFusion, classify
"""

from citywatch.analytics.plates.formats import (
    FORMATS,
    UNFORMATTED,
    Classification,
    Group,
    PlateFormat,
    classify,
    formats_for,
    normalise,
    register,
)
from citywatch.analytics.plates.fusion import FusedPlate, PlateFusion, fuse
from citywatch.analytics.plates.reader import (
    PlateDetector,
    PlateRead,
    PlateReader,
    PlateReaderError,
    RapidOcrRecogniser,
    load_image,
)

__all__ = [
    "FORMATS",
    "UNFORMATTED",
    "Classification",
    "FusedPlate",
    "Group",
    "PlateDetector",
    "PlateFormat",
    "PlateFusion",
    "PlateRead",
    "PlateReader",
    "PlateReaderError",
    "RapidOcrRecogniser",
    "classify",
    "formats_for",
    "fuse",
    "load_image",
    "normalise",
    "register",
]
