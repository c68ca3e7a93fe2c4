"""Vector search for face embeddings: one interface, two back ends.

A *collection* is a closed set of vectors (one watchlist, one retrospective search job);
every call names one, and a search only ever sees the vectors of the collection it names.
Scores are cosine similarities (higher is closer); vectors are L2-normalised on the way in.

:func:`open_vector_index` picks the back end from the database:

``LocalVectorIndex`` (SQLite installs, the embedded default)
    In process. Each collection lives in memory and under ``<data_dir>/vectors/``:
    a snapshot (``<name>.<gen>.flat`` -- ids and vectors -- or ``<name>.<gen>.usearch``, a
    usearch HNSW graph) plus an append-only journal ``<name>.<gen>.log`` of the changes made
    since. Journal records carry a CRC and are fsync'ed; a torn record at the end (a crash
    mid-append) is cut off on load. Snapshots are written to ``*.tmp``, fsync'ed and renamed,
    then the older generation is deleted, so a crash at any point leaves either the old
    snapshot plus its journal or the new one. Below ``exact_threshold`` vectors a collection
    is searched by exact brute force (numpy, on one thread); from there on by HNSW
    (usearch, cosine on normalised vectors = inner product), and back to exact below half
    the threshold. One process owns a data directory at a time (``vectors/.lock``, flock;
    a second opener gets a clear error). Thread-safe: per collection a readers-writer lock
    (searches share it, changes are exclusive); drop waits for running searches.

``PgVectorIndex`` (PostgreSQL with pgvector >= 0.8)
    Table ``cw_vectors_<dim>`` (collection, id, embedding vector(dim)), LIST-partitioned by
    collection: each collection is its own partition with its own HNSW index (cosine ops).
    A search reads only that partition's index, so scoping by collection costs no recall
    (a shared HNSW index filtered by collection would return fewer than k rows, or need
    pgvector 0.8's iterative scans). New collections are bulk-loaded with binary COPY and
    indexed after the load; later adds are upserts. Searches set ``hnsw.ef_search`` and
    ``hnsw.iterative_scan = strict_order`` (so k > ef_search still gives k rows). ``drop``
    is ``DROP TABLE`` of the partition, which deletes its files (the rows remain in WAL
    until it is recycled). The tables live outside the Alembic migrations: they are
    created on first use, with ``CREATE EXTENSION IF NOT EXISTS vector``; a server without
    pgvector gets a clear error.

``drop`` is the purge path: it deletes the collection's data on disk, not just its name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from usearch.index import Index as UsearchIndex

from citywatch.store.db import Database

DEFAULT_DIM = 128
MAX_ID = 2**63 - 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:\-]{0,119}\Z")
_FILE = re.compile(r"(?P<name>[^.]+)\.(?P<gen>\d{10})\.(?P<kind>flat|usearch|log)(?P<tmp>\.tmp)?\Z")

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Ids = Sequence[int] | np.ndarray  # a list of ints or an integer array


class VectorIndexError(ValueError):
    """Bad input to the vector index, or an index that cannot be used (the message says why)."""


@dataclass(frozen=True)
class VectorHit:
    id: int
    score: float  # cosine similarity, higher = closer


class VectorIndex(Protocol):
    dim: int

    def add(self, collection: str, ids: Ids, vectors: np.ndarray) -> None:
        """Insert or replace (upsert) the vectors of ``ids`` in ``collection``."""

    def remove(self, collection: str, ids: Ids) -> None:
        """Remove ``ids`` from ``collection``; ids that are not there are ignored."""

    def drop(self, collection: str) -> None:
        """Delete a whole collection, its data on disk included; unknown names are ignored."""

    def search(self, collection: str, query: np.ndarray, k: int = 10) -> list[VectorHit]:
        """The ``k`` nearest vectors of ``collection``, best first; [] if it does not exist."""

    def count(self, collection: str) -> int:
        """Number of vectors in ``collection`` (0 if it does not exist)."""

    def collections(self) -> list[str]:
        """Names of the existing collections, sorted."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class VectorOptions:
    """Tuning knobs (``open_vector_index(..., **opts)``)."""

    backend: Literal["auto", "local", "pgvector"] = "auto"
    # local: exact brute force below this many vectors (about 5 ms of one core at 50,000)
    exact_threshold: int = 50_000
    hnsw_m: int = 16  # HNSW links per node (usearch connectivity, pgvector m)
    ef_construction: int = 64  # pgvector's default; usearch's is 128
    # candidate list at query time (at least k is used); 128: recall@10 0.999 on 1M
    # face-like vectors; 0.94-0.96 of a person's images found when each person has only two
    # (bench.vector_search, BENCHMARKS.md section 9)
    ef_search: int = 128
    threads: int = 0  # local: threads for bulk HNSW builds (0 = all cores)
    durable: bool = True  # local: fsync journal appends, snapshots and renames
    pg_build_memory: str = "1GB"  # maintenance_work_mem for a pgvector HNSW build

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "local", "pgvector"):
            raise VectorIndexError(f"backend must be auto, local or pgvector, not {self.backend!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search"):
            if int(getattr(self, name)) < 1:
                raise VectorIndexError(f"{name} must be at least 1")
        if self.exact_threshold < 0 or self.threads < 0:
            raise VectorIndexError("exact_threshold and threads must not be negative")
        if not re.fullmatch(r"\d+\s*(kB|MB|GB)", self.pg_build_memory):
            raise VectorIndexError("pg_build_memory must look like '512MB' or '2GB'")


