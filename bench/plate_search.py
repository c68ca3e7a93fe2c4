"""Plate search latency on millions of synthetic reads, SQLite and PostgreSQL, p50/p95.

    nice -n 10 .venv/bin/python -m bench.plate_search [--reads 10000000]
        [--engines sqlite,postgres] [--queries 200] [--dir DIR [--rebuild]]

Synthetic reads, generated with numpy (seeded): 500 cameras with uneven traffic, 90 days,
vehicles = reads / 15 with Zipf-like popularity (weight (rank + 10) ** -0.8: a few taxis
and buses pass thousands of times, most cars a handful), 75% Serbian plates (city code
weighted like registrations: BG, NS, NI, KG ..., 3-4 digits, 2 letters), 25% other European
formats; 5% of reads carry OCR noise (3% a confusion such as B/8 or O/0, 1% a wrong
character, 1% a dropped one). Bulk-loaded (executemany / COPY) without indexes, then indexed
and the search vocabulary built (PlateStore.rebuild_vocabulary), then ANALYZE.

With --dir the databases are kept there, and a later run with the same --reads reuses the
loaded reads (with the load figures of the run that loaded them); --rebuild rebuilds their
search vocabulary first (say, after a change to it). The figures include the database size.

Queries go through citywatch.search.plates.PlateSearch (SQLAlchemy, as the API runs them),
limit 50, on plates drawn from the data (half by read, so popular plates come up as often as
they are read, half uniformly over vehicles): exact; partial (a rotation of `BG12*`,
`*123*`, `BG12?AB`, `*3AB`); fuzzy with 1 and 2 weighted edits on a plate with one random
character changed. Latency is wall time per call on a warm cache.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import Table

from bench.common import emit, loadavg, machine, summary_ms
from citywatch.search.plates import PlateFilter, PlateSearch, PlateStore
from citywatch.store.db import Database
from citywatch.store.models import PlateRead

DAY = 86400.0
T_END = 1_780_000_000.0
CHUNK = 500_000
COLS = (
    "camera_id, ts, text, normalised, country, format, confidence, crop, snapshot, "
    "event_id, track_id, direction"
)
LETTERS = "ABCDEFGHIJKLMNOPRSTUVZXYW"
CITY = [("BG", 40), ("NS", 10), ("NI", 6), ("KG", 4), ("SU", 3), ("ZR", 2), ("PA", 2),
        ("CA", 2), ("KV", 2), ("SA", 2), ("VA", 2), ("SM", 2), ("UE", 2), ("LE", 2),
        ("PO", 1), ("SO", 1), ("KS", 1), ("NP", 1), ("VR", 1), ("JA", 1), ("PI", 1),
        ("ZA", 1), ("KI", 1), ("BO", 1), ("SD", 1)]  # fmt: skip
CONF = {"O": "0", "0": "O", "I": "1", "1": "I", "B": "8", "8": "B", "S": "5", "5": "S",
        "Z": "2", "2": "Z", "G": "6", "6": "G"}  # fmt: skip
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def make_plates(n: int, rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    codes = [c for c, _ in CITY]
    weights = [w for _, w in CITY]
    plates: list[str] = []
    countries: list[str] = []
    formats: list[str] = []
    seen: set[str] = set()
    while len(plates) < n:
        r = rng.random()
        if r < 0.75:
            digits = rng.choice((3, 3, 3, 4))
            p = (
                rng.choices(codes, weights)[0]
                + "".join(rng.choices("0123456789", k=digits))
                + "".join(rng.choices(LETTERS, k=2))
            )
            country, fmt = "RS", "rs"
        elif r < 0.85:  # Croatia: ZG 1234-AB
            p = (
                rng.choice(("ZG", "ST", "RI", "OS"))
                + "".join(rng.choices("0123456789", k=rng.choice((3, 4))))
                + "".join(rng.choices(LETTERS, k=2))
            )
            country, fmt = "HR", "hr"
        elif r < 0.93:  # Germany: M AB 1234
            p = (
                rng.choice(("M", "B", "HH", "K", "S", "F"))
                + "".join(rng.choices(LETTERS, k=rng.choice((1, 2))))
                + "".join(rng.choices("0123456789", k=rng.choice((2, 3, 4))))
            )
            country, fmt = "DE", "de"
        else:  # Hungary: ABC123 / AA BB 123
            p = "".join(rng.choices(LETTERS, k=3)) + "".join(rng.choices("0123456789", k=3))
            country, fmt = "HU", "hu"
        if p in seen:
            continue
        seen.add(p)
        plates.append(p)
        countries.append(country)
        formats.append(fmt)
    return plates, countries, formats


def noisy(p: str, rng: random.Random, kind: float) -> str:
    i = rng.randrange(len(p))
    if kind < 0.6:  # OCR confusion where possible
        spots = [j for j, c in enumerate(p) if c in CONF]
        if spots:
            j = rng.choice(spots)
            return p[:j] + CONF[p[j]] + p[j + 1 :]
    if kind < 0.8:
        return p[:i] + rng.choice(ALNUM) + p[i + 1 :]
    return p[:i] + p[i + 1 :] if len(p) > 4 else p


class Data:
    """The synthetic data set, generated once and streamed in chunks to each engine."""

    def __init__(self, n: int, seed: int = 4) -> None:
        t0 = time.monotonic()
        self.n = n
        rng = random.Random(seed)
        nrng = np.random.default_rng(seed)
        nv = max(1000, n // 15)
        self.plates, self.countries, self.formats = make_plates(nv, rng)
        w = (np.arange(nv) + 10.0) ** -0.8
        self.vehicle = nrng.choice(nv, size=n, p=w / w.sum()).astype(np.int32)
        cw = (np.arange(500) + 5.0) ** -0.5
        self.camera = nrng.choice(500, size=n, p=cw / cw.sum()).astype(np.int16)
        self.ts = np.sort(T_END - nrng.random(n) * 90 * DAY)
        self.noise = nrng.random(n)
        self.conf = 0.6 + 0.4 * nrng.random(n)
        self.direction = nrng.integers(0, 3, size=n).astype(np.int8)
        self.cameras = [f"cam-{i:03d}" for i in range(500)]
        self.rng = rng
        self.gen_s = time.monotonic() - t0

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        dirs = ("in", "out", None)
        rng = random.Random(7)
        for a in range(0, self.n, CHUNK):
            b = min(self.n, a + CHUNK)
            veh = self.vehicle[a:b].tolist()
            cam = self.camera[a:b].tolist()
            ts = self.ts[a:b].tolist()
            nz = self.noise[a:b].tolist()
            cf = self.conf[a:b].tolist()
            dr = self.direction[a:b].tolist()
            rows = []
            for i in range(b - a):
                v = veh[i]
                p = self.plates[v]
                if nz[i] < 0.05:
                    p = noisy(p, rng, nz[i] / 0.05)
                rows.append(
                    (
                        self.cameras[cam[i]],
                        ts[i],
                        p,
                        p,
                        self.countries[v],
                        self.formats[v],
                        round(cf[i], 3),
                        None,
                        None,
                        None,
                        None,
                        dirs[dr[i]],
                    )
                )
            yield rows


READS = cast(Table, PlateRead.__table__)


def _drop_indexes(db: Database) -> None:
    for ix in READS.indexes:
        ix.drop(db.engine)


def _create_indexes(db: Database) -> None:
    for ix in READS.indexes:
        ix.create(db.engine)


def load_sqlite(db: Database, data: Data) -> dict[str, Any]:
    t = time.monotonic()
    _drop_indexes(db)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        sql = f"INSERT INTO plate_reads ({COLS}) VALUES ({','.join('?' * 12)})"
        for rows in data.chunks():
            cur.executemany(sql, rows)
            raw.commit()
    finally:
        raw.close()
    t_rows = time.monotonic()
    _create_indexes(db)
    t_idx = time.monotonic()
    PlateStore(db, Path(".")).rebuild_vocabulary()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return {
        "insert_s": round(t_rows - t, 1),
        "index_s": round(t_idx - t_rows, 1),
        "vocabulary_s": round(time.monotonic() - t_idx, 1),
    }


def _tsv(v: Any) -> str:
    return "\\N" if v is None else str(v)


def load_postgres(db: Database, data: Data) -> dict[str, Any]:
    t = time.monotonic()
    _drop_indexes(db)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for rows in data.chunks():
            body = "".join("\t".join(map(_tsv, r)) + "\n" for r in rows)
            with cur.copy(f"COPY plate_reads ({COLS}) FROM STDIN") as cp:
                cp.write(body)
            raw.commit()
    finally:
        raw.close()
    t_rows = time.monotonic()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")
        for ix in READS.indexes:
            ix.create(conn)
    t_idx = time.monotonic()
    PlateStore(db, Path(".")).rebuild_vocabulary()
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return {
        "insert_s": round(t_rows - t, 1),
        "index_s": round(t_idx - t_rows, 1),
        "vocabulary_s": round(time.monotonic() - t_idx, 1),
    }


def queries(data: Data, n: int, seed: int = 11) -> dict[str, list[Any]]:
    rng = random.Random(seed)
    picks: list[str] = []
    for i in range(n):
        if i % 2:
            picks.append(data.plates[int(data.vehicle[rng.randrange(data.n)])])
        else:
            picks.append(rng.choice(data.plates))
    partial: list[str] = []
    for i, p in enumerate(picks):
        kind = i % 4
        if kind == 0:
            partial.append(p[:4] + "*")
        elif kind == 1:
            mid = max(0, len(p) // 2 - 1)
            partial.append("*" + p[mid : mid + 3] + "*")
        elif kind == 2:
            j = min(4, len(p) - 1)
            partial.append(p[:j] + "?" + p[j + 1 :])
        else:
            partial.append("*" + p[-3:])
    fuzzy = []
    for p in picks:
        j = rng.randrange(len(p))
        fuzzy.append(p[:j] + rng.choice(ALNUM) + p[j + 1 :])
    return {"exact": picks, "partial": partial, "fuzzy": fuzzy}


def measure(fn: Callable[[str], list[Any]], qs: list[str]) -> tuple[dict[str, float], float]:
    for q in qs[:5]:
        fn(q)  # warm-up
    times: list[float] = []
    found: list[int] = []
    for q in qs:
        t = time.perf_counter()
        found.append(len(fn(q)))
        times.append(time.perf_counter() - t)
    return summary_ms(times), statistics.fmean(found)


def run_engine(db: Database, data: Data, qs: dict[str, list[Any]]) -> dict[str, Any]:
    s = PlateSearch(db)
    f = PlateFilter(limit=50)
    out: dict[str, Any] = {}
    for name, fn, key in (
        ("exact", lambda q: s.exact(q, f), "exact"),
        ("partial", lambda q: s.partial(q, f), "partial"),
        ("fuzzy1", lambda q: s.fuzzy(q, 1, f), "fuzzy"),
        ("fuzzy2", lambda q: s.fuzzy(q, 2, f), "fuzzy"),
    ):
        stats, mean_hits = measure(fn, qs[key])
        out[name] = {**stats, "mean_results": round(mean_hits, 1)}
    # Filtered: one camera, a week (a typical investigation).
    week = PlateFilter(cameras=["cam-007"], start=T_END - 7 * DAY, end=T_END, limit=50)
    for name, fn, key in (
        ("fuzzy1_camera_week", lambda q: s.fuzzy(q, 1, week), "fuzzy"),
        ("partial_camera_week", lambda q: s.partial(q, week), "partial"),
        ("fuzzy2_camera_week", lambda q: s.fuzzy(q, 2, week), "fuzzy"),
    ):
        stats, mean_hits = measure(fn, qs[key])
        out[name] = {**stats, "mean_results": round(mean_hits, 1)}
    return out


def _reads_in(db: Database) -> int:
    from sqlalchemy import func, select

    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(PlateRead)) or 0)


def _db_size(db: Database, path: Path | None) -> dict[str, float]:
    """Database size in MiB: SQLite, the pages in use (the file less its free list, after a
    WAL checkpoint) and the largest tables with their indexes; PostgreSQL, the database and
    its largest tables with their indexes."""
    if path is not None:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
            size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
            rows = conn.exec_driver_sql(
                "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
                "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1 ORDER BY 2 DESC LIMIT 6"
            ).all()
        out = {
            "file_mib": round(path.stat().st_size / 2**20, 1),
            "database_mib": round((pages - free) * size / 2**20, 1),
        }
        out.update({f"{name}_mib": round(float(b) / 2**20, 1) for name, b in rows})
        return out
    with db.engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
        rows = conn.exec_driver_sql(
            "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC LIMIT 6"
        ).all()
    out = {"database_mib": round(float(total or 0) / 2**20, 1)}
    out.update({f"{name}_mib": round(float(size) / 2**20, 1) for name, size in rows})
    return out


def prepare(engine: str, db: Database, data: Data, work: Path, rebuild: bool) -> dict[str, Any]:
    """Load the reads (or reuse those already in `work`), then (re)build the search
    vocabulary when asked or when it is missing. Returns what was done and how long it took."""
    import json

    from sqlalchemy import func, select

    from citywatch.store.models import PlateText

    db.upgrade()
    stamp = work / f"load-{engine}.json"
    have = _reads_in(db)
    if have == data.n and stamp.exists():
        load: dict[str, Any] = {**json.loads(stamp.read_text()), "reused": True}
    else:
        if have:
            raise SystemExit(f"{engine}: {have:,} reads in {work}, not {data.n:,}: empty --dir")
        t = time.monotonic()
        load = (load_sqlite if engine == "sqlite" else load_postgres)(db, data)
        load["total_s"] = round(time.monotonic() - t, 1)
        load["reads_per_s"] = round(data.n / max(load["insert_s"], 1e-9))
        load["loadavg_after"] = loadavg()
        stamp.write_text(json.dumps(load))
        load = {**load, "reused": False}
        rebuild = False  # the load just built it
    with db.session() as s:
        vocab = int(s.scalar(select(func.count()).select_from(PlateText)) or 0)
    if rebuild or vocab == 0:
        t = time.monotonic()
        vocab = PlateStore(db, Path(".")).rebuild_vocabulary()
        _analyze(db, engine, rebuilt=True)
        load["vocabulary_rebuilt_s"] = round(time.monotonic() - t, 1)
    load["vocabulary"] = vocab
    return load


def _analyze(db: Database, engine: str, rebuilt: bool = False) -> None:
    if engine == "sqlite":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            if rebuilt:  # give back the space of the vocabulary rows it replaced
                auto.exec_driver_sql("VACUUM FULL plate_texts, plate_grams, plate_variants")
            auto.exec_driver_sql("VACUUM ANALYZE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reads", type=int, default=10_000_000)
    ap.add_argument("--engines", default="sqlite,postgres")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the databases go and are kept (default: a temporary directory, deleted); "
        "reads already loaded there (same --reads) are reused",
    )
    ap.add_argument(
        "--rebuild", action="store_true", help="rebuild the search vocabulary of reused reads"
    )
    args = ap.parse_args()

    info = machine()
    data = Data(args.reads)
    qs = queries(data, args.queries)
    # The generator's million plate strings would make every full garbage collection of the
    # search code (as in a server) scan them too: leave them out of the collector.
    gc.collect()
    gc.freeze()
    work = args.dir or Path(tempfile.mkdtemp(prefix="cw-plates-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "reads": args.reads,
        "vehicles": len(data.plates),
        "generate_s": round(data.gen_s, 1),
        "queries_per_kind": args.queries,
        "machine": info,
        "engines": {},
    }
    summary = [
        f"plate search on {args.reads:,} reads, {len(data.plates):,} vehicles, 500 cameras, "
        f"90 days (generated in {data.gen_s:.0f} s); {args.queries} queries per kind, limit 50"
    ]
    for engine in args.engines.split(","):
        pg = None
        path = None
        if engine == "sqlite":
            path = work / "plates.db"
            db = Database(f"sqlite:///{path}")
        else:
            from tests.support.postgres import EmbeddedPostgres

            pg = EmbeddedPostgres(work / "pg")
            url = pg.start()
            db = Database(url)
        try:
            load = prepare(engine, db, data, work, args.rebuild)
            size = _db_size(db, path)
            load_before = loadavg()
            figures = run_engine(db, data, qs)
            result["engines"][engine] = {
                "load": load,
                "size": size,
                "loadavg_queries": [load_before, loadavg()],
                **figures,
            }
            summary.append(f"{engine}: load {load}")
            summary.append(f"  size {size}; loadavg {load_before} -> {loadavg()}")
            for k, v in figures.items():
                summary.append(
                    f"  {k:20s} p50 {v['p50_ms']:7.1f} ms  p95 {v['p95_ms']:7.1f} ms  "
                    f"max {v['max_ms']:7.1f} ms  mean results {v['mean_results']}"
                )
        finally:
            db.dispose()
            if pg is not None:
                pg.stop()
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    summary.append(
        "command: nice -n 10 .venv/bin/python -m bench.plate_search "
        f"--reads {args.reads} --engines {args.engines} --queries {args.queries}"
        + (f" --dir {args.dir}" if args.dir else "")
        + (" --rebuild" if args.rebuild else "")
    )
    emit("plate_search", result, summary)


if __name__ == "__main__":
    main()
