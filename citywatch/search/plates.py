"""Plate reads: storing them (with the search vocabulary), retention, and search.

Reads live in `plate_reads` (indexed by (normalised, ts), (camera_id, ts) and ts). Every
distinct normalised text is also in `plate_texts` (the vocabulary, about a tenth of the
reads, with its number of reads and first and last time) with two key tables: the trigrams
of `^text$` in `plate_grams` (partial search) and, in `plate_variants`, the canonical form
(OCR confusions folded) with each of its one-character deletions (fuzzy search).

Search first finds the matching plate texts there, then their newest reads: texts in order
of their last read, each text's newest reads by (normalised, ts), stopping as soon as no
text left can have a newer read than the page found so far. A pattern that matches very
many texts is answered instead by walking the reads newest first.

Ranking: exact matches first, then by weighted edit distance, then newest first.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from citywatch.governance.cases import held
from citywatch.search.text import (
    PlateTextError,
    canon,
    deletions,
    fuzzy_keys,
    levenshtein,
    normalise,
    parse_pattern,
    pattern_keys,
    pattern_like,
    pattern_prefix,
    trigrams,
    weighted_distance,
)
from citywatch.store.db import Database
from citywatch.store.models import Camera, PlateGram, PlateRead, PlateText, PlateVariant

log = logging.getLogger(__name__)

DAY = 86400.0
DEFAULT_MAX_AGE_S = 30 * DAY
MAX_LIMIT = 1000
# Partial search: a pattern whose rarest index key has more plate texts than this is common,
# and its newest reads are found faster by walking all reads newest first.
MAX_PATTERN_PLATES = 5_000
FEW_PLATES = 500
MAX_FUZZY_PLATES = 200
DF_TTL_S = 3600.0
# Newest reads of many plates: plates per round (growing from the first to the last), and
# after how many plates one query takes all the rest (a camera or time filter that leaves
# few reads per plate).
BATCH_FIRST = 16
BATCH_MAX = 128
MERGE_MAX_TEXTS = 512
# Plates with at most this many reads (or the page size, if larger) are fetched several to a
# query that reads all their reads; a plate with more gets its own walk, stopped at the page.
FEW_READS = 100
# A filter that leaves at most this many reads (one camera for a week, say) is searched by
# walking those reads rather than by finding the matching plates first.
NARROW_READS = 10_000
ROW_BATCH = 50_000

__all__ = [
    "PlateFilter",
    "PlateHit",
    "PlateSearch",
    "PlateStore",
    "PlateTextError",
    "TrailPoint",
]


@dataclass(frozen=True)
class PlateFilter:
    cameras: Sequence[str] | None = None  # None: all; [] matches nothing
    start: float | None = None
    end: float | None = None
    direction: str | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise PlateTextError(f"limit must be 1..{MAX_LIMIT}")
        if self.offset < 0:
            raise PlateTextError("offset must be >= 0")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise PlateTextError("end must not be before start")

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.cameras is not None:
            out.append(PlateRead.camera_id.in_(list(self.cameras)))
        if self.start is not None:
            out.append(PlateRead.ts >= self.start)
        if self.end is not None:
            out.append(PlateRead.ts <= self.end)
        if self.direction:
            out.append(PlateRead.direction == self.direction)
        return out


@dataclass(frozen=True)
class PlateHit:
    read: PlateRead
    distance: float  # weighted edit distance to the query (0 for exact and pattern hits)
    match: str  # exact | partial | fuzzy


@dataclass(frozen=True)
class TrailPoint:
    read: PlateRead
    camera_name: str
    lat: float | None
    lon: float | None
    address: str


@dataclass(slots=True)
class _Vocab:
    normalised: str
    reads: int
    first_ts: float
    last_ts: float
    distance: float = 0.0


_VOCAB_COLS = (PlateText.normalised, PlateText.reads, PlateText.first_ts, PlateText.last_ts)


def _vocab(row: Any, distance: float = 0.0) -> _Vocab:
    return _Vocab(row[0], int(row[1]), float(row[2]), float(row[3]), distance)


def _key_rows(text_id: int, normalised: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The plate_grams and plate_variants rows of one vocabulary text."""
    return (
        [{"gram": g, "text_id": text_id} for g in trigrams(normalised)],
        [{"variant": v, "text_id": text_id} for v in deletions(canon(normalised))],
    )