def open_vector_index(
    db: Database, data_dir: Path, dim: int = DEFAULT_DIM, **opts: Any
) -> VectorIndex:
    """pgvector when ``db`` is PostgreSQL, the in-process index under ``data_dir`` otherwise."""
    known = {f.name for f in fields(VectorOptions)}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise VectorIndexError(f"unknown vector index option(s): {', '.join(unknown)}")
    options = VectorOptions(**opts)
    backend = options.backend
    if backend == "auto":
        backend = "pgvector" if db.is_postgres else "local"
    if backend == "pgvector":
        if not db.is_postgres:
            raise VectorIndexError("the pgvector back end needs a PostgreSQL database")
        return PgVectorIndex(db, dim, options)
    return LocalVectorIndex(Path(data_dir) / "vectors", dim, options)


# input checks ------------------------------------------------------------------------------
def _check_dim(dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not 1 <= dim <= 16000:
        raise VectorIndexError(f"dim must be an integer from 1 to 16000, not {dim!r}")
    return int(dim)


def check_collection(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise VectorIndexError(
            f"collection name {name!r} is invalid: 1-120 characters of letters, digits, "
            "'_', ':' and '-', starting with a letter or digit"
        )
    return name


def check_ids(ids: Ids) -> I64:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise VectorIndexError(f"ids must be a flat sequence of integers, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.object_
    ):
        raise VectorIndexError(f"ids must be integers, got {arr.dtype}")
    if arr.dtype == np.object_ or arr.dtype == np.uint64:
        try:
            values = [int(v) for v in arr.tolist()]
        except (TypeError, ValueError) as err:
            raise VectorIndexError("ids must be integers") from err
        if any(isinstance(v, bool) for v in arr.tolist()):
            raise VectorIndexError("ids must be integers, not booleans")
        if min(values) < 0 or max(values) > MAX_ID:
            raise VectorIndexError(f"ids must be from 0 to {MAX_ID}")
        out = np.array(values, dtype=np.int64)
    else:
        out = arr.astype(np.int64)
        if int(out.min()) < 0:
            raise VectorIndexError(f"ids must be from 0 to {MAX_ID}, got {int(out.min())}")
    if np.unique(out).size != out.size:
        raise VectorIndexError("ids repeat within one call: each id may appear once")
    return out


def _normalise(arr: np.ndarray, dim: int, what: str) -> F32:
    """(n, dim) float32, unit rows; clear errors for wrong shape, NaN/inf and zero vectors."""
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise VectorIndexError(f"{what} must have {dim} dimensions, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise VectorIndexError(f"{what} must be numbers, got {arr.dtype}")
    x = arr.astype(np.float32, copy=True)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise VectorIndexError(f"{what} contain NaN or infinity (rows {rows})")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # no (n, dim) temporary
    if (norms < 1e-12).any():
        rows = np.flatnonzero(norms < 1e-12)[:5].tolist()
        raise VectorIndexError(f"{what} contain zero vectors (rows {rows}): cosine is undefined")
    x /= norms[:, None]
    return x


def check_vectors(vectors: np.ndarray, n: int, dim: int) -> F32:
    arr = np.asarray(vectors)
    if arr.ndim == 1 and n == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise VectorIndexError(f"expected {n} vectors of {dim} dimensions, got shape {arr.shape}")
    return _normalise(arr, dim, "vectors")


def check_query(query: np.ndarray, dim: int) -> F32:
    arr = np.asarray(query)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise VectorIndexError(f"query must be one vector of {dim} dimensions, got {arr.shape}")
    one: F32 = _normalise(arr[None, :], dim, "query")[0]
    return one


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise VectorIndexError(f"k must be a positive integer, not {k!r}")
    return int(k)


def _hits(ids: np.ndarray, scores: np.ndarray) -> list[VectorHit]:
    return [
        VectorHit(int(i), float(min(1.0, max(-1.0, s))))
        for i, s in zip(ids.tolist(), scores.tolist(), strict=True)
    ]


# in-process back end -----------------------------------------------------------------------
class _RWLock:
    """Many readers or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _ExactStore:
    """Rows in one growing float32 matrix; search = one matrix-vector product."""

    kind = "flat"

    def __init__(self, dim: int, ids: I64 | None = None, vecs: F32 | None = None) -> None:
        self.dim = dim
        self._ids = np.zeros(0, dtype=np.int64)
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self._n = 0
        self._pos: dict[int, int] = {}
        if ids is not None and vecs is not None:
            self.upsert(ids, vecs)

    def __len__(self) -> int:
        return self._n

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need <= len(self._ids):
            return
        cap = max(need, 2 * len(self._ids), 64)
        ids = np.zeros(cap, dtype=np.int64)
        vecs = np.zeros((cap, self.dim), dtype=np.float32)
        ids[: self._n] = self._ids[: self._n]
        vecs[: self._n] = self._vecs[: self._n]
        self._ids, self._vecs = ids, vecs

    def upsert(self, ids: I64, vecs: F32) -> None:
        self._reserve(len(ids))
        rows = np.empty(len(ids), dtype=np.int64)
        for j, i in enumerate(ids.tolist()):
            row = self._pos.get(i)
            if row is None:
                row = self._pos[i] = self._n
                self._n += 1
            rows[j] = row
        self._ids[rows] = ids
        self._vecs[rows] = vecs

    def remove(self, ids: I64) -> None:
        for i in ids.tolist():
            row = self._pos.pop(i, None)
            if row is None:
                continue
            last = self._n - 1
            if row != last:  # move the last row into the hole
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._vecs[row] = self._vecs[last]
                self._pos[moved] = row
            self._n = last

    def search(self, query: F32, k: int) -> list[VectorHit]:
        if not self._n:
            return []
        # einsum's own loop, one thread: BLAS (``@``) splits a matrix-vector product over
        # threads, which on a busy machine waits for a second core (p95 40 ms instead of
        # 0.3 ms for 5,000 vectors, measured with the analysis workers' load)
        scores = np.einsum("ij,j->i", self._vecs[: self._n], query)
        k = min(k, self._n)
        top = np.argpartition(-scores, k - 1)[:k] if k < self._n else np.arange(self._n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return _hits(self._ids[top], scores[top])

    def items(self) -> tuple[I64, F32]:
        return self._ids[: self._n].copy(), self._vecs[: self._n].copy()

    def save(self, path: Path) -> None:
        ids, vecs = self._ids[: self._n], self._vecs[: self._n]
        with open(path, "wb") as f:
            f.write(_FLAT_HEAD.pack(_FLAT_MAGIC, self.dim, self._n))
            f.write(ids.astype("<i8").tobytes())
            f.write(vecs.astype("<f4").tobytes())

    @classmethod
    def load(cls, path: Path, dim: int) -> _ExactStore:
        raw = path.read_bytes()
        magic, file_dim, n = _FLAT_HEAD.unpack_from(raw)
        size = _FLAT_HEAD.size + n * 8 + n * file_dim * 4
        if magic != _FLAT_MAGIC or len(raw) != size:
            raise VectorIndexError(f"{path} is not a complete vector snapshot")
        if file_dim != dim:
            raise VectorIndexError(f"{path} holds {file_dim}-D vectors, the index is {dim}-D")
        ids = np.frombuffer(raw, "<i8", n, _FLAT_HEAD.size).astype(np.int64)
        vecs = np.frombuffer(raw, "<f4", n * dim, _FLAT_HEAD.size + n * 8).astype(np.float32)
        return cls(dim, ids, vecs.reshape(n, dim))


class _HnswStore:
    """usearch HNSW graph over unit vectors (inner product = cosine)."""

    kind = "usearch"

    def __init__(self, dim: int, options: VectorOptions, index: UsearchIndex | None = None):
        self.dim = dim
        self._threads = options.threads
        self._index = index or UsearchIndex(
            ndim=dim,
            metric="ip",
            dtype="f32",
            connectivity=options.hnsw_m,
            expansion_add=options.ef_construction,
            expansion_search=options.ef_search,
        )
        self._index.expansion_search = options.ef_search  # type: ignore[misc]  # has a setter

    def __len__(self) -> int:
        return len(self._index)

    def upsert(self, ids: I64, vecs: F32) -> None:
        keys = ids.astype(np.uint64)
        present = np.asarray(self._index.contains(keys), dtype=bool).reshape(-1)
        if present.any():
            self._index.remove(keys[present])
        # small batches on one thread: starting a thread pool costs more than it saves
        self._index.add(keys, vecs, threads=self._threads if len(keys) >= 1000 else 1)

    def remove(self, ids: I64) -> None:
        if len(ids):
            self._index.remove(ids.astype(np.uint64))

    def search(self, query: F32, k: int) -> list[VectorHit]:
        if not len(self._index):
            return []
        found = self._index.search(query, k, threads=1)
        count = len(found)
        keys = np.asarray(found.keys[:count], dtype=np.int64)
        return _hits(keys, 1.0 - np.asarray(found.distances[:count], dtype=np.float64))

    def items(self) -> tuple[I64, F32]:
        keys = np.asarray(self._index.keys, dtype=np.uint64)
        if not len(keys):
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        got = self._index.get(keys)
        rows = [np.asarray(v, dtype=np.float32) for v in (got if isinstance(got, tuple) else [got])]
        vecs = np.vstack(rows).reshape(len(keys), self.dim)
        return keys.astype(np.int64), vecs

    def save(self, path: Path) -> None:
        self._index.save(str(path))

    @classmethod
    def load(cls, path: Path, dim: int, options: VectorOptions) -> _HnswStore:
        index = UsearchIndex.restore(str(path))
        if index is None:
            raise VectorIndexError(f"{path} is not a usearch index")
        if index.ndim != dim:
            raise VectorIndexError(f"{path} holds {index.ndim}-D vectors, the index is {dim}-D")
        return cls(dim, options, index)

    @classmethod
    def build(cls, dim: int, options: VectorOptions, ids: I64, vecs: F32) -> _HnswStore:
        store = cls(dim, options)
        if len(ids):
            store._index.add(ids.astype(np.uint64), vecs, threads=options.threads)
        return store


_Store = _ExactStore | _HnswStore

_FLAT_MAGIC = b"CWVFLAT1"
_FLAT_HEAD = struct.Struct("<8sIQ")
_LOG_MAGIC = b"CWVLOG01"
_LOG_HEAD = struct.Struct("<8sI")  # magic, dim
_REC_HEAD = struct.Struct("<BI")  # op, count
_OP_ADD, _OP_REMOVE = 1, 2
_UNDEFINED_TABLE = "42P01"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Collection:
    """One collection: its store, its journal and its lock."""

    def __init__(self, root: Path, name: str, dim: int, options: VectorOptions) -> None:
        self.root = root
        self.name = name
        self.dim = dim
        self.options = options
        self.lock = _RWLock()
        self.dropped = False
        self.gen = 0
        self.store: _Store = _ExactStore(dim)
        self._log: IO[bytes] | None = None
        self._log_bytes = 0

    # files
    def _path(self, gen: int, kind: str) -> Path:
        return self.root / f"{self.name}.{gen:010d}.{kind}"

    def files(self) -> list[Path]:
        out = []
        for path in self.root.iterdir():
            m = _FILE.match(path.name)
            if m and m["name"] == self.name:
                out.append(path)
        return out

    def exists_on_disk(self) -> bool:
        return bool(self.files())

    def load(self) -> None:
        snapshots: dict[int, Path] = {}
        logs: dict[int, Path] = {}
        for path in self.files():
            m = _FILE.match(path.name)
            assert m is not None
            if m["tmp"]:  # an unfinished snapshot from a crash
                path.unlink(missing_ok=True)
            elif m["kind"] == "log":
                logs[int(m["gen"])] = path
            else:
                if int(m["gen"]) in snapshots:
                    raise VectorIndexError(f"two snapshots of generation {m['gen']}: {path}")
                snapshots[int(m["gen"])] = path
        gen = max([*snapshots, *logs], default=0)
        if gen and gen not in snapshots:
            raise VectorIndexError(
                f"vector collection {self.name!r}: journal of generation {gen} has no snapshot"
            )
        self.gen = gen
        if gen in snapshots:
            path = snapshots[gen]
            if path.name.endswith(".usearch"):
                self.store = _HnswStore.load(path, self.dim, self.options)
            else:
                self.store = _ExactStore.load(path, self.dim)
        if gen in logs:
            self._replay(logs[gen])
        for old in [*snapshots.items(), *logs.items()]:
            if old[0] < gen:
                old[1].unlink(missing_ok=True)

    def _replay(self, path: Path) -> None:
        raw = path.read_bytes()
        good = 0
        if len(raw) >= _LOG_HEAD.size:
            magic, dim = _LOG_HEAD.unpack_from(raw)
            if magic != _LOG_MAGIC:
                raise VectorIndexError(f"{path} is not a vector journal")
            if dim != self.dim:
                raise VectorIndexError(f"{path} holds {dim}-D vectors, the index is {self.dim}-D")
            good = pos = _LOG_HEAD.size
            while pos + _REC_HEAD.size <= len(raw):
                op, count = _REC_HEAD.unpack_from(raw, pos)
                body = count * 8 + (count * self.dim * 4 if op == _OP_ADD else 0)
                end = pos + _REC_HEAD.size + body + 4
                if op not in (_OP_ADD, _OP_REMOVE) or end > len(raw):
                    break
                (crc,) = struct.unpack_from("<I", raw, end - 4)
                if zlib.crc32(raw[pos : end - 4]) != crc:
                    break
                start = pos + _REC_HEAD.size
                ids = np.frombuffer(raw, "<i8", count, start).astype(np.int64)
                if op == _OP_ADD:
                    vecs = np.frombuffer(raw, "<f4", count * self.dim, start + count * 8)
                    self.store.upsert(ids, vecs.reshape(count, self.dim).astype(np.float32))
                else:
                    self.store.remove(ids)
                pos = good = end
        if good < len(raw):  # a record torn by a crash: drop it
            with open(path, "r+b") as f:
                f.truncate(good)
        self._log_bytes = max(0, good - _LOG_HEAD.size)

    def _append(self, op: int, ids: I64, vecs: F32 | None) -> None:
        if self._log is None:
            path = self._path(self.gen, "log")
            fresh = not path.exists() or path.stat().st_size == 0
            self._log = open(path, "ab")  # noqa: SIM115 (kept open for appends)
            if fresh:
                self._log.write(_LOG_HEAD.pack(_LOG_MAGIC, self.dim))
                if self.options.durable:
                    self._log.flush()
                    os.fsync(self._log.fileno())
                    _fsync_dir(self.root)
        body = _REC_HEAD.pack(op, len(ids)) + ids.astype("<i8").tobytes()
        if vecs is not None:
            body += vecs.astype("<f4").tobytes()
        self._log.write(body + struct.pack("<I", zlib.crc32(body)))
        self._log.flush()
        if self.options.durable:
            os.fsync(self._log.fileno())
        self._log_bytes += len(body) + 4

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def snapshot(self) -> None:
        """Write the whole store as generation gen+1, then delete generation gen."""
        gen = self.gen + 1
        final = self._path(gen, self.store.kind)
        tmp = final.with_name(final.name + ".tmp")
        self.store.save(tmp)
        if self.options.durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, final)
        if self.options.durable:
            _fsync_dir(self.root)
        self._close_log()
        for path in self.files():
            m = _FILE.match(path.name)
            if m and int(m["gen"]) < gen:
                path.unlink(missing_ok=True)
        self.gen = gen
        self._log_bytes = 0

    def _data_bytes(self) -> int:
        return len(self.store) * (self.dim * 4 + 8)

    def _journal_limit(self) -> int:
        return max(16 << 20, self._data_bytes() // 10)

    def _fit_store(self, incoming: int = 0) -> bool:
        """Switch exact <-> HNSW when the size (plus ``incoming`` new rows) calls for it.

        Before a batch that crosses the threshold the switch comes first, so the batch goes
        straight into the graph (no second copy of a large batch). True if it switched.
        """
        n = len(self.store) + incoming
        limit = self.options.exact_threshold
        if isinstance(self.store, _ExactStore) and n >= limit and n > 0:
            ids, vecs = self.store.items()
            self.store = _HnswStore.build(self.dim, self.options, ids, vecs)
            return True
        if isinstance(self.store, _HnswStore) and n < limit // 2:
            self.store = _ExactStore(self.dim, *self.store.items())
            return True
        return False

    def add(self, ids: I64, vecs: F32) -> None:
        big = len(ids) * (self.dim * 4 + 8) > self._journal_limit()
        if not big:
            self._append(_OP_ADD, ids, vecs)
        switched = self._fit_store(incoming=len(ids))
        self.store.upsert(ids, vecs)
        if switched or big or self._log_bytes > self._journal_limit():
            self.snapshot()

    def remove(self, ids: I64) -> None:
        self._append(_OP_REMOVE, ids, None)
        self.store.remove(ids)
        if self._fit_store() or self._log_bytes > self._journal_limit():
            self.snapshot()

    def close(self) -> None:
        if self._log_bytes and not self.dropped:
            self.snapshot()
        self._close_log()

    def delete_files(self) -> None:
        self._close_log()
        for path in self.files():
            path.unlink(missing_ok=True)
        _fsync_dir(self.root)
        self.dropped = True
        self.store = _ExactStore(self.dim)


class LocalVectorIndex:
    """The in-process back end (see the module docstring)."""

    def __init__(self, root: Path, dim: int = DEFAULT_DIM, options: VectorOptions | None = None):
        self.dim = _check_dim(dim)
        self.root = Path(root)
        self.options = options or VectorOptions()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[str, _Collection] = {}
        self._closed = False
        self._lockfile: IO[bytes] | None = open(self.root / ".lock", "a+b")  # noqa: SIM115
        try:
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self._lockfile.close()
            self._lockfile = None
            raise VectorIndexError(
                f"the vector index in {self.root} is already open (another process or another "
                "LocalVectorIndex in this one); one owner at a time"
            ) from err

    def _get(self, name: str, create: bool) -> _Collection | None:
        check_collection(name)
        with self._lock:
            if self._closed:
                raise VectorIndexError("the vector index is closed")
            col = self._open.get(name)
            if col is None:
                col = _Collection(self.root, name, self.dim, self.options)
                if not col.exists_on_disk():
                    if not create:
                        return None
                else:
                    col.load()
                self._open[name] = col
            return col

    def add(self, collection: str, ids: Ids, vectors: np.ndarray) -> None:
        id_arr = check_ids(ids)
        vecs = check_vectors(vectors, len(id_arr), self.dim)
        if not len(id_arr):
            return
        while True:
            col = self._get(collection, create=True)
            assert col is not None
            with col.lock.write():
                if col.dropped:
                    continue  # dropped meanwhile: start a new one
                col.add(id_arr, vecs)
                return

    def remove(self, collection: str, ids: Ids) -> None:
        id_arr = check_ids(ids)
        col = self._get(collection, create=False)
        if col is None or not len(id_arr):
            return
        with col.lock.write():
            if not col.dropped:
                col.remove(id_arr)

    def drop(self, collection: str) -> None:
        col = self._get(collection, create=False)
        if col is None:
            return
        with col.lock.write():
            with self._lock:
                if self._open.get(collection) is col:
                    del self._open[collection]
            col.delete_files()

    def search(self, collection: str, query: np.ndarray, k: int = 10) -> list[VectorHit]:
        q = check_query(query, self.dim)
        k = _check_k(k)
        col = self._get(collection, create=False)
        if col is None:
            return []
        with col.lock.read():
            return [] if col.dropped else col.store.search(q, k)

    def count(self, collection: str) -> int:
        col = self._get(collection, create=False)
        if col is None:
            return 0
        with col.lock.read():
            return 0 if col.dropped else len(col.store)

    def collections(self) -> list[str]:
        names = set()
        for path in self.root.iterdir():
            m = _FILE.match(path.name)
            if m and not m["tmp"]:
                names.add(m["name"])
        return sorted(names)

    def mode(self, collection: str) -> str:
        """'exact', 'hnsw' or 'absent' (for tests and benchmarks)."""
        col = self._get(collection, create=False)
        if col is None:
            return "absent"
        with col.lock.read():
            return "hnsw" if isinstance(col.store, _HnswStore) else "exact"

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            cols = list(self._open.values())
            self._open.clear()
        for col in cols:
            with col.lock.write():
                col.close()
        if self._lockfile is not None:
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_UN)
            self._lockfile.close()
            self._lockfile = None

    def __enter__(self) -> LocalVectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# pgvector back end -------------------------------------------------------------------------
def _vector_literal(vec: F32) -> str:
    return "[" + ",".join(f"{x:.9g}" for x in vec.tolist()) + "]"


def copy_rows(collection: str | None, ids: I64, vecs: F32, chunk: int = 50_000) -> Iterator[bytes]:
    """PostgreSQL binary COPY data, in pieces, for rows ([collection,] id, embedding)."""
    n, dim = vecs.shape
    layout: list[tuple[Any, ...]] = [("nfields", ">i2")]
    name = b""
    if collection is not None:
        name = collection.encode()
        layout += [("clen", ">i4"), ("coll", f"S{len(name)}")]
    layout += [
        ("idlen", ">i4"),
        ("id", ">i8"),
        ("vlen", ">i4"),
        ("vdim", ">i2"),
        ("vunused", ">i2"),
        ("vec", ">f4", (dim,)),
    ]
    yield b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    for start in range(0, n, chunk):
        part = slice(start, min(n, start + chunk))
        rows = np.zeros(part.stop - part.start, dtype=np.dtype(layout))
        rows["nfields"] = 2 if collection is None else 3
        if collection is not None:
            rows["clen"] = len(name)
            rows["coll"] = name
        rows["idlen"] = 8
        rows["id"] = ids[part]
        rows["vlen"] = 4 + 4 * dim
        rows["vdim"] = dim
        rows["vec"] = vecs[part]
        yield rows.tobytes()
    yield struct.pack(">h", -1)


def _copy(cur: Any, sql: str, chunks: Iterator[bytes]) -> None:
    with cur.copy(sql) as cp:
        for data in chunks:
            cp.write(data)


class PgVectorIndex:
    """The pgvector back end (see the module docstring)."""

    def __init__(self, db: Database, dim: int = DEFAULT_DIM, options: VectorOptions | None = None):
        self.dim = _check_dim(dim)
        self.db = db
        self.options = options or VectorOptions()
        self.table = f"cw_vectors_{self.dim}"
        self._ready = False
        self._lock = threading.Lock()

    def partition(self, collection: str) -> str:
        digest = hashlib.blake2b(check_collection(collection).encode(), digest_size=8).hexdigest()
        return f"{self.table}_{digest}"

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """A psycopg connection from the engine's pool, in a transaction committed on success."""
        raw = self.db.engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        finally:
            raw.close()

    def _ensure_schema(self) -> None:
        with self._lock:
            if self._ready:
                return
            with self._conn() as conn:
                cur = conn.cursor()
                cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                row = cur.fetchone()
                if row is None:
                    cur.execute(
                        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
                    )
                    if cur.fetchone() is None:
                        raise VectorIndexError(
                            "this PostgreSQL server has no 'vector' extension: install pgvector "
                            "(0.8 or newer) on the server, or use SQLite with the in-process index"
                        )
                    try:
                        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    except Exception as err:
                        raise VectorIndexError(
                            f"CREATE EXTENSION vector failed ({err}); a superuser must run it once"
                        ) from err
                    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                    row = cur.fetchone()
                version = tuple(int(p) for p in re.findall(r"\d+", str(row[0]))[:2])
                if version < (0, 8):
                    raise VectorIndexError(f"pgvector {row[0]} is too old: 0.8 or newer is needed")
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} ("
                    "collection text NOT NULL, id bigint NOT NULL, "
                    f"embedding vector({self.dim}) NOT NULL, PRIMARY KEY (collection, id)"
                    ") PARTITION BY LIST (collection)"
                )
            self._ready = True

    def _exists(self, cur: Any, part: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (part,))
        return bool(cur.fetchone()[0])

    def add(self, collection: str, ids: Ids, vectors: np.ndarray) -> None:
        id_arr = check_ids(ids)
        vecs = check_vectors(vectors, len(id_arr), self.dim)
        part = self.partition(collection)
        if not len(id_arr):
            return
        self._ensure_schema()
        opts = self.options
        with self._conn() as conn:
            cur = conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (part,))
            if not self._exists(cur, part):
                # New collection: bulk load, index after the load (much faster than
                # inserting into the graph row by row), then attach as a partition.
                cur.execute(f"CREATE TABLE {part} (LIKE {self.table} INCLUDING DEFAULTS)")
                cur.execute(
                    f"ALTER TABLE {part} ADD CHECK (collection = '{collection}'), "
                    "ADD PRIMARY KEY (collection, id)"
                )
                _copy(
                    cur,
                    f"COPY {part} (collection, id, embedding) FROM STDIN (FORMAT BINARY)",
                    copy_rows(collection, id_arr, vecs),
                )
                cur.execute(f"SET LOCAL maintenance_work_mem = '{opts.pg_build_memory}'")
                cur.execute(
                    f"CREATE INDEX {part}_hnsw ON {part} USING hnsw (embedding vector_cosine_ops) "
                    f"WITH (m = {int(opts.hnsw_m)}, ef_construction = {int(opts.ef_construction)})"
                )
                cur.execute(
                    f"ALTER TABLE {self.table} ATTACH PARTITION {part} "
                    f"FOR VALUES IN ('{collection}')"
                )
                return
            cur.execute(
                f"CREATE TEMP TABLE cw_vec_in (id bigint, embedding vector({self.dim})) "
                "ON COMMIT DROP"
            )
            _copy(
                cur,
                "COPY cw_vec_in (id, embedding) FROM STDIN (FORMAT BINARY)",
                copy_rows(None, id_arr, vecs),
            )
            cur.execute(
                f"INSERT INTO {part} (collection, id, embedding) "
                "SELECT %s, id, embedding FROM cw_vec_in "
                "ON CONFLICT (collection, id) DO UPDATE SET embedding = EXCLUDED.embedding",
                (collection,),
            )

    def remove(self, collection: str, ids: Ids) -> None:
        id_arr = check_ids(ids)
        part = self.partition(collection)
        if not len(id_arr):
            return
        self._ensure_schema()
        with self._conn() as conn:
            cur = conn.cursor()
            if self._exists(cur, part):
                cur.execute(f"DELETE FROM {part} WHERE id = ANY(%s)", (id_arr.tolist(),))

    def drop(self, collection: str) -> None:
        part = self.partition(collection)
        self._ensure_schema()
        with self._conn() as conn:
            cur = conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (part,))
            cur.execute(f"DROP TABLE IF EXISTS {part}")

    def search(self, collection: str, query: np.ndarray, k: int = 10) -> list[VectorHit]:
        q = check_query(query, self.dim)
        k = _check_k(k)
        part = self.partition(collection)
        self._ensure_schema()
        ef = min(1000, max(int(self.options.ef_search), k))  # pgvector caps ef_search at 1000
        with self._conn() as conn:
            cur = conn.cursor()
            # strict_order: when k > ef_search the scan goes on instead of stopping short
            cur.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'strict_order', true)",
                (str(ef),),
            )
            try:
                cur.execute(
                    f"SELECT id, embedding <=> %s::vector AS d FROM {part} ORDER BY d LIMIT %s",
                    (_vector_literal(q), k),
                )
            except Exception as err:
                if getattr(err, "sqlstate", None) == _UNDEFINED_TABLE:
                    return []  # no such collection (the transaction is rolled back)
                raise
            rows = cur.fetchall()
        if not rows:
            return []
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return _hits(ids, 1.0 - np.array([r[1] for r in rows], dtype=np.float64))

    def count(self, collection: str) -> int:
        part = self.partition(collection)
        self._ensure_schema()
        with self._conn() as conn:
            cur = conn.cursor()
            if not self._exists(cur, part):
                return 0
            cur.execute(f"SELECT count(*) FROM {part}")
            return int(cur.fetchone()[0])

    def collections(self) -> list[str]:
        self._ensure_schema()
        have = []
        with self._conn() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
                (self.table,),
            )
            for (bound,) in cur.fetchall():
                m = re.search(r"IN \('(.*)'\)", str(bound))
                if m:
                    have.append(m.group(1))
        return sorted(set(have))

    def close(self) -> None:
        """Nothing to release: connections belong to the Database's engine."""
