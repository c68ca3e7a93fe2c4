"""Licence-plate recognition: plate formats per country, detection + OCR on images,
fusion of the reads of one vehicle track into one result, and passages of plates on a
dedicated LPR camera (no vehicle tracks).

    from citywatch.analytics.plates import PlateReader, PlateFusion, PlatePassages, classify
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
from citywatch.analytics.plates.passages import PassageResult, PlatePassages
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
    "PassageResult",
    "PlateDetector",
    "PlateFormat",
    "PlateFusion",
    "PlatePassages",
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
