"""Face identification under legal authorisation, through the real API, database and face
models: nothing runs without an authorisation; requester and approver differ; a candidate
goes out only after two different reviewers confirm it; expiry stops matching and purges;
the use log has every field; enrolment refuses bad images; retrospective search stays in
its scope.

Face shots are what an analysis worker sends (`FaceSeen`), built here from real photos of
../shared/data/faces/face_recognition_examples with the real engine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import add_user, camera, login, wait_for
from tests.support.faces import FACES, face_engine, face_shot

API = "/api/v1"
SAME_PERSON = ("obama2.jpg", "obama-720p.jpg", "obama-480p.jpg")


@pytest.fixture(scope="module")
def engine() -> Any:
    return face_engine()


def _bytes(name: str) -> bytes:
    return (FACES / name).read_bytes()


_shot = face_shot


class Setup:
    def __init__(self, app_client: Any) -> None:
        self.cw, self.client = app_client([camera("cam1", "rtsp://127.0.0.1:9/none")])
        for name, role in [
            ("inv", "investigator"),
            ("judge", "authority"),
            ("rev1", "reviewer"),
            ("rev2", "reviewer"),
            ("aud", "auditor"),
            ("admin", "admin"),
        ]:
            add_user(self.cw, name, role)
        self.h = {name: login(self.client, name) for name in ("inv", "judge", "rev1", "rev2")}
        self.h["aud"] = login(self.client, "aud")
        self.h["admin"] = login(self.client, "admin")

    def post(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.post(API + path, headers=self.h[who], **kw)

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(API + path, headers=self.h[who], **kw)

    def watchlist(self) -> tuple[int, int]:
        r = self.post("inv", "/faces/watchlists", json={"name": "missing", "legal_basis": "CPC 1"})
        assert r.status_code == 201, r.text
        wl = r.json()["id"]
        r = self.post("inv", f"/faces/watchlists/{wl}/persons", json={"label": "Obama"})
        person = r.json()["id"]
        r = self.post(
            "inv",
            f"/faces/persons/{person}/enrolments",
            files={"image": ("obama.jpg", _bytes("obama.jpg"), "image/jpeg")},
            data={"source": "family photo, case 12/26", "legal_basis": "CPC art. 7"},
        )
        assert r.status_code == 201, r.text
        return wl, person

    def authorise(self, wl: int, seconds: float = 3600, **kw: Any) -> int:
        now = time.time()
        body = {
            "mode": "realtime",
            "legal_basis": "Law on Police, art. 45",
            "authority": "Higher Court Belgrade",
            "authority_ref": "Kpp 123/26",
            "objective": "missing person",
            "camera_ids": ["cam1"],
            "watchlist_ids": [wl],
            "valid_from": now - 1,
            "valid_to": now + seconds,
            **kw,
        }
        r = self.post("inv", "/authorisations", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "pending"
        auth = int(r.json()["id"])
        r = self.post("judge", f"/authorisations/{auth}/approve")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "active"
        return auth


def test_nothing_matches_without_an_authorisation(app_client: Any, engine: Any) -> None:
    s = Setup(app_client)
    s.watchlist()
    assert s.cw.face_matcher.handle(_shot(engine, "obama2.jpg")) == []
    assert s.cw.face_matcher.unauthorised == 1
    assert s.cw.analytics.faces_on() == set()
    assert s.get("rev1", "/faces/candidates").json() == []


def test_requester_cannot_approve_and_roles_are_separate(app_client: Any, engine: Any) -> None:
    s = Setup(app_client)
    wl, _ = s.watchlist()
    now = time.time()
    body = {
        "mode": "realtime",
        "legal_basis": "Law on Police, art. 45",
        "authority": "Higher Court",
        "authority_ref": "Kpp 1/26",
        "objective": "imminent threat",
        "camera_ids": ["cam1"],
        "watchlist_ids": [wl],
        "valid_from": now,
        "valid_to": now + 600,
    }
    # The administrator has no biometric powers at all.
    assert s.post("admin", "/authorisations", json=body).status_code == 403
    auth = s.post("inv", "/authorisations", json=body).json()["id"]
    # The requester lacks the authority role; an authority who requested it could not either.
    assert s.post("inv", f"/authorisations/{auth}/approve").status_code == 403
    assert s.post("admin", f"/authorisations/{auth}/approve").status_code == 403
    row = s.cw.authorisations.get(auth)
    with pytest.raises(ValueError, match="cannot approve"):
        s.cw.authorisations.approve(row.created_by, auth)
    # Bad requests say why.
    r = s.post("inv", "/authorisations", json={**body, "camera_ids": ["nope"]})
    assert r.status_code == 422 and "no camera nope" in r.text
    r = s.post("inv", "/authorisations", json={**body, "watchlist_ids": []})
    assert r.status_code == 422 and "needs a watchlist" in r.text
    r = s.post("inv", "/authorisations", json={**body, "valid_to": now - 5})
    assert r.status_code == 422
    assert s.post("judge", f"/authorisations/{auth}/approve").status_code == 200


def test_four_eyes_confirmation_before_anything_goes_out(app_client: Any, engine: Any) -> None:
    s = Setup(app_client)
    wl, person = s.watchlist()
    auth = s.authorise(wl)
    wait_for(lambda: "cam1" in s.cw.analytics.faces_on(), 5, "face analysis switched on")
    delivered: list[dict[str, Any]] = []
    s.cw.face_matcher.deliver = delivered.append  # what MQTT/webhooks would be handed

    # A different person is not proposed; the enrolled one is.
    assert s.cw.face_matcher.handle(_shot(engine, "biden.jpg", track=1)) == []
    cands = s.cw.face_matcher.handle(_shot(engine, "obama2.jpg", track=2))
    assert len(cands) == 1 and cands[0].person_id == person
    # Later shots of the same track do not propose again.
    assert s.cw.face_matcher.handle(_shot(engine, "obama-480p.jpg", track=2)) == []
    cid = cands[0].id
    listed = s.get("rev1", "/faces/candidates").json()
    assert [c["id"] for c in listed] == [cid]
    assert listed[0]["score"] >= listed[0]["threshold"]
    assert s.get("rev1", f"/faces/candidates/{cid}/crop.jpg").content[:2] == b"\xff\xd8"
    assert s.get("inv", "/faces/candidates").status_code == 403  # reviewers only

    r = s.post("rev1", f"/faces/candidates/{cid}/review", json={"decision": "confirm"})
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert delivered == []  # one confirmation is not enough
    r = s.post("rev1", f"/faces/candidates/{cid}/review", json={"decision": "confirm"})
    assert r.status_code == 422 and "second person" in r.text
    assert delivered == []
    r = s.post("rev2", f"/faces/candidates/{cid}/review", json={"decision": "confirm"})
    assert r.json()["status"] == "confirmed"
    assert len(delivered) == 1
    alert = delivered[0]
    assert alert["kind"] == "face" and alert["person"] == "Obama"
    assert sorted(alert["confirmed_by"]) == ["rev1", "rev2"]

    # A rejection by either reviewer closes a candidate without an alert.
    other = s.cw.face_matcher.handle(_shot(engine, "obama-720p.jpg", track=3))[0].id
    r = s.post("rev2", f"/faces/candidates/{other}/review", json={"decision": "reject"})
    assert r.json()["status"] == "rejected"
    assert len(delivered) == 1
    assert auth


def test_expiry_stops_matching_purges_and_the_use_log_has_every_field(
    app_client: Any, engine: Any
) -> None:
    s = Setup(app_client)
    wl, _ = s.watchlist()
    shots = [_shot(engine, name, track=i) for i, name in enumerate(SAME_PERSON, 1)]
    auth = s.authorise(wl, seconds=5)
    confirmed, rejected, pending = (s.cw.face_matcher.handle(shot)[0] for shot in shots)
    for who in ("rev1", "rev2"):
        s.post(who, f"/faces/candidates/{confirmed.id}/review", json={"decision": "confirm"})
    s.post("rev1", f"/faces/candidates/{rejected.id}/review", json={"decision": "reject"})
    data_dir: Path = s.cw.settings.data_dir
    assert pending.crop is not None and (data_dir / pending.crop).is_file()

    wait_for(
        lambda: s.cw.authorisations.get(auth).ended_at is not None,
        10,
        "the authorisation to end and be purged",
    )
    # Matching stopped, face analysis is off, the undecided and rejected are gone.
    assert s.cw.face_matcher.handle(_shot(engine, "obama2.jpg", track=9)) == []
    wait_for(lambda: s.cw.analytics.faces_on() == set(), 5, "face analysis switched off")
    left = {c["id"]: c["status"] for c in s.cw.face_matcher.candidates(status=None)}
    assert left == {confirmed.id: "confirmed"}
    assert not (data_dir / pending.crop).exists()
    assert rejected.crop is not None and not (data_dir / rejected.crop).exists()

    r = s.get("aud", f"/authorisations/{auth}/use-log")
    assert r.status_code == 200
    log = r.json()
    assert log["chain"]["verified"] is True
    a = log["authorisation"]
    for field in ("legal_basis", "authority", "authority_ref", "objective", "approved_by"):
        assert a[field]
    actions = [e["action"] for e in log["entries"]]
    assert actions[0] == "faces.authorisation.create"
    for needed in (
        "faces.authorisation.approve",
        "faces.use.start",
        "faces.match.candidate",
        "faces.match.review",
        "faces.match.confirmed",
        "faces.use.end",
        "faces.authorisation.purge",
    ):
        assert needed in actions, needed
    start = next(e for e in log["entries"] if e["action"] == "faces.use.start")
    assert start["details"]["watchlists"][0]["version"]  # the reference database's hash
    cand = next(e for e in log["entries"] if e["action"] == "faces.match.candidate")
    assert len(cand["details"]["input_sha256"]) == 64  # the input that led to the match
    assert cand["details"]["camera"] == "cam1"
    done = next(e for e in log["entries"] if e["action"] == "faces.match.confirmed")
    assert sorted(done["details"]["verified_by"]) == ["rev1", "rev2"]
    purge = next(e for e in log["entries"] if e["action"] == "faces.authorisation.purge")
    assert purge["details"]["deleted"] == {"rejected_candidates": 1, "undecided_candidates": 1}
    assert s.get("inv", f"/authorisations/{auth}/use-log").status_code == 403


def test_revocation_stops_matching_at_once(app_client: Any, engine: Any) -> None:
    s = Setup(app_client)
    wl, _ = s.watchlist()
    auth = s.authorise(wl)
    assert s.cw.face_matcher.handle(_shot(engine, "obama2.jpg", track=1))
    r = s.post("judge", f"/authorisations/{auth}/revoke", json={"reason": "objective met"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert s.cw.face_matcher.handle(_shot(engine, "obama2.jpg", track=2)) == []
    assert r.json()["purged"] == {"rejected_candidates": 0, "undecided_candidates": 1}


def test_enrolment_refuses_bad_images_and_missing_provenance(app_client: Any, engine: Any) -> None:
    s = Setup(app_client)
    r = s.post("inv", "/faces/watchlists", json={"name": "wanted", "legal_basis": "CPC 1"})
    wl = r.json()["id"]
    person = s.post("inv", f"/faces/watchlists/{wl}/persons", json={"label": "X"}).json()["id"]
    prov = {"source": "passport office", "legal_basis": "CPC art. 7"}

    def enrol(data: bytes, form: dict[str, str] = prov) -> Any:
        return s.post(
            "inv",
            f"/faces/persons/{person}/enrolments",
            files={"image": ("x.jpg", data, "image/jpeg")},
            data=form,
        )

    r = enrol(_bytes("obama.jpg"), {"source": "", "legal_basis": ""})
    assert r.status_code == 422 and "source" in r.text
    r = enrol(_bytes("two_people.jpg"))
    assert r.status_code == 422 and "2 faces" in r.text
    from citywatch.analytics.faces import load_image
    from citywatch.imaging import encode_jpeg_array

    # No face: a flat grey picture.
    r = enrol(encode_jpeg_array(np.full((240, 320, 3), 128, np.uint8)))
    assert r.status_code == 422 and "no face" in r.text
    small = np.ascontiguousarray(load_image(FACES / "obama.jpg")[::6, ::6])
    r = enrol(encode_jpeg_array(small))
    assert r.status_code == 422 and "too small" in r.text
    r = enrol(b"not an image at all")
    assert r.status_code == 422
    assert enrol(_bytes("obama.jpg")).status_code == 201
    entries, _ = s.cw.audit.page(action="faces.enrol")
    refused = [e for e in entries if e.outcome == "refused"]
    assert len(refused) >= 3


def test_retrospective_search_cannot_reach_outside_its_scope(app_client: Any, engine: Any) -> None:
    s = Setup(app_client)
    s.cw.cameras.upsert(camera("cam2", "rtsp://127.0.0.1:9/other"))
    now = time.time()
    body = {
        "mode": "retrospective",
        "legal_basis": "CPC art. 286",
        "authority": "Prosecutor",
        "authority_ref": "KTR 9/26",
        "objective": "robbery of 20 Nov",
        "camera_ids": ["cam1"],
        "valid_from": now - 1,
        "valid_to": now + 600,
        "footage_from": now - 3600,
        "footage_to": now - 1800,
    }
    auth = s.post("inv", "/authorisations", json=body).json()["id"]

    def search(**kw: Any) -> Any:
        form = {
            "authorisation_id": str(auth),
            "camera_ids": "cam1",
            "start": str(now - 3500),
            "end": str(now - 1900),
            "purpose": "identify the suspect",
            "case_ref": "KTR 9/26",
            **kw,
        }
        return s.post(
            "inv",
            "/faces/searches",
            files={"probe": ("p.jpg", _bytes("obama.jpg"), "image/jpeg")},
            data=form,
        )

    assert search().status_code == 403  # not approved yet
    s.post("judge", f"/authorisations/{auth}/approve")
    assert search(camera_ids="cam1,cam2").status_code == 403
    r = search(start=str(now - 7200))
    assert r.status_code == 403 and "footage window" in r.text
    r = search(end=str(now))
    assert r.status_code == 403
    assert search(case_ref="").status_code == 422
    r = search()
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    done = wait_for(
        lambda: s.get("inv", f"/faces/searches/{sid}").json()["status"] in ("done", "failed"),
        30,
        "the search to finish",
    )
    assert done
    st = s.get("inv", f"/faces/searches/{sid}").json()
    assert st["status"] == "done" and st["segments_total"] == 0  # no footage recorded there
    entries, _ = s.cw.audit.page(action="faces.search.start")
    denied = [e for e in entries if e.outcome == "denied"]
    assert len(denied) >= 3


def test_authorisations_name_their_watchlists_for_the_authority(app_client: Any) -> None:
    """The authority cannot open watchlists (no faces.watchlist), so an authorisation shows
    the name, legal basis and version of each watchlist it covers."""
    s = Setup(app_client)
    r = s.post("inv", "/faces/watchlists", json={"name": "missing", "legal_basis": "CPC 1"})
    wl = r.json()
    assert s.get("judge", "/faces/watchlists").status_code == 403
    now = time.time()
    body = {
        "mode": "realtime",
        "legal_basis": "Law on Police, art. 45",
        "authority": "Higher Court",
        "authority_ref": "Kpp 2/26",
        "objective": "missing person",
        "camera_ids": ["cam1"],
        "watchlist_ids": [wl["id"]],
        "valid_from": now,
        "valid_to": now + 600,
    }
    r = s.post("inv", "/authorisations", json=body)
    assert r.status_code == 201, r.text
    named = [{"id": wl["id"], "name": "missing", "legal_basis": "CPC 1", "version": wl["version"]}]
    assert r.json()["watchlists"] == named
    auth = r.json()["id"]
    assert s.get("judge", f"/authorisations/{auth}").json()["watchlists"] == named
    assert [a["watchlists"] for a in s.get("judge", "/authorisations").json()] == [named]
    assert s.post("judge", f"/authorisations/{auth}/approve").json()["watchlists"] == named
    r = s.post("judge", f"/authorisations/{auth}/revoke", json={"reason": "objective met"})
    assert r.json()["watchlists"] == named


def test_bulk_import_needs_provenance_and_reports_each_refusal(tmp_path: Path, engine: Any) -> None:
    import shutil

    from typer.testing import CliRunner

    from citywatch.cli import app

    folder = tmp_path / "people"
    (folder / "obama").mkdir(parents=True)
    shutil.copy(FACES / "obama.jpg", folder / "obama" / "a.jpg")
    shutil.copy(FACES / "two_people.jpg", folder / "obama" / "b.jpg")
    shutil.copy(FACES / "biden.jpg", folder / "Joe Biden.jpg")
    d = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()

    r = runner.invoke(app, ["faces", "import", str(folder), "--watchlist", "wanted", "--source", "",
                            "--legal-basis", "", *d])  # fmt: skip
    assert r.exit_code == 2 and "required" in r.output
    r = runner.invoke(app, ["faces", "import", str(folder), "--watchlist", "wanted", "--source",
                            "court file 3/26", "--legal-basis", "CPC art. 7", *d])  # fmt: skip
    assert r.exit_code == 1, r.output  # one image refused
    assert "a.jpg: enrolled as obama" in r.output
    assert "b.jpg: refused" in r.output and "2 faces" in r.output
    assert "Joe Biden.jpg: enrolled as Joe Biden" in r.output
