"""Vector search (citywatch.search.vectors) on both back ends: the in-process index (SQLite
installs) and pgvector on a real PostgreSQL server. Add/search/remove/drop, persistence,
collection isolation, recall against brute force, bad input, crash recovery."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from citywatch.search.vectors import (
    LocalVectorIndex,
    PgVectorIndex,
    VectorIndex,
    VectorIndexError,
    open_vector_index,
)
from citywatch.store.db import Database
from tests.support.postgres import EmbeddedPostgres

DIM = 128
OpenIndex = Callable[..., VectorIndex]


def clustered(
    n_ids: int, per_id: int, seed: int = 0, to_centre: float = 0.8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors in clusters like face embeddings: (centres, vectors, identity of each)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sigma = np.sqrt(1 / to_centre**2 - 1)
    who = np.arange(n_ids * per_id) % n_ids
    vecs = centres[who] + rng.standard_normal((len(who), DIM)) * sigma / np.sqrt(DIM)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return centres.astype(np.float32), vecs.astype(np.float32), who


def sample_of(centres: np.ndarray, who: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = centres[who] + rng.standard_normal(DIM) * 0.75 / np.sqrt(DIM)
    out: np.ndarray = (v / np.linalg.norm(v)).astype(np.float32)
    return out


def exact_top(vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    sims = vecs @ (q / np.linalg.norm(q))
    return [int(ids[i]) for i in np.argsort(-sims, kind="stable")[:k]]


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def open_index(db: Database, tmp_path: Path) -> Iterator[OpenIndex]:
    opened: list[VectorIndex] = []

    def build(**opts: Any) -> VectorIndex:
        index = open_vector_index(db, tmp_path / "data", DIM, **opts)
        opened.append(index)
        return index

    yield build
    for index in opened:
        index.close()


def test_picks_the_back_end_from_the_database(db: Database, open_index: OpenIndex) -> None:
    index = open_index()
    assert isinstance(index, PgVectorIndex if db.is_postgres else LocalVectorIndex)
    assert index.dim == DIM


def test_add_search_remove_drop(open_index: OpenIndex) -> None:
    index = open_index()
    centres, vecs, _who = clustered(20, 5)
    ids = list(range(1000, 1100))
    index.add("watchlist-1", ids, vecs)
    assert index.count("watchlist-1") == 100
    assert index.collections() == ["watchlist-1"]

    hits = index.search("watchlist-1", vecs[7], k=5)
    assert [h.id for h in hits][0] == 1007
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert [h.id for h in hits] == exact_top(vecs, np.array(ids), vecs[7], 5)
    # scores are cosine similarities, whatever the scale of the query
    assert index.search("watchlist-1", vecs[7] * 3.5, k=1)[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(index.search("watchlist-1", vecs[0], k=500)) == 100  # k above the count

    # upsert: the same id gets a new vector
    index.add("watchlist-1", [1007], vecs[50:51])
    assert index.count("watchlist-1") == 100
    assert index.search("watchlist-1", vecs[50], k=2)[0].score == pytest.approx(1.0, abs=1e-5)
    assert {h.id for h in index.search("watchlist-1", vecs[50], k=2)} == {1007, 1050}
    assert index.search("watchlist-1", vecs[7], k=1)[0].id != 1007

    index.remove("watchlist-1", [1050, 1051, 424242])  # unknown ids are ignored
    assert index.count("watchlist-1") == 98
    assert not {1050, 1051} & {h.id for h in index.search("watchlist-1", vecs[50], k=98)}

    index.drop("watchlist-1")
    assert index.count("watchlist-1") == 0
    assert index.search("watchlist-1", vecs[0]) == []
    assert index.collections() == []
    index.drop("watchlist-1")  # dropping twice is fine
    index.remove("watchlist-1", [1])

    # a dropped name can be used again, and starts empty
    index.add("watchlist-1", [5], vecs[:1])
    assert index.count("watchlist-1") == 1
    assert index.search("never-made", sample_of(centres, 0, 1)) == []
    assert index.count("never-made") == 0


def test_collection_isolation(open_index: OpenIndex) -> None:
    """A search never returns ids from another collection, even with the same ids."""
    index = open_index()
    _c, vecs, _w = clustered(30, 10, seed=3)
    index.add("case-a", range(0, 150), vecs[:150])
    index.add("case-b", range(100, 250), vecs[150:])  # ids 100-149 exist in both
    for i in range(150, 300, 7):
        hits = index.search("case-a", vecs[i], k=150)
        assert {h.id for h in hits} <= set(range(0, 150))
        assert len(hits) == 150
        # the vector lives only in case-b: case-a has no exact match for it
        assert hits[0].score < 0.999
    for i in range(0, 150, 7):
        hits = index.search("case-b", vecs[i], k=20)
        assert {h.id for h in hits} <= set(range(100, 250))
        assert hits[0].score < 0.999
    # id 120 is a different vector in each collection
    a = index.search("case-a", vecs[120], k=1)[0]
    b = index.search("case-b", vecs[120], k=1)[0]
    assert a.id == 120
    assert a.score == pytest.approx(1.0, abs=1e-5)
    assert b.score < 0.999
    index.drop("case-a")
    assert index.count("case-b") == 150
    assert index.search("case-b", vecs[170], k=1)[0].id == 120


def test_persistence_across_reopen(open_index: OpenIndex) -> None:
    _c, vecs, _w = clustered(40, 10, seed=5)
    first = open_index()
    first.add("retro-7", range(400), vecs)
    first.remove("retro-7", range(0, 400, 4))
    first.add("retro-7", [1], vecs[399:400])  # upsert after the removals
    first.add("other", [9], vecs[:1])
    expected = {i: first.search("retro-7", vecs[i], k=10) for i in range(0, 400, 37)}
    first.close()

    second = open_index()
    assert second.count("retro-7") == 300
    assert second.collections() == ["other", "retro-7"]
    for i, hits in expected.items():
        again = second.search("retro-7", vecs[i], k=10)
        assert [h.id for h in again] == [h.id for h in hits]
        assert [h.score for h in again] == pytest.approx([h.score for h in hits], abs=1e-5)
    assert second.search("retro-7", vecs[399], k=2)[0].score == pytest.approx(1.0, abs=1e-5)


def test_recall_against_brute_force(open_index: OpenIndex, db: Database) -> None:
    """HNSW (forced at this small size) finds >= 95% of the exact top 10 on clustered data."""
    centres, vecs, _who = clustered(300, 10, seed=11)  # 3,000 face-like vectors
    ids = np.arange(10_000, 13_000)
    index = open_index(**({} if db.is_postgres else {"exact_threshold": 0}))
    index.add("big", ids, vecs)
    if isinstance(index, LocalVectorIndex):
        assert index.mode("big") == "hnsw"
    queries = [sample_of(centres, i % 300, seed=100 + i) for i in range(100)]
    found = hit = 0
    for q in queries:
        truth = set(exact_top(vecs, ids, q, 10))
        got = [h.id for h in index.search("big", q, k=10)]
        assert len(got) == 10
        found += len(truth & set(got))
        hit += 10
    assert found / hit >= 0.95, f"recall@10 {found / hit:.3f}"
    if isinstance(index, PgVectorIndex):  # it really was the HNSW index that answered
        with db.engine.connect() as conn:
            plan = " ".join(
                r[0]
                for r in conn.execute(
                    text(
                        f"EXPLAIN SELECT id FROM {index.partition('big')} "
                        f"ORDER BY embedding <=> '{np.round(queries[0], 4).tolist()}' LIMIT 10"
                    )
                )
            )
        assert "_hnsw" in plan


def test_exact_mode_is_exact_and_switches_to_hnsw(tmp_path: Path) -> None:
    centres, vecs, _w = clustered(50, 8, seed=2)
    with LocalVectorIndex(tmp_path / "v", DIM) as index:  # default threshold: exact
        index.add("w", range(400), vecs)
        assert index.mode("w") == "exact"
        for i in range(30):
            q = sample_of(centres, i, seed=i)
            assert [h.id for h in index.search("w", q, 10)] == exact_top(
                vecs, np.arange(400), q, 10
            )
    from citywatch.search.vectors import VectorOptions

    with LocalVectorIndex(tmp_path / "v", DIM, VectorOptions(exact_threshold=300)) as index:
        assert index.mode("w") == "exact"  # loaded as written
        index.add("w", [1000], vecs[:1])
        assert index.mode("w") == "hnsw"
        assert sorted(p.suffix for p in (tmp_path / "v").glob("w.*")) == [".usearch"]
        index.remove("w", range(0, 300))
        assert index.mode("w") == "exact"  # below half the threshold
        assert index.count("w") == 101
    with LocalVectorIndex(tmp_path / "v", DIM, VectorOptions(exact_threshold=300)) as index:
        assert index.count("w") == 101
        assert index.search("w", vecs[0], 1)[0].id == 1000


def test_hnsw_persistence_across_reopen(tmp_path: Path) -> None:
    """The usearch graph is saved and loaded, with the journal of later changes replayed."""
    from citywatch.search.vectors import VectorOptions

    opts = VectorOptions(exact_threshold=0)
    _c, vecs, _w = clustered(60, 10, seed=8)
    with LocalVectorIndex(tmp_path / "v", DIM, opts) as index:
        index.add("g", range(600), vecs)  # one big batch: snapshot at once
        index.remove("g", range(0, 600, 3))  # journalled
        index.add("g", [5000], vecs[:1])
        expected = {i: index.search("g", vecs[i], 10) for i in range(1, 600, 31)}
        assert index.mode("g") == "hnsw"
        assert sorted(p.suffix for p in (tmp_path / "v").glob("g.*")) == [".log", ".usearch"]
    with LocalVectorIndex(tmp_path / "v", DIM, opts) as index:
        assert index.count("g") == 401
        assert index.mode("g") == "hnsw"
        for i, hits in expected.items():
            assert [h.id for h in index.search("g", vecs[i], 10)] == [h.id for h in hits]


def test_bad_input_gets_clear_errors(open_index: OpenIndex, db: Database) -> None:
    index = open_index()
    _c, vecs, _w = clustered(5, 2)
    index.add("ok", [1, 2], vecs[:2])
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: index.add("ok", [3], np.ones((1, 64))), "128 dimensions"),
        (lambda: index.add("ok", [3, 4], vecs[:1]), "expected 2 vectors"),
        (lambda: index.add("ok", [3], np.full((1, DIM), np.nan)), "NaN"),
        (lambda: index.add("ok", [3], np.full((1, DIM), np.inf)), "NaN or infinity"),
        (lambda: index.add("ok", [3], np.zeros((1, DIM))), "zero vector"),
        (lambda: index.add("ok", [3, 3], vecs[:2]), "repeat"),
        (lambda: index.add("ok", [-1], vecs[:1]), "ids must be from 0"),
        (lambda: index.add("ok", [2**63], vecs[:1]), "ids must be from 0"),
        (lambda: index.add("ok", [1.5], vecs[:1]), "integers"),  # type: ignore[list-item]
        (lambda: index.add("ok", ["a"], vecs[:1]), "integers"),  # type: ignore[list-item]
        (lambda: index.add("bad name!", [3], vecs[:1]), "collection name"),
        (lambda: index.add("../etc", [3], vecs[:1]), "collection name"),
        (lambda: index.add("", [3], vecs[:1]), "collection name"),
        (lambda: index.search("ok", np.ones(DIM + 1)), "128 dimensions"),
        (lambda: index.search("ok", np.full(DIM, np.nan)), "NaN"),
        (lambda: index.search("ok", vecs[:2]), "one vector"),
        (lambda: index.search("ok", vecs[0], k=0), "positive integer"),
        (lambda: index.search("x y", vecs[0]), "collection name"),
        (lambda: open_index(ef_serch=10), "unknown vector index option"),
        (lambda: open_index(ef_search=0), "ef_search must be at least 1"),
    ]
    for call, message in cases:
        with pytest.raises(VectorIndexError, match=message):
            call()
    assert index.count("ok") == 2  # nothing half-done
    if not db.is_postgres:
        with pytest.raises(VectorIndexError, match="needs a PostgreSQL"):
            open_index(backend="pgvector")


def test_concurrent_adds_and_searches(open_index: OpenIndex, db: Database) -> None:
    # in process: the collection switches from exact to HNSW while the threads run
    index = open_index(**({} if db.is_postgres else {"exact_threshold": 200}))
    _c, vecs, _w = clustered(100, 8, seed=9)
    errors: list[BaseException] = []

    def writer(part: int) -> None:
        try:
            for start in range(part * 200, part * 200 + 200, 20):
                index.add("live", range(start, start + 20), vecs[start : start + 20])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    def reader() -> None:
        try:
            for i in range(60):
                for h in index.search("live", vecs[i * 13 % 800], k=5):
                    assert 0 <= h.id < 800
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert index.count("live") == 800
    for i in range(0, 800, 41):
        assert index.search("live", vecs[i], k=1)[0].id == i


# in-process back end: files on disk ---------------------------------------------------------
@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    return tmp_path / "vectors"


CHILD = """
import os, sys
from pathlib import Path
import numpy as np
from citywatch.search.vectors import LocalVectorIndex
v = np.random.default_rng(4).standard_normal((300, 128)).astype(np.float32)
index = LocalVectorIndex(Path(sys.argv[1]), 128)
if sys.argv[2] == "first":
    for s in range(0, 300, 50):
        index.add("job", range(s, s + 50), v[s : s + 50])
    index.remove("job", [0, 1, 2])
