"""Face shots of person tracks, on cameras where an authorisation allows identification.

Runs in the analysis worker after detection and tracking. For each person track it looks for
a face in the upper part of the person's box, in the full-resolution frame, a few times a
second, and sends a shot (embedding, quality, crop) when it is better than the ones already
sent for that track, up to `shots_per_track`: the best shots, not every frame. The server
matches the shots and keeps nothing of those that match no one.

This stage exists in a worker only while the server has switched it on for the camera;
the server switches it off when the authorisation ends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from citywatch.analytics.messages import FaceSeen, TrackedBox

U8 = npt.NDArray[np.uint8]

UPPER_BODY = 0.55  # share of a person box, from its top, where the face is looked for
TRY_EVERY_S = 0.25
BETTER_BY = 0.1  # a new shot is sent when its quality beats the best sent by this much
FORGET_AFTER_S = 10.0


class FaceEngineLike(Protocol):
    def detect(self, image_bgr: U8) -> list[Any]: ...
    def faces(self, image_bgr: U8, boxes: Sequence[Any] | None = None) -> list[Any]: ...


@dataclass
class _TrackFaces:
    last_try: float = -1e9
    last_seen: float = 0.0
    sent: int = 0
    best: float = -1.0


@dataclass(frozen=True)
class FaceOptions:
    min_face_px: int = 40
    shots_per_track: int = 3

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceOptions:
        return cls(int(d.get("min_face_px", 40)), int(d.get("shots_per_track", 3)))


class FaceStage:
    def __init__(self, camera_id: str, engine: FaceEngineLike, options: FaceOptions) -> None:
        """Cameras (threads) of a worker share one engine, which serialises its calls."""
        self.camera_id = camera_id
        self.engine = engine
        self.options = options
        self._tracks: dict[int, _TrackFaces] = {}
        self.face_ms = 0.0

    def update(self, boxes: Sequence[TrackedBox], frame: U8, ts: float) -> list[FaceSeen]:
        """`boxes`: the frame's tracks (normalised); `frame`: the full-resolution image."""
        from citywatch.analytics.faces import crop_jpeg

        h, w = frame.shape[:2]
        out: list[FaceSeen] = []
        t0 = time.perf_counter()
        for b in boxes:
            if b.class_name != "person":
                continue
            st = self._tracks.setdefault(b.track_id, _TrackFaces())
            st.last_seen = ts
            if st.sent >= self.options.shots_per_track or ts - st.last_try < TRY_EVERY_S:
                continue
            x1, y1, x2, y2 = b.box[0] * w, b.box[1] * h, b.box[2] * w, b.box[3] * h
            if y2 - y1 < 2 * self.options.min_face_px:
                continue  # too far away for a usable face
            st.last_try = ts
            pad = 0.1 * (x2 - x1)
            a, c = max(0, int(x1 - pad)), min(w, int(x2 + pad))
            top, bottom = max(0, int(y1 - pad)), min(h, int(y1 + UPPER_BODY * (y2 - y1)))
            crop = np.ascontiguousarray(frame[top:bottom, a:c])
            if crop.size == 0:
                continue
            # HOG reports sizes in steps: a 44 px face can come back as a 36 px box.
            smallest = 0.8 * self.options.min_face_px
            found = [f for f in self.engine.detect(crop) if f.height >= smallest]
            box = max(found, key=lambda f: f.height * f.score) if found else None
            faces = self.engine.faces(crop, [box]) if box is not None else []
            if not faces:
                continue
            face = faces[0]
            q = float(face.quality.score)
            if st.sent and q < st.best + BETTER_BY:
                continue
            st.sent += 1
            st.best = max(st.best, q)
            fb = face.box
            out.append(
                FaceSeen(
                    self.camera_id,
                    b.track_id,
                    ts,
                    ((fb.x1 + a) / w, (fb.y1 + top) / h, (fb.x2 + a) / w, (fb.y2 + top) / h),
                    np.asarray(face.embedding, np.float32).tobytes(),
                    {
                        "size": float(face.quality.size),
                        "sharpness": float(face.quality.sharpness),
                        "frontal": float(face.quality.frontal),
                        "score": q,
                    },
                    crop_jpeg(crop, fb),
                )
            )
        self.face_ms = (time.perf_counter() - t0) * 1000
        for tid in [t for t, st in self._tracks.items() if ts - st.last_seen > FORGET_AFTER_S]:
            del self._tracks[tid]
        return out
