"""Cases hold evidence past ordinary retention: a hotlist hit attached to an open case
keeps its alert and its plate read (crop included) when plate retention runs, and closing
the case lets retention take them. Through the real API and database (SQLite and
PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

from citywatch.analytics.messages import PlateResult
from citywatch.imaging import encode_jpeg_array
from citywatch.store.models import Alert, PlateRead
from tests.conftest import add_user, login


def _read(cam: str, ts: float, text: str) -> PlateResult:
    import numpy as np

    crop = encode_jpeg_array(np.full((40, 160, 3), 200, np.uint8))
    return PlateResult(cam, 1, ts, text, text, "", "", 0.9, 5, 4, crop)


def test_a_case_keeps_its_hotlist_hit_and_read_past_retention(app_client: Any, db_url: str) -> None:
    cw, client = app_client(database_url=db_url)
    add_user(cw, "inv", "investigator")
    add_user(cw, "op", "operator")
    inv, op = login(client, "inv"), login(client, "op")
    r = client.post(
        "/api/v1/hotlists",
        json={"name": "stolen", "reason": "stolen", "legal_basis": "Police Act 7"},
        headers=inv,
    )
    hl = r.json()["id"]
    client.post(f"/api/v1/hotlists/{hl}/entries", json={"plate": "BG123AB"}, headers=inv)
    old = time.time() - 40 * 86400  # older than the 30 days plate retention
    cw.hotlists.refresh_s = 0
    cw.events.handle(_read("cam1", old, "BG123AB"))
    cw.events.handle(_read("cam1", old + 1, "NS456CD"))
    with cw.db.session() as s:
        alert = s.query(Alert).filter(Alert.kind == "hotlist").one()
        hit_read = s.query(PlateRead).filter(PlateRead.normalised == "BG123AB").one()
    crop = cw.settings.data_dir / str(hit_read.crop)
    assert crop.is_file()

    assert client.post("/api/v1/cases", json={"reference": "K-1/26"}, headers=op).status_code == 403
    case = client.post("/api/v1/cases", json={"reference": "K-1/26"}, headers=inv).json()
    r = client.post("/api/v1/cases", json={"reference": "K-1/26"}, headers=inv)
    assert r.status_code == 422 and "exists" in r.text
    r = client.post(
        f"/api/v1/cases/{case['id']}/items", json={"kind": "alert", "ref_id": alert.id}, headers=inv
    )
    assert r.status_code == 201, r.text
    held = {(i["kind"], i["ref_id"]) for i in r.json()["items"]}
    assert held == {("alert", alert.id), ("plate_read", hit_read.id)}
    r = client.post(
        f"/api/v1/cases/{case['id']}/items", json={"kind": "alert", "ref_id": alert.id}, headers=inv
    )
    assert r.status_code == 422 and "already" in r.text
    r = client.post(
        f"/api/v1/cases/{case['id']}/items", json={"kind": "alert", "ref_id": 999}, headers=inv
    )
    assert r.status_code == 404

    assert cw.plate_store.expire() == 1  # the other read; the held one stays
    with cw.db.session() as s:
        assert [r.normalised for r in s.query(PlateRead)] == ["BG123AB"]
    assert crop.is_file()
    # Still findable by partial search, past the vocabulary's retention too.
    r = client.get(
        "/api/v1/plates/search",
        params={"q": "*123*", "mode": "partial", "purpose": "case K-1/26"},
        headers=inv,
    )
    assert [h["normalised"] for h in r.json()["items"]] == ["BG123AB"], r.text

    r = client.post(f"/api/v1/cases/{case['id']}/close", headers=inv)
    assert r.json()["open"] is False
    r = client.post(
        f"/api/v1/cases/{case['id']}/items", json={"kind": "alert", "ref_id": alert.id}, headers=inv
    )
    assert r.status_code == 422 and "closed" in r.text
    assert cw.plate_store.expire() == 1
    assert not crop.exists()
    entries, _ = cw.audit.page(action="case.attach")
    assert entries and entries[0].actor == "inv"
