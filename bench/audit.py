"""Audit log: AuditLog.append rate (1 and 2 threads) and AuditLog.verify time for 1M entries.

Appends go through the real ``AuditLog`` on SQLite (WAL, synchronous=NORMAL, as
``citywatch.store.db`` configures it), each in its own transaction, as the API does.
Side by side, the same rows without the hash chain: plain sqlite3 INSERT + commit per row
(the database floor) and a SQLAlchemy ORM insert per transaction (same stack, no
last-row SELECT, no hashing).

For verify, a valid chain of N entries is generated fast (hashes from
``citywatch.governance.audit.entry_hash``, rows inserted with ``executemany``), then
``AuditLog.verify()`` is timed, and the ``citywatch audit verify`` command too. Side by
side: the same chain walk with plain sqlite3 (no ORM).

    .venv/bin/python -m bench.audit --appends 5000 --verify-entries 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, REPO, WindowMeter, emit, machine

COLUMNS = "seq, ts, actor, action, target, purpose, outcome, client, details, prev_hash, hash"


def new_db(path: Path) -> Any:
    from citywatch.store.db import Database

    db = Database(f"sqlite:///{path}")
    db.upgrade()
    return db


def record(rng: random.Random, i: int) -> Any:
    """A realistic entry: a playback with purpose, case reference and range."""
    from citywatch.governance.audit import AuditRecord

    start = 1_790_000_000 + rng.random() * 86400
    return AuditRecord(
        actor=f"investigator{i % 7}",
        action="recording.playback",
        target=f"cam{i % 16:02d}",
        purpose="Incident review: collision at Main St / 5th Ave [case 2026-0417]",
        client=f"10.20.{i % 250}.{(i * 7) % 250}",
        details={
            "start_ts": start,
            "end_ts": start + 300,
            "segments": 31,
            "case_ref": "2026-0417",
        },
    )


def cpu_s() -> float:
    return time.process_time()


# appends ------------------------------------------------------------------------------------
def bench_appends(work: Path, n: int, threads: int) -> dict[str, Any]:
    from citywatch.governance.audit import AuditLog

    db = new_db(work / f"append-{threads}t.db")
    log = AuditLog(db)
    recs = [record(random.Random(i), i) for i in range(n)]
    per = n // threads
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for r in recs[k * per : (k + 1) * per]:
                log.append(r)
        except BaseException as exc:
            errors.append(exc)

    ths = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    meter = WindowMeter()
    c0, t0 = cpu_s(), time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    win = meter.stop()
    if errors:
        raise errors[0]
    done = per * threads
    ok = log.verify()
    db.dispose()
    return {
        "threads": threads,
        "appends": done,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "appends_per_s": round(done / wall, 1),
        "appends_per_cpu_s": round(done / cpu, 1) if cpu else None,
        "us_per_append_cpu": round(cpu / done * 1e6, 1),
        "chain_ok": ok.ok and ok.entries == done,
        "machine_window": win.as_dict(cpu),
    }


def rows_for(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """N valid chained rows, as tuples in COLUMNS order (details JSON-encoded the way
    SQLAlchemy's JSON type stores it)."""
    from citywatch.governance.audit import GENESIS, entry_hash

    rng = random.Random(seed)
    prev = GENESIS
    ts = 1_780_000_000.0
    out: list[tuple[Any, ...]] = []
    for seq in range(1, n + 1):
        r = record(rng, seq)
        ts += rng.random() * 0.5
        h = entry_hash(
            seq,
            ts,
            r.actor,
            r.action,
            r.target,
            r.purpose,
            r.outcome,
            r.client,
            r.details,
            prev,
        )
        out.append(
            (
                seq,
                ts,
                r.actor,
                r.action,
                r.target,
                r.purpose,
                r.outcome,
                r.client,
                json.dumps(r.details),
                prev,
                h,
            )
        )
        prev = h
    return out


def sqlite_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def bench_plain_insert(work: Path, n: int) -> dict[str, Any]:
    """Baseline: the same rows, plain sqlite3 INSERT, one transaction per row, no hashing
    at insert time (hashes precomputed) and no last-row lookup."""
    db = new_db(work / "plain.db")
    db.dispose()
    rows = rows_for(n, seed=11)
    con = sqlite_connect(work / "plain.db")
    sql = f"INSERT INTO audit_log ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    c0, t0 = cpu_s(), time.perf_counter()
    for row in rows:
        con.execute("BEGIN")
        con.execute(sql, row)
        con.execute("COMMIT")
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    con.close()
    return {
        "what": "sqlite3 INSERT + COMMIT per row, no hashing, no SELECT of the last entry",
        "appends": n,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "appends_per_s": round(n / wall, 1),
        "us_per_append_cpu": round(cpu / n * 1e6, 1),
    }


def bench_orm_insert(work: Path, n: int) -> dict[str, Any]:
    """Baseline: SQLAlchemy ORM insert per transaction (the stack AuditLog uses), with
    precomputed hashes: no last-row SELECT, no hashing."""
    from citywatch.store.models import AuditEntry

    db = new_db(work / "orm.db")
    rows = rows_for(n, seed=13)
    names = [c.strip() for c in COLUMNS.split(",")]
    dicts = []
    for row in rows:
        d = dict(zip(names, row, strict=True))
        d["details"] = json.loads(d["details"])
        dicts.append(d)
    c0, t0 = cpu_s(), time.perf_counter()
    for d in dicts:
        with db.session() as s, s.begin():
            s.add(AuditEntry(**d))
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    db.dispose()
    return {
        "what": "SQLAlchemy ORM add + commit per row, no hashing, no SELECT of the last entry",
        "appends": n,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "appends_per_s": round(n / wall, 1),
        "us_per_append_cpu": round(cpu / n * 1e6, 1),
    }


def bench_hash_only(n: int) -> dict[str, Any]:
    """CPU of entry_hash alone (records prepared beforehand)."""
    from citywatch.governance.audit import GENESIS, entry_hash

    recs = [record(random.Random(i), i) for i in range(n)]
    c0 = cpu_s()
    for i, r in enumerate(recs, 1):
        entry_hash(
            i,
            1_780_000_000.0 + i,
            r.actor,
            r.action,
            r.target,
            r.purpose,
            r.outcome,
            r.client,
            r.details,
            GENESIS,
        )
    cpu = cpu_s() - c0
    return {"entries": n, "cpu_s": round(cpu, 3), "us_per_entry": round(cpu / n * 1e6, 2)}


# verify -------------------------------------------------------------------------------------
def build_chain(path: Path, n: int, batch: int = 50_000) -> dict[str, Any]:
    db = new_db(path)
    db.dispose()
    con = sqlite_connect(path)
    sql = f"INSERT INTO audit_log ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    from citywatch.governance.audit import GENESIS, entry_hash

    t0 = time.perf_counter()
    rng = random.Random(23)
    prev = GENESIS
    ts = 1_760_000_000.0
    seq = 0
    while seq < n:
        chunk: list[tuple[Any, ...]] = []
        for _ in range(min(batch, n - seq)):
            seq += 1
            r = record(rng, seq)
            ts += rng.random() * 2
            h = entry_hash(
                seq,
                ts,
                r.actor,
                r.action,
                r.target,
                r.purpose,
                r.outcome,
                r.client,
                r.details,
                prev,
            )
            chunk.append(
                (
                    seq,
                    ts,
                    r.actor,
                    r.action,
                    r.target,
                    r.purpose,
                    r.outcome,
                    r.client,
                    json.dumps(r.details),
                    prev,
                    h,
                )
            )
            prev = h
        con.execute("BEGIN")
        con.executemany(sql, chunk)
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return {
        "entries": n,
        "build_s": round(time.perf_counter() - t0, 1),
        "db_mb": round(path.stat().st_size / 2**20, 1),
        "head_hash": prev,
    }


def verify_plain(path: Path) -> tuple[bool, int, str]:
    """The same chain walk with sqlite3 rows instead of ORM objects."""
    from citywatch.governance.audit import GENESIS, entry_hash

    con = sqlite3.connect(path)
    prev, expected, n = GENESIS, 1, 0
    try:
        cur = con.execute(f"SELECT {COLUMNS} FROM audit_log ORDER BY seq")
        while True:
            rows = cur.fetchmany(20_000)
            if not rows:
                break
            for seq, ts, actor, action, target, purpose, outcome, client, det, ph, h in rows:
                n += 1
                if seq != expected or ph != prev:
                    return False, n, prev
                calc = entry_hash(
                    seq, ts, actor, action, target, purpose, outcome, client, json.loads(det), prev
                )
                if calc != h:
                    return False, n, prev
                prev = h
                expected += 1
    finally:
        con.close()
    return True, n, prev


def bench_verify(work: Path, n: int, cli: bool) -> dict[str, Any]:
    from citywatch.governance.audit import AuditLog

    data = work / "verify-data"
    data.mkdir()
    path = data / "citywatch.db"
    out: dict[str, Any] = {"build": build_chain(path, n)}
    print(f"  chain built: {out['build']}", flush=True)

    db = new_db(path)
    log = AuditLog(db)
    meter = WindowMeter()
    c0, t0 = cpu_s(), time.perf_counter()
    res = log.verify()
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    win = meter.stop()
    db.dispose()
    out["auditlog_verify"] = {
        "ok": res.ok,
        "entries": res.entries,
        "head_matches": res.head_hash == out["build"]["head_hash"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "entries_per_s": round(res.entries / wall),
        "machine_window": win.as_dict(cpu),
    }
    print(f"  AuditLog.verify: {out['auditlog_verify']}", flush=True)

    c0, t0 = cpu_s(), time.perf_counter()
    ok, entries, head = verify_plain(path)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    out["plain_sqlite3_verify"] = {
        "ok": ok,
        "entries": entries,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "entries_per_s": round(entries / wall),
    }
    print(f"  plain sqlite3 walk: {out['plain_sqlite3_verify']}", flush=True)

    if cli:
        exe = REPO / ".venv" / "bin" / "citywatch"
        t0 = time.perf_counter()
        before = os.times()
        proc = subprocess.run(
            [str(exe), "audit", "verify", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            cwd=work,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},  # the code under test, not the venv's
        )
        after = os.times()
        wall = time.perf_counter() - t0
        child_cpu = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        out["cli_audit_verify"] = {
            "command": "citywatch audit verify --data-dir DIR",
            "rc": proc.returncode,
            "stdout": proc.stdout.strip()[:200],
            "wall_s": round(wall, 2),
            "cpu_s": round(child_cpu, 2),
        }
        print(f"  CLI: {out['cli_audit_verify']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--appends", type=int, default=5000, help="appends per append test")
    ap.add_argument("--verify-entries", type=int, default=1_000_000)
    ap.add_argument("--no-cli", action="store_true", help="skip `citywatch audit verify`")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)

    mach = machine()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="audit-", dir=OUT))
    result: dict[str, Any] = {
        "benchmark": "audit",
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": mach,
    }
    try:
        result["append_1_thread"] = bench_appends(work, args.appends, 1)
        print(f"  1 thread: {result['append_1_thread']}", flush=True)
        result["append_2_threads"] = bench_appends(work, args.appends, 2)
        print(f"  2 threads: {result['append_2_threads']}", flush=True)
        result["baseline_plain_insert"] = bench_plain_insert(work, args.appends)
        result["baseline_orm_insert"] = bench_orm_insert(work, args.appends)
        result["entry_hash_only"] = bench_hash_only(min(args.appends * 10, 100_000))
        if args.verify_entries > 0:
            result["verify"] = bench_verify(work, args.verify_entries, not args.no_cli)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    a1, a2 = result["append_1_thread"], result["append_2_threads"]
    p, o = result["baseline_plain_insert"], result["baseline_orm_insert"]
    summary = [
        f"machine: {mach['nproc']} x {mach['cpu_model']}, {mach['ram_gib']} GiB, "
        f"load {mach['loadavg']}",
        "appends (one transaction each, SQLite WAL):   per wall s   CPU us each",
        f"  AuditLog.append, 1 thread              {a1['appends_per_s']:10.1f}   "
        f"{a1['us_per_append_cpu']:8.1f}",
        f"  AuditLog.append, 2 threads             {a2['appends_per_s']:10.1f}   "
        f"{a2['us_per_append_cpu']:8.1f}",
        f"  baseline ORM insert, no chain          {o['appends_per_s']:10.1f}   "
        f"{o['us_per_append_cpu']:8.1f}",
        f"  baseline sqlite3 INSERT, no chain      {p['appends_per_s']:10.1f}   "
        f"{p['us_per_append_cpu']:8.1f}",
        f"  entry_hash alone: {result['entry_hash_only']['us_per_entry']} us CPU per entry",
    ]
    if "verify" in result:
        v = result["verify"]
        av, pv = v["auditlog_verify"], v["plain_sqlite3_verify"]
        summary += [
            f"verify {v['build']['entries']} entries (DB {v['build']['db_mb']} MB, "
            f"built in {v['build']['build_s']} s):",
            f"  AuditLog.verify      {av['wall_s']:7.2f} s wall, {av['cpu_s']:7.2f} s CPU, "
            f"ok={av['ok']}",
            f"  plain sqlite3 walk   {pv['wall_s']:7.2f} s wall, {pv['cpu_s']:7.2f} s CPU, "
            f"ok={pv['ok']}",
        ]
        if "cli_audit_verify" in v:
            c = v["cli_audit_verify"]
            summary.append(
                f"  citywatch audit verify (CLI) {c['wall_s']} s wall, {c['cpu_s']} s CPU, "
                f"rc={c['rc']}"
            )
    emit("audit", result, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
