"""Plate reads: storing them (with the search vocabulary), retention, and search.

Reads live in `plate_reads` (indexed by (normalised, ts), (camera_id, ts) and ts). Every
distinct normalised text is also in `plate_texts` (the vocabulary, about a tenth of the
reads) with its padded bigrams of the OCR-folded form in `plate_grams`; on PostgreSQL a
pg_trgm GIN index covers `plate_texts.normalised` too. Partial and fuzzy search first find
the matching plate texts there, then fetch their reads through (normalised, ts); a pattern
that matches very many reads is answered instead by walking the reads newest first.

Ranking: exact matches first, then by weighted edit distance, then newest first.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from citywatch.search.text import (
    ALPHABET,
    PlateTextError,
    canon,
    fragment_grams,
    grams,
    normalise,
    parse_pattern,
    pattern_fragments,
    pattern_like,
    pattern_regex,
    weighted_distance,
)
from citywatch.store.db import Database
from citywatch.store.models import Camera, PlateGram, PlateRead, PlateText

log = logging.getLogger(__name__)

DAY = 86400.0
DEFAULT_MAX_AGE_S = 30 * DAY
MAX_LIMIT = 1000
# Partial search: when the matching plates have at most this many reads together, fetch
# them by plate; otherwise walk the reads newest first (the pattern is common, so the
# first page is found quickly).
BY_PLATE_MAX_READS = 20_000
MAX_PATTERN_PLATES = 2_000
MAX_FUZZY_PLATES = 200
DF_TTL_S = 3600.0

CANON_ALPHABET = sorted({canon(ch) for ch in ALPHABET})

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


@dataclass
class _Vocab:
    normalised: str
    reads: int
    last_ts: float
    distance: float = 0.0


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
        s.execute(
            ins(PlateGram)
            .values([{"gram": g, "text_id": text_id} for g in grams(canon(normalised))])
            .on_conflict_do_nothing()
        )

    def rebuild_vocabulary(self) -> int:
        """Recompute plate_texts and plate_grams from plate_reads (after a bulk load or a
        restore). Returns the number of distinct plates."""
        with self.db.session() as s, s.begin():
            s.execute(delete(PlateGram))
            s.execute(delete(PlateText))
            rows = s.execute(
                select(
                    PlateRead.normalised,
                    func.count(),
                    func.min(PlateRead.ts),
                    func.max(PlateRead.ts),
                ).group_by(PlateRead.normalised)
            ).all()
            texts: list[dict[str, Any]] = []
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
            conn = s.connection()
            for k in range(0, len(texts), 50_000):
                conn.execute(insert(PlateText), texts[k : k + 50_000])
            grams_rows = [{"gram": g, "text_id": t["id"]} for t in texts for g in grams(t["canon"])]
            for k in range(0, len(grams_rows), 100_000):
                conn.execute(insert(PlateGram), grams_rows[k : k + 100_000])
            if self.db.is_postgres and texts:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('plate_texts', 'id'), {len(texts)})"
                )
        return len(texts)

    def expire(
        self,
        now: float | None = None,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        per_camera: dict[str, float] | None = None,
    ) -> int:
        """Delete reads older than their camera's maximum age (default 30 days) and their
        crop and snapshot files. Returns the number of reads deleted."""
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
        cond = or_(*rules)
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
        with self.db.session() as s, s.begin():
            gone = select(PlateText.id).where(PlateText.last_ts < oldest_kept)
            s.execute(delete(PlateGram).where(PlateGram.text_id.in_(gone)))
            s.execute(delete(PlateText).where(PlateText.last_ts < oldest_kept))
        return deleted

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
        self._df_cache: dict[str, tuple[int, float]] = {}

    # -- exact -----------------------------------------------------------------------------
    def exact(self, q: str, f: PlateFilter | None = None) -> list[PlateHit]:
        f = f or PlateFilter()
        norm = normalise(q)
        with self.db.session() as s:
            rows = self._reads_of(s, [norm], f, f.offset + f.limit)
        return [PlateHit(r, 0.0, "exact") for r in rows[f.offset :]]

    def _reads_query(self, f: PlateFilter) -> Select[Any]:
        return select(PlateRead).where(*f.clauses())

    def _reads_of(self, s: Session, plates: Sequence[str], f: PlateFilter, n: int) -> list[Any]:
        """The newest `n` reads of the given plates: one index walk per plate, merged."""
        per: list[list[PlateRead]] = []
        for p in plates:
            q = (
                self._reads_query(f)
                .where(PlateRead.normalised == p)
                .order_by(PlateRead.ts.desc(), PlateRead.id.desc())
                .limit(n)
            )
            per.append(list(s.scalars(q)))
        if len(per) == 1:
            return per[0]
        merged = heapq.merge(*per, key=lambda r: (-r.ts, -r.id))
        return [r for _, r in zip(range(n), merged, strict=False)]

    # -- partial ---------------------------------------------------------------------------
    def partial(self, pattern: str, f: PlateFilter | None = None) -> list[PlateHit]:
        f = f or PlateFilter()
        pat = parse_pattern(pattern)
        n = f.offset + f.limit
        with self.db.session() as s:
            vocab = self._pattern_plates(s, pat)
            if vocab is not None and sum(v.reads for v in vocab) <= BY_PLATE_MAX_READS:
                plates = [v.normalised for v in vocab]
                if not plates:
                    return []
                q = (
                    self._reads_query(f)
                    .where(PlateRead.normalised.in_(plates))
                    .order_by(PlateRead.ts.desc(), PlateRead.id.desc())
                    .limit(n)
                )
            else:
                q = (
                    self._reads_query(f)
                    .where(PlateRead.normalised.like(pattern_like(pat)))
                    .order_by(PlateRead.ts.desc(), PlateRead.id.desc())
                    .limit(n)
                )
            rows: list[PlateRead] = list(s.scalars(q))
        if not self.db.is_postgres:  # SQLite LIKE is case-insensitive: keep exact semantics
            rx = pattern_regex(pat)
            rows = [r for r in rows if rx.fullmatch(r.normalised)]
        return [PlateHit(r, 0.0, "partial") for r in rows[f.offset :]]

    def _pattern_plates(self, s: Session, pat: str) -> list[_Vocab] | None:
        """Vocabulary entries matching the pattern; None when there are too many."""
        like = pattern_like(pat)
        if self.db.is_postgres:
            q = select(PlateText.normalised, PlateText.reads, PlateText.last_ts).where(
                PlateText.normalised.like(like)
            )
        else:
            # The two rarest letter pairs select few candidates; intersecting common pairs
            # (say "AB", which ends many Serbian plates) only costs. LIKE below is exact.
            need = sorted(fragment_grams(pattern_fragments(pat)), key=self._df)[:2]
            ids = (
                select(PlateGram.text_id)
                .where(PlateGram.gram.in_(need))
                .group_by(PlateGram.text_id)
                .having(func.count() >= len(need))
            )
            q = select(PlateText.normalised, PlateText.reads, PlateText.last_ts).where(
                PlateText.id.in_(ids), PlateText.normalised.like(like)
            )
        rows = s.execute(q.limit(MAX_PATTERN_PLATES + 1)).all()
        if len(rows) > MAX_PATTERN_PLATES:
            return None
        rx = pattern_regex(pat)
        return [_Vocab(r[0], int(r[1]), float(r[2])) for r in rows if rx.fullmatch(r[0])]

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
            out: list[PlateHit] = []
            # Group by distance so each group is newest first, groups in distance order.
            for dist in sorted({v.distance for v in found}):
                group = [v.normalised for v in found if v.distance == dist]
                rows = self._reads_of(s, group, f, n - len(out))
                kind = "exact" if dist == 0 else "fuzzy"
                out.extend(PlateHit(r, dist, kind) for r in rows)
                if len(out) >= n:
                    break
        return out[f.offset : n]

    def _fuzzy_plates(self, s: Session, norm: str, max_edits: float) -> list[_Vocab]:
        # Every OCR confusion folds away in the canonical form, so a plate within k weighted
        # edits is within k plain edits there.
        c = canon(norm)
        k = int(max_edits)
        cols = (PlateText.normalised, PlateText.reads, PlateText.last_ts)
        if k <= 1:
            # All canonical texts one plain edit away (about 450 for 7 characters): index
            # lookups on plate_texts.canon.
            rows = s.execute(select(*cols).where(PlateText.canon.in_(sorted(neighbours(c))))).all()
        else:
            rows = self._gram_candidates(s, c, k)
        out: list[_Vocab] = []
        for text, reads, last in rows:
            d = weighted_distance(norm, text, max_edits)
            if d <= max_edits:
                out.append(_Vocab(text, int(reads), float(last), d))
        return out

    def _gram_candidates(self, s: Session, c: str, k: int) -> list[Any]:
        # Each plain edit breaks at most two padded bigrams, so a match shares at least
        # need = |bigrams| - 2k of the query's bigrams. Leaving out the d most common bigrams
        # (say ^B and BG for a Belgrade plate), a match still shares need - d of the rest:
        # scan only those rarer posting lists, then check the full count in Python.
        qg = sorted(grams(c), key=self._df)
        need = max(1, len(qg) - 2 * k)
        drop = max(0, need - 2)
        kept = qg[: len(qg) - drop]
        ids = (
            select(PlateGram.text_id)
            .where(PlateGram.gram.in_(kept))
            .group_by(PlateGram.text_id)
            .having(func.count() >= need - drop)
        )
        rows = s.execute(
            select(PlateText.normalised, PlateText.reads, PlateText.last_ts, PlateText.canon).where(
                PlateText.id.in_(ids),
                func.length(PlateText.canon).between(len(c) - k, len(c) + k),
            )
        ).all()
        want = set(qg)
        return [r[:3] for r in rows if len(want & grams(r[3])) >= need]

    def _df(self, gram: str) -> int:
        """How many plate texts have this bigram (cached for DF_TTL_S)."""
        now = time.monotonic()
        hit = self._df_cache.get(gram)
        if hit is not None and now - hit[1] < DF_TTL_S:
            return hit[0]
        with self.db.session() as s:
            n = int(
                s.scalar(select(func.count()).select_from(PlateGram).where(PlateGram.gram == gram))
                or 0
            )
        self._df_cache[gram] = (n, now)
        return n

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


def neighbours(c: str) -> set[str]:
    """Every canonical text at most one plain edit from `c`."""
    out = {c}
    for i in range(len(c) + 1):
        for a in CANON_ALPHABET:
            out.add(c[:i] + a + c[i:])
        if i < len(c):
            out.add(c[:i] + c[i + 1 :])
            for a in CANON_ALPHABET:
                out.add(c[:i] + a + c[i + 1 :])
    return out


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
