"""Faces for tests and benchmarks: the people of ../shared/data/faces/face_recognition_examples,
the face engine (skipping when data or models are missing), and the face shot an analysis
worker would send for a photo."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from citywatch.analytics.messages import FaceSeen

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
FACES = SHARED_DATA / "faces" / "face_recognition_examples"
# One photo each of the six people of the set; the Hamilton clip shows Lin-Manuel Miranda.
PEOPLE = {
    "Barack Obama": "obama.jpg",
    "Joe Biden": "biden.jpg",
    "Alex Lacamoire": "alex-lacamoire.png",
    "Lin-Manuel Miranda": "lin-manuel-miranda.png",
    "Kit Harington": "knn_examples/train/kit_harington/john1.jpeg",
    "Rose Leslie": "knn_examples/train/rose_leslie/img1.jpg",
}


def face_engine() -> Any:
    """The real face engine; the test is skipped, with the reason, without data or models."""
    if not FACES.is_dir():
        pytest.skip(f"shared data not present: {FACES}")
    from citywatch.analytics.faces import FaceEngine, FaceEngineError

    try:
        return FaceEngine()
    except FaceEngineError as e:
        pytest.skip(f"face models not installed ({e}); run scripts/build_models.sh")


def face_shot(engine: Any, name: str, camera_id: str = "cam1", track: int = 7) -> FaceSeen:
    """What an analysis worker sends for the largest face of a photo on a person track."""
    from citywatch.analytics.faces import crop_jpeg, load_image

    image = load_image(FACES / name)
    face = max(engine.faces(image), key=lambda f: f.box.height)
    return FaceSeen(
        camera_id,
        track,
        time.time(),
        (0.1, 0.1, 0.2, 0.2),
        np.asarray(face.embedding, np.float32).tobytes(),
        {"score": float(face.quality.score)},
        crop_jpeg(image, face.box),
    )
