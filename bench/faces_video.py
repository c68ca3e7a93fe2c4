"""Watchlist hits in live video, end to end, under a real-time authorisation.

    .venv/bin/python -m bench.faces_video [--seconds 60] [--threshold X]

Two cameras stream through the real RTSP server (tests/support): "stage" plays the Hamilton
clip (Lin-Manuel Miranda on stage, 9 s, looped) and "street" plays Intel's
one-by-one-person-detection clip (passers-by, none of them enrolled). The six people of
../shared/data/faces/face_recognition_examples are enrolled (one photo each) in one
watchlist; an authorisation covers both cameras. CityWatch runs as in production (analysis
worker process: NanoDet person tracks, face shots, dlib embeddings; matching in the server).

Reported: face shots sent by the analysis (per camera), candidates per person and camera
(right: Lin-Manuel Miranda on "stage"; wrong: anyone else, or anyone on "street"), the time
from approval to the first candidate, and shot-to-candidate latency in the server.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import MEDIA, REPO, emit, machine, summary_ms
from citywatch.config import (
    AnalyticsConfig,
    CameraConfig,
    DetectorConfig,
    FacesConfig,
    RecordingConfig,
    Settings,
    StreamConfig,
)
from citywatch.runtime import CityWatch
from tests.support.faces import FACES, PEOPLE
from tests.support.rtsp import RtspServer, to_ts

SHARED = REPO.parent / "shared" / "data"
RIGHT = ("stage", "Lin-Manuel Miranda")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threshold", type=float, default=None)
    args = ap.parse_args()

    clips = {
        "stage": to_ts(SHARED / "video" / "hamilton-clip.mp4", MEDIA / "hamilton-g15.ts", gop=15),
        "street": to_ts(
            SHARED / "video" / "one-by-one-person-detection.mp4",
            MEDIA / "one-by-one-g25.ts",
            gop=25,
        ),
    }
    with tempfile.TemporaryDirectory() as tmp, RtspServer(clips) as server:
        settings = Settings(
            data_dir=Path(tmp),
            cameras=[
                CameraConfig(
                    id=cam,
                    name=cam,
                    main_stream=StreamConfig(url=server.url(cam)),
                    purpose="benchmark",
                    legal_basis="benchmark",
                    analytics=AnalyticsConfig(enabled=False),
                )
                for cam in clips
            ],
            detector=DetectorConfig(workers=1),
            recording=RecordingConfig(segment_seconds=10),
            faces=FacesConfig(threshold=args.threshold),
        )
        cw = CityWatch(settings)
        cw.start()
        got: list[dict[str, Any]] = []
        lock = threading.Lock()

        def on(msg: dict[str, Any]) -> None:
            with lock:
                got.append({**msg, "published_at": time.time()})

        cw.hub.subscribe(on, {"face.candidate"})
        try:
            wl = cw.watchlists.create("bench", "benchmarks", "benchmark")
            for label, name in PEOPLE.items():
                person = cw.watchlists.add_person("bench", wl.id, label)
                cw.watchlists.enrol(
                    "bench", person.id, (FACES / name).read_bytes(), "examples (MIT)", "bench"
                )
            now = time.time()
            auth = cw.authorisations.create(
                "requester",
                mode="realtime",
                legal_basis="benchmark",
                authority="bench",
                authority_ref="B-1",
                objective="benchmark",
                camera_ids=list(clips),
                watchlist_ids=[wl.id],
                valid_from=now,
                valid_to=now + 3600,
            )
            cw.authorisations.approve("authority", auth.id)
            approved = time.time()
            cw.sync_faces()
            time.sleep(args.seconds)
            seen = cw.face_matcher.faces_seen
            non_matches = cw.face_matcher.non_matches
        finally:
            cw.stop()
    with lock:
        cands = list(got)
    by = Counter((c["camera_id"], c["person"]) for c in cands)
    right = by.get(RIGHT, 0)
    wrong = sum(n for k, n in by.items() if k != RIGHT)
    first = min((c["published_at"] for c in cands if (c["camera_id"], c["person"]) == RIGHT),
                default=None)  # fmt: skip
    result = {
        "bench": "faces_video",
        "seconds": args.seconds,
        "threshold": cw.face_threshold(),
        "face_shots": seen,
        "shots_matching_no_one": non_matches,
        "candidates": {f"{cam}/{person}": n for (cam, person), n in sorted(by.items())},
        "right": right,
        "wrong": wrong,
        "first_candidate_after_approval_s": round(first - approved, 2) if first else None,
        "shot_to_candidate": summary_ms(c["published_at"] - c["ts"] for c in cands),
        "machine": machine(),
    }
    emit(
        "faces_video",
        result,
        [
            f"{args.seconds:.0f} s, threshold {result['threshold']}: {seen} face shots sent, "
            f"{non_matches} matched no one",
            f"candidates: {result['candidates']}",
            f"right (Lin-Manuel Miranda on stage): {right}; wrong: {wrong}",
            f"first right candidate {result['first_candidate_after_approval_s']} s after approval",
            f"frame capture to candidate in the server: {result['shot_to_candidate']}",
        ],
    )


if __name__ == "__main__":
    main()