else:
    index.add("job", [600], v[2:3])
    index.add("job", [601], v[3:4])
os._exit(0)  # a crash: no close(), so no snapshot; only the journal has these changes
"""


def crash_after(root: Path, step: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", CHILD, str(root), step], check=True, env=env)


def test_survives_a_crash_and_a_torn_journal(local_root: Path) -> None:
    v = np.random.default_rng(4).standard_normal((300, 128)).astype(np.float32)
    crash_after(local_root, "first")
    assert [p.suffix for p in local_root.glob("job.*")] == [".log"]
    with LocalVectorIndex(local_root, DIM) as index:
        assert index.count("job") == 297  # everything the journal acknowledged
        assert index.search("job", v[100], 1)[0].id == 100
    # close() wrote a snapshot and removed the journal
    assert [p.suffix for p in local_root.glob("job.*")] == [".flat"]

    crash_after(local_root, "second")
    (log,) = local_root.glob("job.*.log")
    log.write_bytes(log.read_bytes()[:-100])  # the crash tore the last record
    (local_root / "job.9999999999.flat.tmp").write_bytes(b"half a snapshot")
    with LocalVectorIndex(local_root, DIM) as index:
        assert index.count("job") == 298  # 600 survived, the torn 601 did not
        assert index.search("job", v[2], 1)[0].id == 600
        assert index.search("job", v[3], 1)[0].id != 601
        index.add("job", [602], v[4:5])  # appends after the cut, not after the garbage
    with LocalVectorIndex(local_root, DIM) as index:
        assert index.count("job") == 299
        assert index.search("job", v[4], 1)[0].id == 602
    assert not list(local_root.glob("*.tmp"))


def test_drop_deletes_the_files(local_root: Path) -> None:
    _c, vecs, _w = clustered(10, 10)
    with LocalVectorIndex(local_root, DIM) as index:
        index.add("purge-me", range(100), vecs)
        index.add("keep", range(5), vecs[:5])
    with LocalVectorIndex(local_root, DIM) as index:
        assert list(local_root.glob("purge-me.*"))
        index.drop("purge-me")
        assert not list(local_root.glob("purge-me.*"))
        assert index.count("keep") == 5
    assert not list(local_root.glob("purge-me.*"))
    assert list(local_root.glob("keep.*"))


def test_one_owner_per_directory(local_root: Path) -> None:
    with (
        LocalVectorIndex(local_root, DIM),
        pytest.raises(VectorIndexError, match="already open"),
    ):
        LocalVectorIndex(local_root, DIM)
    LocalVectorIndex(local_root, DIM).close()  # free again after close


def test_dim_mismatch_on_reopen(local_root: Path) -> None:
    with LocalVectorIndex(local_root, DIM) as index:
        index.add("a", [1], np.ones((1, DIM)))
    with (
        LocalVectorIndex(local_root, 64) as index,
        pytest.raises(VectorIndexError, match="128-D"),
    ):
        index.count("a")


# pgvector back end: server side -------------------------------------------------------------
@pytest.mark.postgres
def test_pgvector_drop_deletes_the_partition_files(postgres: EmbeddedPostgres) -> None:
    postgres.reset_database()
    assert postgres.url is not None
    database = Database(postgres.url)
    try:
        index = PgVectorIndex(database, DIM)
        _c, vecs, _w = clustered(10, 10)
        index.add("purge-me", range(100), vecs)
        index.add("keep", range(3), vecs[:3])
        part = index.partition("purge-me")
        with database.engine.connect() as conn:
            files = [
                conn.execute(text(f"SELECT pg_relation_filepath('{rel}')")).scalar_one()
                for rel in (part, f"{part}_hnsw")
            ]
            ext = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar_one()
            rows = conn.execute(
                text("SELECT collection, count(*) FROM cw_vectors_128 GROUP BY 1 ORDER BY 1")
            ).all()
        assert ext.startswith("0.8")
        assert [tuple(r) for r in rows] == [("keep", 3), ("purge-me", 100)]
        if not postgres.external:
            assert postgres.data_dir is not None
            assert all((postgres.data_dir / f).exists() for f in files)
        index.drop("purge-me")
        with database.engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))  # unlinks happen at once; be sure anyway
            assert conn.execute(text(f"SELECT to_regclass('{part}')")).scalar_one() is None
        if not postgres.external:
            assert postgres.data_dir is not None
            assert not any((postgres.data_dir / f).exists() for f in files)
        assert index.count("keep") == 3
        assert index.collections() == ["keep"]
    finally:
        database.dispose()
