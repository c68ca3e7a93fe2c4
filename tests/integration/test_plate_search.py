"""Plate store, search, trails, retention and hotlists on SQLite and PostgreSQL, and the
plate/hotlist API (purpose, audit, permissions, problems)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from citywatch.governance.audit import AuditLog
from citywatch.search.hotlists import HotlistError, HotlistService
from citywatch.search.plates import PlateFilter, PlateSearch, PlateStore
from citywatch.search.text import PlateTextError, weighted_distance
from citywatch.store.db import Database
from citywatch.store.models import AuditEntry, Camera, PlateGram, PlateRead, PlateText
from tests.conftest import add_user, login

T0 = 1_770_000_000.0  # a fixed "now"
H = 3600.0


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


def read(camera: str, ts: float, text: str, **kw: object) -> PlateRead:
    return PlateRead(
        camera_id=camera,
        ts=ts,
        text=text,
        normalised="",
        confidence=float(kw.pop("confidence", 0.9)),  # type: ignore[arg-type]
        **kw,
    )


SEED = [
    # camera, hours before T0, text, direction
    ("north", 1, "BG 123-AB", "in"),
    ("south", 2, "BG 123-AB", "out"),
    ("north", 30, "BG 123-AB", "in"),
    ("east", 3, "8G 123-AB", "in"),  # one OCR confusion (B/8)
    ("east", 4, "BG 128-AB", "out"),  # one real substitution
    ("west", 5, "BG 12-AB", "in"),  # one deletion
    ("west", 6, "NS 123-AB", "in"),  # two substitutions
    ("north", 7, "NI 456-CD", "in"),
    ("south", 8, "KG 1234-XY", None),
    ("south", 9, "BG 9912-ZZ", None),
    ("north", 10, "BČ 777-ŠA", None),  # diacritics fold to BC777SA
]


@pytest.fixture
def seeded(db: Database, tmp_path: Path) -> tuple[PlateStore, PlateSearch]:
    store = PlateStore(db, tmp_path)
    with db.session() as s, s.begin():
        for cam, lat in (("north", 44.81), ("south", 44.79)):
            s.add(
                Camera(
                    id=cam,
                    name=cam.title(),
                    lat=lat,
                    lon=20.46,
                    address=f"{cam} gate",
                    main_url="rtsp://x",
                    purpose="Traffic",
                    legal_basis="Test",
                    created_at=T0,
                    updated_at=T0,
                )
            )
    for cam, hours, text, direction in SEED:
        store.add(read(cam, T0 - hours * H, text, direction=direction))
    return store, PlateSearch(db)


def texts(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.read.normalised for h in hits]


def test_weighted_distance_counts_ocr_confusions_as_half() -> None:
    assert weighted_distance("BG123AB", "BG123AB") == 0
    assert weighted_distance("BG123AB", "8G123AB") == 0.5
    assert weighted_distance("BG123AB", "8G123A8") == 1.0
    assert weighted_distance("O0IS", "0O1S") == 1.5
    assert weighted_distance("BG123AB", "BG12AB") == 1.0
    assert weighted_distance("BG123AB", "NS123AB") == 2.0
    assert weighted_distance("BG123AB", "XYZ") > 2


def test_vocabulary_and_grams_are_kept(
    db: Database, seeded: tuple[PlateStore, PlateSearch]
) -> None:
    with db.session() as s:
        vocab = {t.normalised: t.reads for t in s.scalars(select(PlateText))}
        assert vocab["BG123AB"] == 3 and vocab["BC777SA"] == 1
        assert len(vocab) == 9
        assert s.scalar(select(PlateGram).limit(1)) is not None
    store, search = seeded
    assert store.rebuild_vocabulary() == 9
    assert texts(search.fuzzy("BG123AB", 1))[:3] == ["BG123AB"] * 3


def test_exact_search_newest_first_with_filters(seeded: tuple[PlateStore, PlateSearch]) -> None:
    _, search = seeded
    hits = search.exact("bg-123 ab")
    assert [h.read.camera_id for h in hits] == ["north", "south", "north"]
    assert all(h.match == "exact" and h.distance == 0 for h in hits)
    assert [h.read.ts for h in hits] == sorted((h.read.ts for h in hits), reverse=True)
    assert len(search.exact("BG123AB", PlateFilter(cameras=["north"]))) == 2
    assert len(search.exact("BG123AB", PlateFilter(cameras=[]))) == 0
    assert len(search.exact("BG123AB", PlateFilter(start=T0 - 5 * H))) == 2
    assert len(search.exact("BG123AB", PlateFilter(end=T0 - 10 * H))) == 1
    assert len(search.exact("BG123AB", PlateFilter(direction="out"))) == 1
    paged = search.exact("BG123AB", PlateFilter(limit=1, offset=1))
    assert [h.read.camera_id for h in paged] == ["south"]
    assert search.exact("BČ777ŠA")[0].read.text == "BČ 777-ŠA"
    assert search.exact("XX000XX") == []


def test_partial_search_patterns(seeded: tuple[PlateStore, PlateSearch]) -> None:
    _, search = seeded
    assert sorted(set(texts(search.partial("*12*")))) == [
        "8G123AB",
        "BG123AB",
        "BG128AB",
        "BG12AB",
        "BG9912ZZ",
        "KG1234XY",
        "NS123AB",
    ]
    assert set(texts(search.partial("BG12?AB"))) == {"BG123AB", "BG128AB"}
    assert set(texts(search.partial("BG12*"))) == {"BG123AB", "BG128AB", "BG12AB"}
    assert set(texts(search.partial("*AB"))) == {
        "BG123AB",
        "8G123AB",
        "BG128AB",
        "BG12AB",
        "NS123AB",
    }
    assert texts(search.partial("ni")) == ["NI456CD"]  # no wildcard: contains
    hits = search.partial("*123*", PlateFilter(cameras=["west"]))
    assert texts(hits) == ["NS123AB"]
    ts = [h.read.ts for h in search.partial("*12*")]
    assert ts == sorted(ts, reverse=True)
    for bad in ("**", "*1*", "B[G]12", "бг123", ""):
        with pytest.raises(PlateTextError):
            search.partial(bad)


def test_fuzzy_search_ranks_exact_then_distance_then_recency(
    seeded: tuple[PlateStore, PlateSearch],
) -> None:
    _, search = seeded
    hits = search.fuzzy("BG123AB", 1)
    assert [(h.read.normalised, h.distance) for h in hits] == [
        ("BG123AB", 0.0),
        ("BG123AB", 0.0),
        ("BG123AB", 0.0),
        ("8G123AB", 0.5),
        ("BG128AB", 1.0),  # newer than BG12AB at the same distance
        ("BG12AB", 1.0),
    ]
    assert hits[0].match == "exact" and hits[3].match == "fuzzy"
    two = search.fuzzy("BG123AB", 2)
    assert ("NS123AB", 2.0) in [(h.read.normalised, h.distance) for h in two]
    assert "NS123AB" not in texts(hits)
    # confusions only: 86123A8 is 1 weighted edit from 8G123AB, 1.5 from BG123AB
    got = [(h.read.normalised, h.distance) for h in search.fuzzy("86123A8", 2)][:4]
    assert got == [("8G123AB", 1.0)] + [("BG123AB", 1.5)] * 3
    assert texts(search.fuzzy("BG123AB", 1, PlateFilter(cameras=["east"]))) == [
        "8G123AB",
        "BG128AB",
    ]
    assert len(search.fuzzy("BG123AB", 2, PlateFilter(limit=2, offset=2))) == 2
    with pytest.raises(PlateTextError):
        search.fuzzy("BG", 1)


def test_trail_is_time_ordered_with_camera_places(
    seeded: tuple[PlateStore, PlateSearch],
) -> None:
    _, search = seeded
    trail = search.trail("BG123AB")
    assert [p.read.camera_id for p in trail] == ["north", "south", "north"]
    assert [p.read.ts for p in trail] == sorted(p.read.ts for p in trail)
    assert trail[0].lat == 44.81 and trail[1].lat == 44.79 and trail[0].camera_name == "North"
    assert len(search.trail("BG123AB", start=T0 - 5 * H, end=T0)) == 2


def test_expire_deletes_old_reads_and_their_files(db: Database, tmp_path: Path) -> None:
    store = PlateStore(db, tmp_path)
    crops = tmp_path / "plates"
    crops.mkdir()
    for i, age_days in enumerate((1, 10, 40, 40)):
        cam = "short" if i == 1 else "cam"
        (crops / f"{i}.jpg").write_bytes(b"jpg")
        store.add(
            read(cam, T0 - age_days * 86400, f"BG{i}00AA", crop=f"plates/{i}.jpg", snapshot=None)
        )
    n = store.expire(now=T0, per_camera={"short": 5 * 86400})
    assert n == 3
    left = PlateSearch(db).partial("BG*")
    assert texts(left) == ["BG000AA"]
    assert sorted(p.name for p in crops.iterdir()) == ["0.jpg"]
    with db.session() as s:
        assert {t.normalised for t in s.scalars(select(PlateText))} == {"BG000AA", "BG100AA"}


# hotlists -----------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_hotlist_crud_is_audited_and_matching_tolerates_one_confusion(db: Database) -> None:
    audit = AuditLog(db)
    clock = Clock()
    hot = HotlistService(db, audit, tolerance=1, clock=clock)
    stolen = hot.create_list("ana", "Stolen", "police", "Stolen cars", "Law 1/2026", "high")
    with pytest.raises(HotlistError):
        hot.create_list("ana", "Stolen", "police", "dup", "Law", "high")
    e1 = hot.add_entry("ana", stolen.id, "BG 123-AB", "theft 17")
    hot.add_entry("ana", stolen.id, "NS*99", "pattern")
    temp = hot.add_entry("ana", stolen.id, "KG111XX", expires_at=T0 + 60)
    with pytest.raises(HotlistError):
        hot.add_entry("ana", stolen.id, "**")

    assert [h.entry_id for h in hot.check("BG123AB")] == [e1.id]
    hit = hot.check("8G123AB")[0]  # one confusion
    assert hit.confusions == 1 and hit.matched_as == "BG123AB" and hit.priority == "high"
    assert hot.check("8G123A8") == []  # two confusions
    assert hot.check("BG123AC") == []  # a real substitution is not a confusion
    assert hot.check("NS12399")[0].plate == "NS*99"
    assert hot.check("N512399")[0].confusions == 1
    assert hot.check("KG111XX")[0].entry_id == temp.id

    strict = HotlistService(db, audit, tolerance=0, clock=clock)
    assert strict.check("8G123AB") == [] and len(strict.check("BG123AB")) == 1

    clock.now = T0 + 61  # the entry expired: no match even before purge
    assert hot.check("KG111XX") == []
    hot.update_list("bob", stolen.id, {"priority": "critical", "expires_at": T0 + 3600})
    assert hot.check("BG123AB")[0].priority == "critical"
    clock.now = T0 + 3601  # the whole list expired
    assert hot.check("BG123AB") == []
    assert hot.purge_expired() == (1, 3)
    assert hot.lists() == []

    other = hot.create_list("ana", "Other", "police", "r", "l")
    e = hot.add_entry("ana", other.id, "XY123")
    hot.remove_entry("bob", other.id, e.id)
    hot.delete_list("bob", other.id)
    actions = [(x.actor, x.action) for x in audit.page(limit=100)[0]][::-1]
    assert actions == [
        ("ana", "hotlist.create"),
        ("ana", "hotlist.entry_add"),
        ("ana", "hotlist.entry_add"),
        ("ana", "hotlist.entry_add"),
        ("bob", "hotlist.update"),
        ("system", "hotlist.purge"),
        ("ana", "hotlist.create"),
        ("ana", "hotlist.entry_add"),
        ("bob", "hotlist.entry_remove"),
        ("bob", "hotlist.delete"),
    ]
    assert audit.verify().ok


# API ----------------------------------------------------------------------------------------
def test_plate_api_purpose_audit_permissions_and_problems(
    app_client, db_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cw, client = app_client(database_url=db_url)
    for name, role in (("admin", "admin"), ("inv", "investigator"), ("viewer", "viewer")):
        add_user(cw, name, role)
    store = PlateStore(cw.db, cw.settings.data_dir)
    crop = cw.settings.data_dir / "plates" / "c.jpg"
    crop.parent.mkdir(parents=True, exist_ok=True)
    crop.write_bytes(b"\xff\xd8\xff\xd9")
    now = time.time()
    first = store.add(read("north", now - 60, "BG 123-AB", crop="plates/c.jpg"))
    store.add(read("south", now - 30, "8G123AB"))
    inv = login(client, "inv")
    viewer = login(client, "viewer")
    base = "/api/v1/plates/search"

    r = client.get(f"{base}?q=BG123AB", headers=inv)
    assert r.status_code == 422 and "purpose" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.get(f"{base}?q=BG123AB&purpose=Theft+report&case_ref=K-17", headers=viewer)
    assert r.status_code == 403
    r = client.get(f"{base}?q=**&mode=partial&purpose=Theft+report", headers=inv)
    assert r.status_code == 422 and "at least 2" in r.json()["detail"]
    r = client.get(f"{base}?q=%D0%91G12&mode=partial&purpose=Theft+report", headers=inv)
    assert r.status_code == 422 and "A-Z" in r.json()["detail"]

    q = f"{base}?q=BG123AB&mode=fuzzy&edits=1&purpose=Theft+report&case_ref=K-17"
    r = client.get(q, headers=inv)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["normalised"], i["distance"]) for i in items] == [("BG123AB", 0), ("8G123AB", 0.5)]
    assert items[0]["playback"]["camera_id"] == "north" and items[0]["crop_url"]
    entry = cw.audit.page(action="plate.search")[0][0]
    assert entry.actor == "inv" and entry.purpose == "Theft report [case K-17]"
    assert entry.details["q"] == "BG123AB" and entry.details["mode"] == "fuzzy"
    assert entry.details["results"] == 2

    r = client.get(f"/api/v1/plates/reads/{first.id}/crop.jpg", headers=inv)
    assert r.status_code == 200 and r.content == b"\xff\xd8\xff\xd9"
    assert (
        client.get(f"/api/v1/plates/reads/{first.id}/crop.jpg", headers=viewer).status_code == 403
    )
    assert client.get("/api/v1/plates/reads/999999/crop.jpg", headers=inv).status_code == 404

    r = client.get("/api/v1/plates/trail?plate=BG123AB", headers=inv)
    assert r.status_code == 422
    r = client.get("/api/v1/plates/trail?plate=BG123AB&purpose=Where+was+it", headers=inv)
    assert r.status_code == 200 and len(r.json()["points"]) == 1
    assert cw.audit.page(action="plate.trail")[0][0].details["plate"] == "BG123AB"

    # hotlists
    body = {"name": "Stolen", "reason": "Stolen cars", "legal_basis": "Law 1/2026"}
    assert client.post("/api/v1/hotlists", json=body, headers=viewer).status_code == 403
    r = client.post("/api/v1/hotlists", json={**body, "priority": "high"}, headers=inv)
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    assert r.json()["owner"] == "inv"
    r = client.post(f"/api/v1/hotlists/{hid}/entries", json={"plate": "B[G]"}, headers=inv)
    assert r.status_code == 422 and "A-Z" in r.json()["detail"]
    r = client.post(f"/api/v1/hotlists/{hid}/entries", json={"plate": "BG123AB"}, headers=inv)
    assert r.status_code == 201
    eid = r.json()["id"]
    admin = login(client, "admin")
    r = client.patch(f"/api/v1/hotlists/{hid}", json={"priority": "critical"}, headers=admin)
    assert r.status_code == 200 and r.json()["priority"] == "critical"
    r = client.patch(f"/api/v1/hotlists/{hid}", json={"priority": "urgent"}, headers=admin)
    assert r.status_code == 422
    got = client.get(f"/api/v1/hotlists/{hid}", headers=inv).json()
    assert [e["plate"] for e in got["entries"]] == ["BG123AB"]
    assert client.get("/api/v1/hotlists", headers=inv).json()["total"] == 1
    assert client.delete(f"/api/v1/hotlists/{hid}/entries/{eid}", headers=inv).status_code == 204
    assert client.delete(f"/api/v1/hotlists/{hid}/entries/{eid}", headers=inv).status_code == 404
    assert client.delete(f"/api/v1/hotlists/{hid}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/hotlists/{hid}", headers=inv).status_code == 404
    with cw.db.session() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.action.like("hotlist.%")).order_by(AuditEntry.seq)
        ).all()
    assert [(e.actor, e.action) for e in rows] == [
        ("inv", "hotlist.create"),
        ("inv", "hotlist.entry_add"),
        ("admin", "hotlist.update"),
        ("inv", "hotlist.entry_remove"),
        ("admin", "hotlist.delete"),
    ]
    assert cw.audit.verify().ok
