"""Retrospective search by photo over real recordings: a camera streams the Hamilton clip
through the real RTSP server and records it; under a retrospective authorisation for that
camera and window, a photo of Lin-Manuel Miranda finds him in the footage, ranked first,
with crops and playback links, and a photo of someone else finds no match. When the
authorisation ends, the faces that did not match are deleted; the matches stay with the
case.
"""

from __future__ import annotations

import time
from typing import Any

from citywatch.config import AnalyticsConfig
from citywatch.store.models import FaceAppearance
from tests.conftest import MEDIA_CACHE, add_user, camera, login, shared_video, wait_for
from tests.support.faces import FACES, face_engine
from tests.support.rtsp import RtspServer, to_ts


def test_search_by_photo_finds_the_person_in_recorded_video(app_client: Any) -> None:
    face_engine()
    clip = to_ts(shared_video("hamilton-clip.mp4"), MEDIA_CACHE / "hamilton-g15.ts", gop=15)
    with RtspServer({"stage": clip}) as server:
        cw, client = app_client(
            [camera("stage", server.url("stage"), analytics=AnalyticsConfig(enabled=False))],
        )
        t0 = time.time()
        wait_for(
            lambda: len(cw.index.range("stage", t0 - 60, time.time() + 60)) >= 5,
            60,
            "10 s of recording",
        )
        add_user(cw, "inv", "investigator")
        add_user(cw, "judge", "authority")
        inv, judge = login(client, "inv"), login(client, "judge")
        now = time.time()
        auth = client.post(
            "/api/v1/authorisations",
            json={
                "mode": "retrospective",
                "legal_basis": "CPC art. 286",
                "authority": "Prosecutor",
                "authority_ref": "KTR 1/26",
                "objective": "identify a witness",
                "camera_ids": ["stage"],
                "valid_from": now - 1,
                "valid_to": now + 3600,
                "footage_from": t0 - 60,
                "footage_to": now,
                "keep_matches_days": 30,
            },
            headers=inv,
        ).json()["id"]
        assert client.post(f"/api/v1/authorisations/{auth}/approve", headers=judge).is_success

        def search(photo: str) -> dict[str, Any]:
            r = client.post(
                "/api/v1/faces/searches",
                files={"probe": (photo, (FACES / photo).read_bytes(), "image/jpeg")},
                data={
                    "authorisation_id": str(auth),
                    "camera_ids": "stage",
                    "start": str(t0 - 60),
                    "end": str(now),
                    "purpose": "identify a witness",
                    "case_ref": "KTR 1/26",
                },
                headers=inv,
            )
            assert r.status_code == 202, r.text
            sid = r.json()["id"]
            wait_for(
                lambda: (
                    client.get(f"/api/v1/faces/searches/{sid}", headers=inv).json()["status"]
                    in ("done", "failed")
                ),
                180,
                "the search to finish",
            )
            out = client.get(f"/api/v1/faces/searches/{sid}/results", headers=inv).json()
            assert out["search"]["status"] == "done", out["search"]
            assert out["search"]["progress"] == 1.0 and out["search"]["segments_total"] >= 5
            return dict(out)

        lin = search("lin-manuel-miranda.png")
        results = lin["results"]
        assert results and results[0]["match"], results[:3]
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        top = results[0]
        assert t0 - 60 <= top["ts"] <= now
        assert client.get(top["crop"], headers=inv).content[:2] == b"\xff\xd8"
        assert top["playback"].startswith("/api/v1/cameras/stage/playback.mp4?start=")

        other = search("obama.jpg")
        assert other["results"] and not any(r["match"] for r in other["results"])

        # The case holds the first search; the authorisation ends; passers-by are purged.
        case = client.post("/api/v1/cases", json={"reference": "KTR 1/26"}, headers=inv).json()
        r = client.post(
            f"/api/v1/cases/{case['id']}/items",
            json={"kind": "face_search", "ref_id": lin["search"]["id"]},
            headers=inv,
        )
        assert r.status_code == 201, r.text
        r = client.post(
            f"/api/v1/authorisations/{auth}/revoke", json={"reason": "done"}, headers=judge
        )
        assert r.json()["status"] == "revoked"
        deleted = r.json()["purged"]["non_matching_faces"]
        assert deleted >= len(other["results"])
        with cw.db.session() as s:
            left = s.query(FaceAppearance).all()
        assert left and all(a.score >= cw.face_threshold() for a in left)
        assert {a.search_id for a in left} == {lin["search"]["id"]}
        # Long after the end of the use, the case still holds its search.
        assert cw.face_search.expire(time.time() + 365 * 86400) == 1  # only the other one
        assert cw.face_search.get(lin["search"]["id"]).status == "done"
