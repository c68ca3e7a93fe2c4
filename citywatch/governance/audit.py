"""Append-only, hash-chained audit log.

Each entry's hash covers its own fields and the previous entry's hash, so editing,
removing or inserting a row breaks the chain from that point on; `verify` names the
first entry where it breaks.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from citywatch.store.db import Database
from citywatch.store.models import AuditEntry

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    """What a caller asks to write; time, sequence and hashes are filled in on append."""

    actor: str
    action: str
    outcome: str = "ok"
    target: str = ""
    purpose: str = ""
    client: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def entry_hash(
    seq: int,
    ts: float,
    actor: str,
    action: str,
    target: str,
    purpose: str,
    outcome: str,
    client: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    body = json.dumps(
        [seq, repr(ts), actor, action, target, purpose, outcome, client, details, prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _hash_of(row: AuditEntry, prev_hash: str) -> str:
    return entry_hash(
        row.seq,
        row.ts,
        row.actor,
        row.action,
        row.target,
        row.purpose,
        row.outcome,
        row.client,
        row.details,
        prev_hash,
    )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""


class AuditLog:
    """Appends and verifies entries. Thread-safe in one process; on PostgreSQL an advisory
    lock serialises appends across processes too."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> AuditEntry:
        with self._lock, self._db.session() as s, s.begin():
            if self._db.is_postgres:
                s.execute(text("SELECT pg_advisory_xact_lock(724201)"))
            last = s.execute(
                select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
            ).first()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            row = AuditEntry(
                seq=seq,
                ts=time.time(),
                actor=record.actor,
                action=record.action,
                target=record.target,
                purpose=record.purpose,
                outcome=record.outcome,
                client=record.client,
                details=dict(record.details),
                prev_hash=prev,
            )
            row.hash = _hash_of(row, prev)
            s.add(row)
        return row

    def count(self) -> int:
        with self._db.session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)

    def page(
        self,
        *,
        offset: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor: str | None = None,
    ) -> tuple[list[AuditEntry], int]:
        with self._db.session() as s:
            q = select(AuditEntry)
            if action:
                q = q.where(AuditEntry.action == action)
            if actor:
                q = q.where(AuditEntry.actor == actor)
            total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
            rows = s.scalars(q.order_by(AuditEntry.seq.desc()).offset(offset).limit(limit))
            return list(rows), total

    def _iter_rows(self, s: Session, batch: int = 20_000) -> Iterator[AuditEntry]:
        after = 0
        while True:
            rows = list(
                s.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq > after)
                    .order_by(AuditEntry.seq)
                    .limit(batch)
                )
            )
            if not rows:
                return
            yield from rows
            after = rows[-1].seq
            s.expunge_all()

    def verify(self) -> VerifyResult:
        """Walk the whole chain; report the first entry that was altered, removed or inserted."""
        prev = GENESIS
        expected_seq = 1
        n = 0
        with self._db.session() as s:
            for row in self._iter_rows(s):
                n += 1
                if row.seq != expected_seq:
                    return VerifyResult(
                        False,
                        n,
                        prev,
                        expected_seq,
                        f"entry {expected_seq} is missing (removed); next entry is {row.seq}",
                    )
                if row.prev_hash != prev:
                    return VerifyResult(
                        False,
                        n,
                        prev,
                        row.seq,
                        f"entry {row.seq} does not follow entry {row.seq - 1}: "
                        "an entry was inserted or removed here",
                    )
                if _hash_of(row, prev) != row.hash:
                    return VerifyResult(
                        False, n, prev, row.seq, f"entry {row.seq} was altered (hash mismatch)"
                    )
                prev = row.hash
                expected_seq += 1
        return VerifyResult(True, n, prev)
