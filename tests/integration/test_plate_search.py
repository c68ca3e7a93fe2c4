"""Plate store, search, trails, retention and hotlists on SQLite and PostgreSQL, and the
plate/hotlist API (purpose, audit, permissions, problems)."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, insert, select

from citywatch.governance.audit import AuditLog
from citywatch.search import plates as plates_module
from citywatch.search.hotlists import HotlistError, HotlistService
from citywatch.search.plates import PlateFilter, PlateSearch, PlateStore
from citywatch.search.text import (
    CANON_ALPHABET,
    PlateTextError,
    canon,
    deletions,
    fuzzy_keys,
    levenshtein,
    parse_pattern,
    pattern_regex,
    weighted_distance,
)
from citywatch.store.db import Database, alembic_config
from citywatch.store.models import (
    AuditEntry,
    Camera,
    PlateGram,
    PlateRead,
    PlateText,
    PlateVariant,
)
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


def test_expire_forgets_the_index_keys_of_gone_plates(db: Database, tmp_path: Path) -> None:
    store = PlateStore(db, tmp_path)
    store.add(read("cam", T0 - 40 * 86400, "BG 111-AA"))
    store.add(read("cam", T0 - 1 * 86400, "BG 122-AA"))
    assert store.expire(now=T0) == 1
    with db.session() as s:
        (kept,) = s.scalars(select(PlateText)).all()
        assert {g.text_id for g in s.scalars(select(PlateGram))} == {kept.id}
        assert {v.text_id for v in s.scalars(select(PlateVariant))} == {kept.id}
    search = PlateSearch(db)
    assert texts(search.fuzzy("BG112AA", 2)) == ["BG122AA"]
    assert texts(search.partial("*111*")) == []


# search against brute force --------------------------------------------------------------
def _lev(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def _one_edit(c: str) -> set[str]:
    out = {c[:i] + c[i + 1 :] for i in range(len(c))}
    for i in range(len(c) + 1):
        out.update(c[:i] + a + c[i:] for a in "A81")
    for i in range(len(c)):
        out.update(c[:i] + a + c[i + 1 :] for a in "A81")
    return out


def test_fuzzy_keys_reach_every_text_within_two_edits() -> None:
    """Every canonical text one or two plain edits away (all of them, over a small alphabet)
    shares a deletion variant with a key; the plain distance is the bit-parallel one."""
    for q in ("A18", "AA81", "1A81A", "A8A8181"):
        one = _one_edit(q)
        two = set().union(*(_one_edit(t) for t in one))
        keys1, keys2 = fuzzy_keys(q, 1), fuzzy_keys(q, 2)
        for t in one:
            assert keys1 & deletions(t), (q, t)
        for t in two:
            assert keys2 & deletions(t), (q, t)
            assert levenshtein(q, t) == _lev(q, t) <= 2
    assert CANON_ALPHABET == "0123456789ACDEFHJKLMNPQRTUVWXY"
    rng = random.Random(3)
    for _ in range(2000):
        a = "".join(rng.choices("AB01", k=rng.randrange(0, 12)))
        b = "".join(rng.choices("AB01", k=rng.randrange(0, 12)))
        assert levenshtein(a, b) == _lev(a, b)


def _random_plates(rng: random.Random) -> tuple[list[str], list[str]]:
    """Plates crowded together (small alphabets, OCR-confusable characters) so that one and
    two edits of every kind connect many of them: (base plates, all plates)."""
    bases = [
        rng.choice(["BG", "B6", "NS", "N5", "8G"])
        + "".join(rng.choices("0128", k=rng.choice((3, 4))))
        + "".join(rng.choices("ABOS", k=2))
        for _ in range(40)
    ]
    out = set(bases)
    alphabet = "ABGOS0128"
    for b in bases:
        for _ in range(6):
            t = b
            for _ in range(rng.randrange(1, 3)):
                i = rng.randrange(len(t))
                op = rng.randrange(3)
                if op == 0 and len(t) > 4:
                    t = t[:i] + t[i + 1 :]
                elif op == 1:
                    t = t[:i] + rng.choice(alphabet) + t[i:]
                else:
                    t = t[:i] + rng.choice(alphabet) + t[i + 1 :]
            out.add(t)
    return sorted(set(bases)), sorted(out)


@pytest.fixture
def crowd(db: Database, tmp_path: Path) -> tuple[PlateSearch, list[PlateRead]]:
    rng = random.Random(17)
    store = PlateStore(db, tmp_path)
    reads = []
    for plate in _random_plates(rng)[1]:
        for _ in range(rng.choice((1, 1, 2, 3, 6))):
            r = read(
                rng.choice(("c1", "c2", "c3")),
                T0 - rng.random() * 100 * H,
                plate,
                direction=rng.choice(("in", "out", None)),
            )
            reads.append(store.add(r))
    return PlateSearch(db), reads


FILTERS = [
    PlateFilter(limit=1000),
    PlateFilter(limit=7, offset=3),
    PlateFilter(limit=3, offset=1),
    PlateFilter(cameras=["c2"], limit=20),
    PlateFilter(start=T0 - 60 * H, end=T0 - 20 * H, limit=15),
    PlateFilter(cameras=["c1", "c3"], direction="in", end=T0 - 50 * H, limit=10),
]


def _keep(r: PlateRead, f: PlateFilter) -> bool:
    return (
        (f.cameras is None or r.camera_id in f.cameras)
        and (f.start is None or r.ts >= f.start)
        and (f.end is None or r.ts <= f.end)
        and (not f.direction or r.direction == f.direction)
    )


def _page(rows: list[tuple[float, PlateRead]], f: PlateFilter) -> list[tuple[int, float]]:
    rows = sorted(rows, key=lambda x: (x[0], -x[1].ts, -x[1].id))
    return [(r.id, d) for d, r in rows[f.offset : f.offset + f.limit]]


def _brute_fuzzy(
    reads: list[PlateRead], q: str, edits: float, f: PlateFilter
) -> list[tuple[int, float]]:
    dist = {}
    last: dict[str, float] = {}
    for r in reads:
        last[r.normalised] = max(last.get(r.normalised, 0.0), r.ts)
        if r.normalised not in dist:
            dist[r.normalised] = weighted_distance(q, r.normalised, edits)
    near = sorted((p for p in dist if dist[p] <= edits), key=lambda p: (dist[p], -last[p]))
    kept = set(near[: plates_module.MAX_FUZZY_PLATES])
    return _page(
        [(dist[r.normalised], r) for r in reads if r.normalised in kept and _keep(r, f)], f
    )


def _brute_partial(reads: list[PlateRead], pattern: str, f: PlateFilter) -> list[int]:
    rx = pattern_regex(parse_pattern(pattern))
    return [
        i
        for i, _ in _page(
            [(0.0, r) for r in reads if rx.fullmatch(r.normalised) and _keep(r, f)], f
        )
    ]


def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge plates one or two at a time, plates with more reads than the page one by one,
    and take the rest in one query after four, and never treat a filter as narrow enough to
    walk its reads, so that small result sets take every path."""
    monkeypatch.setattr(plates_module, "BATCH_FIRST", 1)
    monkeypatch.setattr(plates_module, "BATCH_MAX", 2)
    monkeypatch.setattr(plates_module, "MERGE_MAX_TEXTS", 4)
    monkeypatch.setattr(plates_module, "FEW_READS", 0)
    monkeypatch.setattr(plates_module, "NARROW_READS", 0)  # (by default every filter is)