@dataclass
class PlateStore:
    """Writes reads (keeping the vocabulary current) and applies their retention."""

    db: Database
    data_dir: Path
    batch: int = 5_000
    _stats: dict[str, int] = field(default_factory=dict)

    def add(self, read: PlateRead) -> PlateRead:
        """Store one read. `normalised` becomes the search key: A-Z and 0-9 only, letters
        with diacritics folded (the reader's `BČ123AB` is stored and found as `BC123AB`;
        `text` keeps what was read)."""
        read.normalised = normalise(read.normalised or read.text)
        with self.db.session() as s, s.begin():
            s.add(read)
            self._note_text(s, read.normalised, read.ts)
        return read

    def _insert(self) -> Any:
        return pg_insert if self.db.is_postgres else sqlite_insert

    def _note_text(self, s: Session, normalised: str, ts: float) -> None:
        done = s.execute(
            update(PlateText)
            .where(PlateText.normalised == normalised)
            .values(
                reads=PlateText.reads + 1,
                last_ts=func.max(PlateText.last_ts, ts)
                if not self.db.is_postgres
                else func.greatest(PlateText.last_ts, ts),
                first_ts=func.min(PlateText.first_ts, ts)
                if not self.db.is_postgres
                else func.least(PlateText.first_ts, ts),
            )
        )
        if getattr(done, "rowcount", 0):
            return
        ins = self._insert()
        s.execute(
            ins(PlateText)
            .values(
                normalised=normalised, canon=canon(normalised), reads=1, first_ts=ts, last_ts=ts
            )
            .on_conflict_do_nothing(index_elements=["normalised"])
        )
        text_id = s.scalar(select(PlateText.id).where(PlateText.normalised == normalised))
        if text_id is None:  # pragma: no cover - deleted concurrently
            return
        gram_rows, variant_rows = _key_rows(text_id, normalised)
        s.execute(ins(PlateGram).values(gram_rows).on_conflict_do_nothing())
        s.execute(ins(PlateVariant).values(variant_rows).on_conflict_do_nothing())

    def rebuild_vocabulary(self) -> int:
        """Recompute plate_texts and its key tables from plate_reads (after a bulk load or a
        restore). Returns the number of distinct plates."""
        with self.db.session() as s, s.begin():
            s.execute(delete(PlateGram))
            s.execute(delete(PlateVariant))
            s.execute(delete(PlateText))
            rows = s.execute(
                select(
                    PlateRead.normalised,
                    func.count(),
                    func.min(PlateRead.ts),
                    func.max(PlateRead.ts),
                ).group_by(PlateRead.normalised)
            ).all()
            conn = s.connection()
            texts: list[dict[str, Any]] = []
            grams: list[dict[str, Any]] = []
            variants: list[dict[str, Any]] = []
            for i, (norm, n, first, last) in enumerate(rows, 1):
                texts.append(
                    {
                        "id": i,
                        "normalised": norm,
                        "canon": canon(norm),
                        "reads": int(n),
                        "first_ts": float(first),
                        "last_ts": float(last),
                    }
                )
                g, v = _key_rows(i, norm)
                grams.extend(g)
                variants.extend(v)
                if len(texts) >= ROW_BATCH:
                    self._flush(conn, texts, grams, variants)
            self._flush(conn, texts, grams, variants)
            if self.db.is_postgres and rows:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('plate_texts', 'id'), {len(rows)})"
                )
        return len(rows)

    def _flush(self, conn: Any, *batches: list[dict[str, Any]]) -> None:
        for table, rows in zip((PlateText, PlateGram, PlateVariant), batches, strict=True):
            if not rows:
                continue
            if self.db.is_postgres:  # COPY: several times faster than INSERTs
                cols = list(rows[0])
                cur = conn.connection.driver_connection.cursor()
                with cur.copy(f"COPY {table.__tablename__} ({', '.join(cols)}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row([row[c] for c in cols])
            else:
                conn.execute(insert(table), rows)
            rows.clear()

    def expire(
        self,
        now: float | None = None,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        per_camera: dict[str, float] | None = None,
    ) -> int:
        """Delete reads older than their camera's maximum age (default 30 days) and their
        crop and snapshot files, except reads an open case holds (a hotlist hit attached to
        a case keeps its read). Returns the number of reads deleted."""
        now = time.time() if now is None else now
        per_camera = dict(per_camera or {})
        rules: list[ColumnElement[bool]] = [
            and_(PlateRead.camera_id == cam, PlateRead.ts < now - age)
            for cam, age in per_camera.items()
        ]
        default = PlateRead.ts < now - max_age_s
        if per_camera:
            default = and_(default, PlateRead.camera_id.not_in(list(per_camera)))
        rules.append(default)
        cond = and_(or_(*rules), PlateRead.id.not_in(held("plate_read")))
        deleted = 0
        while True:
            with self.db.session() as s, s.begin():
                rows = s.execute(
                    select(PlateRead.id, PlateRead.crop, PlateRead.snapshot)
                    .where(cond)
                    .limit(self.batch)
                ).all()
                if not rows:
                    break
                s.execute(delete(PlateRead).where(PlateRead.id.in_([r[0] for r in rows])))
            for _id, crop, snap in rows:
                self._unlink(crop)
                self._unlink(snap)
            deleted += len(rows)
        oldest_kept = now - max([max_age_s, *per_camera.values()])
        while True:
            with self.db.session() as s, s.begin():
                gone = s.execute(
                    select(PlateText.id, PlateText.normalised)
                    .where(
                        PlateText.last_ts < oldest_kept,
                        # held reads stay findable by partial and fuzzy search
                        PlateText.normalised.not_in(
                            select(PlateRead.normalised).where(PlateRead.id.in_(held("plate_read")))
                        ),
                    )
                    .limit(self.batch)
                ).all()
                if not gone:
                    break
                self._forget(s, gone)
        return deleted

    @staticmethod
    def _forget(s: Session, texts: Sequence[Any]) -> None:
        """Delete vocabulary texts and their key rows (by primary key)."""
        grams: list[tuple[str, int]] = []
        variants: list[tuple[str, int]] = []
        for text_id, norm in texts:
            g, v = _key_rows(text_id, norm)
            grams.extend((r["gram"], text_id) for r in g)
            variants.extend((r["variant"], text_id) for r in v)
        for k in range(0, len(grams), 500):
            part = grams[k : k + 500]
            s.execute(delete(PlateGram).where(tuple_(PlateGram.gram, PlateGram.text_id).in_(part)))
        for k in range(0, len(variants), 500):
            part = variants[k : k + 500]
            s.execute(
                delete(PlateVariant).where(
                    tuple_(PlateVariant.variant, PlateVariant.text_id).in_(part)
                )
            )
        s.execute(delete(PlateText).where(PlateText.id.in_([t[0] for t in texts])))

    def _unlink(self, rel: str | None) -> None:
        if not rel:
            return
        path = (self.data_dir / rel).resolve()
        if not path.is_relative_to(self.data_dir.resolve()):
            log.warning("not deleting %s: outside the data directory", path)
            return
        path.unlink(missing_ok=True)

    def get(self, read_id: int) -> PlateRead | None:
        with self.db.session() as s:
            return s.get(PlateRead, read_id)


class PlateSearch:
    """Exact, partial (`*12*`, `BG12?`) and fuzzy plate search, and trails."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._df_cache: dict[str, tuple[int, bool, float]] = {}

    # -- exact -----------------------------------------------------------------------------
    def exact(self, q: str, f: PlateFilter | None = None) -> list[PlateHit]:
        f = f or PlateFilter()
        norm = normalise(q)
        n = f.offset + f.limit
        with self.db.session() as s:
            rows = s.execute(self._newest_of(norm, f, n)).all()
            reads = self._load(s, [r[1] for r in rows])
        return [PlateHit(r, 0.0, "exact") for r in reads[f.offset :]]

    @staticmethod
    def _newest_of(plate: str, f: PlateFilter, n: int) -> Select[float, int]:
        """(ts, id) of the newest `n` reads of one plate: one walk of (normalised, ts)."""
        return (
            select(PlateRead.ts, PlateRead.id)
            .where(PlateRead.normalised == plate, *f.clauses())
            .order_by(PlateRead.ts.desc(), PlateRead.id.desc())
            .limit(n)
        )

    @staticmethod
    def _load(s: Session, ids: Sequence[int]) -> list[PlateRead]:
        """The reads with these ids, in this order."""
        if not ids:
            return []
        by_id = {r.id: r for r in s.scalars(select(PlateRead).where(PlateRead.id.in_(ids)))}
        return [by_id[i] for i in ids if i in by_id]

    def _newest(
        self, s: Session, ordered: Iterable[_Vocab], f: PlateFilter, n: int
    ) -> list[tuple[float, int]]:
        """(ts, id) of the newest `n` reads of these plates, newest first. `ordered` gives
        the plates that may have reads in the filter's time range, latest last read first
        (see `_in_order`).

        Plates are taken a round at a time, their reads found through (normalised, ts). Once
        `n` reads are found and the next plate's last read is older than the n-th, no plate
        left can change the page. A filter that leaves few reads per plate (one camera, say)
        may need many plates: after MERGE_MAX_TEXTS of them, one query takes the rest."""
        hi = f.end
        it = iter(ordered)
        pending = next(it, None)
        best: list[tuple[float, int]] = []
        taken = 0
        # Unless a camera, direction or end filter can hide a plate's last read, the first n
        # plates bring n reads no older than the n-th plate's last: usually one round.
        hides = f.cameras is not None or f.direction or hi is not None
        batch = BATCH_FIRST if hides else max(BATCH_FIRST, n)
        few_reads = max(FEW_READS, n)
        while pending is not None:
            last = pending.last_ts if hi is None else min(pending.last_ts, hi)
            if len(best) >= n and last < best[n - 1][0]:
                break
            if taken >= MERGE_MAX_TEXTS:
                rest = [pending, *it]  # the planner picks: by plate, or by camera and time
                q = self._newest_in(rest, f, n, by_plate=False)
                return self._merge(best, self._run(s, q), n)
            chunk = [pending, *itertools.islice(it, batch - 1)]
            pending = next(it, None)
            taken += len(chunk)
            batch = min(batch * 2, BATCH_MAX)
            # Plates with few reads: one query reads them all and keeps the newest n; plates
            # with many reads: a walk of each, stopped after n (one query for all of them).
            few = [v for v in chunk if v.reads <= few_reads]
            if few:
                best = self._merge(best, self._run(s, self._newest_in(few, f, n)), n)
            many = [self._newest_of(v.normalised, f, n) for v in chunk if v.reads > few_reads]
            if many:
                walks: Any = many[0]
                if len(many) > 1:
                    walks = union_all(*(m.subquery().select() for m in many))
                best = self._merge(best, self._run(s, walks), n)
        return best

    def _narrow(self, s: Session, f: PlateFilter) -> bool:
        """Whether the filter (cameras, time, direction) leaves at most NARROW_READS reads:
        then walking them all, newest first, beats finding the plates first."""
        if f.cameras is None and f.start is None and f.end is None and not f.direction:
            return False
        ids = select(PlateRead.id).where(*f.clauses()).limit(NARROW_READS + 1)
        return self._count(s, ids) <= NARROW_READS

    @staticmethod
    def _in_order(texts: Iterable[_Vocab], f: PlateFilter) -> list[_Vocab]:
        """The plates that may have reads in the filter's time range, latest last read
        (up to the filter's end) first."""
        lo, hi = f.start, f.end
        live = [
            v for v in texts if (lo is None or v.last_ts >= lo) and (hi is None or v.first_ts <= hi)
        ]
        live.sort(key=lambda v: v.last_ts if hi is None else min(v.last_ts, hi), reverse=True)
        return live

    @staticmethod
    def _newest_in(
        texts: Sequence[_Vocab], f: PlateFilter, n: int, by_plate: bool = True
    ) -> Select[float, int]:
        """The newest `n` reads of these plates. `by_plate`: through (normalised, ts) only,
        then sorted (`ts + 0` keeps PostgreSQL from walking the ts index instead, which it
        may guess is faster and which reads millions of rows for rare plates)."""
        ts: Any = PlateRead.ts + 0 if by_plate else PlateRead.ts
        return (
            select(PlateRead.ts, PlateRead.id)
            .where(PlateRead.normalised.in_([v.normalised for v in texts]), *f.clauses())
            .order_by(ts.desc(), PlateRead.id.desc())
            .limit(n)
        )

    @staticmethod
    def _run(s: Session, q: Any) -> list[tuple[float, int]]:
        return [(float(r[0]), int(r[1])) for r in s.connection().execute(q)]

    @staticmethod
    def _merge(
        best: list[tuple[float, int]], rows: list[tuple[float, int]], n: int
    ) -> list[tuple[float, int]]:
        return heapq.nsmallest(n, [*best, *rows], key=lambda r: (-r[0], -r[1]))

    # -- partial ---------------------------------------------------------------------------
    def partial(self, pattern: str, f: PlateFilter | None = None) -> list[PlateHit]:
        f = f or PlateFilter()
        pat = parse_pattern(pattern)
        n = f.offset + f.limit
        with self.db.session() as s:
            vocab = None if self._narrow(s, f) else self._pattern_plates(s, pat, f)
            if vocab is None:
                # Newest first through the ts (or camera, ts) index: never through a range of
                # (normalised, ts), which would read and sort every read of a common prefix.
                text = PlateRead.normalised
                walk = text if self.db.is_postgres else text.concat("")
                q = (
                    select(PlateRead.ts, PlateRead.id)
                    .where(self._matches(walk, pat), *f.clauses())
                    .order_by(PlateRead.ts.desc(), PlateRead.id.desc())
                    .limit(n)
                )
                found = self._run(s, q)
            else:
                found = self._newest(s, vocab, f, n)
            reads = self._load(s, [r[1] for r in found])
        return [PlateHit(r, 0.0, "partial") for r in reads[f.offset :]]

    def _matches(self, column: Any, pat: str) -> ColumnElement[bool]:
        """The pattern in SQL, case-sensitive: LIKE on PostgreSQL, GLOB on SQLite (whose LIKE
        ignores case); `*` and `?` mean the same in GLOB."""
        if self.db.is_postgres:
            return column.like(pattern_like(pat))  # type: ignore[no-any-return]
        return column.op("GLOB")(pat)  # type: ignore[no-any-return]

    def _pattern_plates(self, s: Session, pat: str, f: PlateFilter) -> Iterator[_Vocab] | None:
        """Vocabulary entries matching the pattern, found through its rarest index key (a
        trigram, a two-character start of trigrams, or the literal start of the pattern),
        in the order of `_in_order` (read lazily: the first few are often enough); None when
        even that key has more than MAX_PATTERN_PLATES plates."""
        # The rarest key: each count stops at the best so far (at most MAX_PATTERN_PLATES).
        best, key = MAX_PATTERN_PLATES + 1, ""
        prefix = pattern_prefix(pat)
        if len(prefix) >= 2:
            ids = select(PlateText.id).where(*_prefix_range(PlateText.normalised, prefix))
            best, key = self._count(s, ids.limit(best)), prefix + "*"
        for k in pattern_keys(pat):
            if best <= FEW_PLATES:
                break  # few enough to read: a rarer key would not save a count
            df = self._df(s, k, best)
            if df < best:
                best, key = df, k
        if best > MAX_PATTERN_PLATES or not key:
            return None
        where = [self._matches(PlateText.normalised, pat)]
        if key.endswith("*"):
            where += _prefix_range(PlateText.normalised, key[:-1])
        else:
            where.append(PlateText.id.in_(select(PlateGram.text_id).where(*self._gram_where(key))))
        if f.start is not None:
            where.append(PlateText.last_ts >= f.start)
        if f.end is not None:
            where.append(PlateText.first_ts <= f.end)
            last: Any = func.min(PlateText.last_ts, f.end)
            if self.db.is_postgres:
                last = func.least(PlateText.last_ts, f.end)
        else:
            last = PlateText.last_ts
        q = select(*_VOCAB_COLS).where(*where).order_by(last.desc())
        return (_vocab(r) for r in s.connection().execute(q))

    @staticmethod
    def _gram_where(key: str) -> list[ColumnElement[bool]]:
        if len(key) >= 3:
            return [PlateGram.gram == key]
        return _prefix_range(PlateGram.gram, key)

    def _df(self, s: Session, key: str, cap: int) -> int:
        """How many plate texts have this index key, counted up to `cap` (counts are cached
        for DF_TTL_S; one that reached its cap is only a lower bound)."""
        now = time.monotonic()
        hit = self._df_cache.get(key)
        if hit is not None and now - hit[2] < DF_TTL_S and (hit[1] or hit[0] >= cap):
            return min(hit[0], cap)
        sub = select(PlateGram.text_id).where(*self._gram_where(key))
        if len(key) < 3:
            sub = sub.distinct()
        n = self._count(s, sub.limit(cap))
        self._df_cache[key] = (n, n < cap, now)
        return n

    @staticmethod
    def _count(s: Session, q: Select[Any]) -> int:
        return int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)

    # -- fuzzy -----------------------------------------------------------------------------
    def fuzzy(self, q: str, max_edits: float = 1, f: PlateFilter | None = None) -> list[PlateHit]:
        """Plates within `max_edits` weighted edits (an OCR confusion such as O/0 costs 0.5),
        ranked exact first, then by distance, then newest first."""
        f = f or PlateFilter()
        if not 0 < max_edits <= 2:
            raise PlateTextError("max_edits must be 1 or 2")
        norm = normalise(q)
        if len(norm) < 3:
            raise PlateTextError("fuzzy search needs at least 3 characters")
        with self.db.session() as s:
            found = self._fuzzy_plates(s, norm, max_edits)
            found.sort(key=lambda v: (v.distance, -v.last_ts))
            found = found[:MAX_FUZZY_PLATES]
            n = f.offset + f.limit
            hits: list[tuple[float, int]] = []
            dist_of: dict[int, float] = {}
            if found and self._narrow(s, f):
                # Few reads pass the filter: one query takes all those of these plates.
                dist = {v.normalised: v.distance for v in found}
                q_all = select(PlateRead.ts, PlateRead.id, PlateRead.normalised).where(
                    PlateRead.normalised.in_(list(dist)), *f.clauses()
                )
                rows_all = s.connection().execute(q_all).all()
                ranked = sorted(rows_all, key=lambda r: (dist[r[2]], -r[0], -r[1]))[:n]
                hits = [(float(r[0]), int(r[1])) for r in ranked]
                dist_of = {int(r[1]): dist[r[2]] for r in ranked}
            else:
                # Group by distance so each group is newest first, groups in distance order.
                for d in sorted({v.distance for v in found}):
                    group = self._in_order((v for v in found if v.distance == d), f)
                    rows = self._newest(s, group, f, n - len(hits))
                    hits.extend(rows)
                    dist_of.update((r[1], d) for r in rows)
                    if len(hits) >= n:
                        break
            reads = self._load(s, [r[1] for r in hits])
        out = [
            PlateHit(r, dist_of[r.id], "exact" if dist_of[r.id] == 0 else "fuzzy") for r in reads
        ]
        return out[f.offset : n]

    def _fuzzy_plates(self, s: Session, norm: str, max_edits: float) -> list[_Vocab]:
        # Every OCR confusion folds away in the canonical form, so a plate within k weighted
        # edits is within k plain edits there, and shares a key of the variant index.
        c = canon(norm)
        k = int(max_edits)
        keys = sorted(fuzzy_keys(c, k))
        # Two steps, each through a primary key (as one query, PostgreSQL may scan all texts).
        hit = select(PlateVariant.text_id).where(self._one_of(PlateVariant.variant, keys, String))
        ids = sorted({int(i) for i in s.connection().execute(hit).scalars()})
        if not ids:
            return []
        cols = select(*_VOCAB_COLS, PlateText.canon)
        rows = s.connection().execute(cols.where(self._one_of(PlateText.id, ids, Integer))).all()
        out: list[_Vocab] = []
        for row in rows:
            text, cand = row[0], row[4]
            if abs(len(cand) - len(c)) > k or levenshtein(c, cand) > k:
                continue
            d = weighted_distance(norm, text, max_edits)
            if d <= max_edits:
                out.append(_vocab(row, d))
        return out

    def _one_of(self, column: Any, values: Sequence[Any], kind: Any) -> ColumnElement[bool]:
        """`column IN values` for a thousand values or more, bound as one parameter (an
        array on PostgreSQL, a JSON list on SQLite) instead of one parameter each."""
        if self.db.is_postgres:
            array = bindparam("values", list(values), type_=ARRAY(kind))
            return column == any_(array)  # type: ignore[no-any-return]
        each = func.json_each(json.dumps(list(values))).table_valued("value")
        return column.in_(select(each.c.value))  # type: ignore[no-any-return]

    # -- trail -----------------------------------------------------------------------------
    def trail(
        self,
        plate: str,
        start: float | None = None,
        end: float | None = None,
        cameras: Sequence[str] | None = None,
        limit: int = 10_000,
    ) -> list[TrailPoint]:
        """Where this vehicle was: its reads in time order, with the cameras' map places."""
        norm = normalise(plate)
        f = PlateFilter(cameras=cameras, start=start, end=end, limit=min(limit, MAX_LIMIT))
        q = (
            select(PlateRead, Camera.name, Camera.lat, Camera.lon, Camera.address)
            .outerjoin(Camera, Camera.id == PlateRead.camera_id)
            .where(PlateRead.normalised == norm, *f.clauses())
            .order_by(PlateRead.ts, PlateRead.id)
            .limit(limit)
        )
        with self.db.session() as s:
            return [
                TrailPoint(r, name or r.camera_id, lat, lon, addr or "")
                for r, name, lat, lon, addr in s.execute(q).all()
            ]


def _prefix_range(column: Any, prefix: str) -> list[ColumnElement[bool]]:
    """`column` starts with `prefix` as an index range (keys hold A-Z, 0-9, ^ and $ only,
    all below `~`)."""
    return [column >= prefix, column < prefix + "~"]


def hits_for(search: PlateSearch, mode: str, q: str, f: PlateFilter, edits: float) -> list[Any]:
    """Dispatch by mode name (exact | partial | fuzzy)."""
    if mode == "exact":
        return search.exact(q, f)
    if mode == "partial":
        return search.partial(q, f)
    if mode == "fuzzy":
        return search.fuzzy(q, edits, f)
    raise PlateTextError(f"unknown mode {mode!r} (exact, partial or fuzzy)")


def camera_scope(allowed: Iterable[str] | None, asked: Sequence[str] | None) -> list[str] | None:
    """Intersect the cameras asked for with those a user may see (None = all)."""
    if allowed is None:
        return list(asked) if asked else None
    allowed_set = set(allowed)
    if not asked:
        return sorted(allowed_set)
    return [c for c in asked if c in allowed_set]
