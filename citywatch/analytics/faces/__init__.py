"""Face engine: detection, landmarks, quality, 128-D embeddings, best shots per track.

    from citywatch.analytics.faces import FaceEngine, similarity, load_image
    engine = FaceEngine()                         # models from scripts/build_models.sh
    a = engine.enrolment_face(load_image("probe.jpg"))      # EnrolmentRejected(reason)
    for face in engine.faces(frame_or_person_crop_bgr):
        if similarity(a.embedding, face.embedding) >= engine.threshold: ...

Offline and on the CPU: dlib HOG (or BlazeFace ONNX) detection, dlib's 5-point landmarks
and ResNet face descriptor. No attribute inference of any kind (age, gender, emotion,
ethnicity) is done or offered here.
"""

from citywatch.analytics.faces.bestshots import BestShots, Shot
from citywatch.analytics.faces.detectors import (
    BlazeFaceDetector,
    FaceDetector,
    HogDetector,
    detector_names,
    make_detector,
)
from citywatch.analytics.faces.engine import (
    DEFAULT_DETECTOR,
    DEFAULT_MIN_SIZE,
    DEFAULT_THRESHOLD,
    STRICT_THRESHOLD,
    FaceEngine,
    similarities,
    similarity,
)
from citywatch.analytics.faces.image import MAX_PIXELS, check_image, crop_jpeg, load_image
from citywatch.analytics.faces.quality import QualityRules
from citywatch.analytics.faces.types import (
    EnrolmentRejected,
    Face,
    FaceBox,
    FaceEngineError,
    FaceQuality,
    ImageError,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_MIN_SIZE",
    "DEFAULT_THRESHOLD",
    "MAX_PIXELS",
    "STRICT_THRESHOLD",
    "BestShots",
    "BlazeFaceDetector",
    "EnrolmentRejected",
    "Face",
    "FaceBox",
    "FaceDetector",
    "FaceEngine",
    "FaceEngineError",
    "FaceQuality",
    "HogDetector",
    "ImageError",
    "QualityRules",
    "Shot",
    "check_image",
    "crop_jpeg",
    "detector_names",
    "load_image",
    "make_detector",
    "similarities",
    "similarity",
]