@pytest.mark.parametrize("batches", ["default", "small"])
def test_fuzzy_search_equals_brute_force(
    crowd: tuple[PlateSearch, list[PlateRead]], batches: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if batches == "small":
        _small_batches(monkeypatch)
    search, reads = crowd
    queries = [*_random_plates(random.Random(17))[0][:6], "BG012AB", "B6O12A8", "8G0O"]
    two_edit_kinds = 0
    for q, edits in itertools.product(queries, (1, 1.5, 2)):
        for f in FILTERS:
            want = _brute_fuzzy(reads, q, edits, f)
            got = [(h.read.id, h.distance) for h in search.fuzzy(q, edits, f)]
            assert got == want, (q, edits, f)
        if edits == 2:
            near = {r.normalised for r in reads if 1 < weighted_distance(q, r.normalised) <= 2}
            two_edit_kinds += len(near)
    assert two_edit_kinds > 30  # the set really has many matches at 1.5 and 2 edits


@pytest.mark.parametrize("batches", ["default", "small", "walk"])
def test_partial_search_equals_brute_force(
    crowd: tuple[PlateSearch, list[PlateRead]], batches: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if batches in ("small", "walk"):
        _small_batches(monkeypatch)
    if batches == "walk":  # every pattern with more than two plates walks the reads
        monkeypatch.setattr(plates_module, "MAX_PATTERN_PLATES", 2)
    search, reads = crowd
    patterns = [
        "BG*", "BG01*", "*12*", "*012*", "B6?2*", "*AB", "*8SA", "BG0??AB", "N5*O",
        "*2?A*", "8G", "?G1*", "*OS*", "BG12AB", "*0*1*", "S?2*", "*1?8", "NS128AS",
    ]  # fmt: skip
    for pattern in patterns:
        for f in FILTERS:
            want = _brute_partial(reads, pattern, f)
            got = [h.read.id for h in search.partial(pattern, f)]
            assert got == want, (pattern, f)


def test_rebuilt_vocabulary_gives_the_same_answers(
    db: Database, crowd: tuple[PlateSearch, list[PlateRead]]
) -> None:
    search, reads = crowd
    with db.session() as s:
        before = {
            "texts": sorted(s.execute(select(PlateText.normalised, PlateText.reads)).all()),
            "grams": s.scalar(select(func.count()).select_from(PlateGram)),
            "variants": s.scalar(select(func.count()).select_from(PlateVariant)),
        }
    PlateStore(db, Path(".")).rebuild_vocabulary()
    with db.session() as s:
        assert before == {
            "texts": sorted(s.execute(select(PlateText.normalised, PlateText.reads)).all()),
            "grams": s.scalar(select(func.count()).select_from(PlateGram)),
            "variants": s.scalar(select(func.count()).select_from(PlateVariant)),
        }
    fresh = PlateSearch(db)
    f = PlateFilter(limit=1000)
    assert [h.read.id for h in fresh.fuzzy("BG012AB", 2, f)] == [
        i for i, _ in _brute_fuzzy(reads, "BG012AB", 2, f)
    ]


def test_migration_0004_indexes_an_existing_vocabulary(db_url: str) -> None:
    database = Database(db_url)
    try:
        command.upgrade(alembic_config(database.engine), "0003")
        with database.engine.begin() as conn:
            conn.execute(
                insert(PlateText),
                [
                    {"id": 1, "normalised": "BG123AB", "canon": canon("BG123AB"), "reads": 2,
                     "first_ts": T0, "last_ts": T0},
                    {"id": 2, "normalised": "NS12", "canon": canon("NS12"), "reads": 1,
                     "first_ts": T0, "last_ts": T0},
                ],
            )  # fmt: skip
            conn.exec_driver_sql(
                "INSERT INTO plate_grams (gram, text_id) VALUES ('^8', 1), ('86', 1)"
            )
        database.upgrade()
        with database.session() as s:
            grams = {(g.gram, g.text_id) for g in s.scalars(select(PlateGram))}
            variants = {(v.variant, v.text_id) for v in s.scalars(select(PlateVariant))}
        assert grams == {("^NS", 2), ("NS1", 2), ("S12", 2), ("12$", 2)} | {
            (g, 1) for g in ("^BG", "BG1", "G12", "123", "23A", "3AB", "AB$")
        }
        assert variants == {(v, 1) for v in deletions("86123A8")} | {
            (v, 2) for v in deletions("N512")
        }
        if database.is_postgres:  # the newest reads of a plate come from the index alone
            with database.engine.connect() as conn:
                ddl = conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE indexname = 'ix_plate_reads_normalised_ts'"
                ).scalar()
            assert "INCLUDE (id, camera_id, direction)" in str(ddl)
        command.downgrade(alembic_config(database.engine), "0003")
        with database.engine.connect() as conn:
            old = set(conn.exec_driver_sql("SELECT gram, text_id FROM plate_grams").all())
        assert ("^8", 1) in old and ("N5", 2) in old and ("2$", 2) in old
    finally:
        database.dispose()


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
