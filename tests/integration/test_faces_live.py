"""Watchlist hit in live video: the six people of face_recognition_examples are enrolled,
the Hamilton clip (Lin-Manuel Miranda on stage) streams through the real RTSP server, and
under a real-time authorisation the right person is proposed to reviewers, and nobody else.
Before the authorisation, and for the faces that match no one, nothing is stored.
"""

from __future__ import annotations

import time
from typing import Any

from citywatch.config import AnalyticsConfig, DetectorConfig
from citywatch.store.models import FaceCandidate
from tests.conftest import MEDIA_CACHE, add_user, camera, login, shared_video, wait_for
from tests.support.faces import FACES, PEOPLE, face_engine
from tests.support.rtsp import RtspServer, to_ts


def test_the_right_person_is_proposed_from_an_rtsp_camera(app_client: Any) -> None:
    face_engine()
    clip = to_ts(shared_video("hamilton-clip.mp4"), MEDIA_CACHE / "hamilton-g15.ts", gop=15)
    with RtspServer({"stage": clip}) as server:
        # The camera's own analytics are off: the authorisation switches person tracking on.
        cw, client = app_client(
            [camera("stage", server.url("stage"), analytics=AnalyticsConfig(enabled=False))],
            detector=DetectorConfig(workers=1),
        )
        add_user(cw, "inv", "investigator")
        add_user(cw, "judge", "authority")
        add_user(cw, "rev", "reviewer")
        inv, judge, rev = login(client, "inv"), login(client, "judge"), login(client, "rev")
        wl = client.post(
            "/api/v1/faces/watchlists",
            json={"name": "test", "legal_basis": "test fixture"},
            headers=inv,
        ).json()["id"]
        for label, name in PEOPLE.items():
            pid = client.post(
                f"/api/v1/faces/watchlists/{wl}/persons", json={"label": label}, headers=inv
            ).json()["id"]
            r = client.post(
                f"/api/v1/faces/persons/{pid}/enrolments",
                files={"image": (name, (FACES / name).read_bytes(), "image/jpeg")},
                data={"source": "face_recognition examples (MIT)", "legal_basis": "test"},
                headers=inv,
            )
            assert r.status_code == 201, r.text

        # Unauthorised: the stream runs, nobody is analysed for faces, nothing is stored.
        time.sleep(3)
        assert cw.analytics.faces_on() == set()
        assert cw.face_matcher.faces_seen == 0

        now = time.time()
        auth = client.post(
            "/api/v1/authorisations",
            json={
                "mode": "realtime",
                "legal_basis": "test",
                "authority": "Test court",
                "authority_ref": "T-1",
                "objective": "find a missing person",
                "camera_ids": ["stage"],
                "watchlist_ids": [wl],
                "valid_from": now,
                "valid_to": now + 3600,
            },
            headers=inv,
        ).json()["id"]
        assert client.post(f"/api/v1/authorisations/{auth}/approve", headers=judge).is_success

        found = wait_for(
            lambda: client.get("/api/v1/faces/candidates", headers=rev).json(),
            90,
            "a candidate match from the live stream",
        )
        time.sleep(10)  # a few more loops of the clip: nobody else may turn up
        found = client.get("/api/v1/faces/candidates", headers=rev).json()
        assert {c["person"] for c in found} == {"Lin-Manuel Miranda"}, found
        assert all(c["score"] >= c["threshold"] for c in found)
        assert cw.face_matcher.faces_seen >= len(found)
        with cw.db.session() as s:
            stored = s.query(FaceCandidate).count()
        assert stored == len(found)  # the non-matching shots left nothing behind
