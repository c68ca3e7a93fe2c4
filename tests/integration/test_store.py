"""The store on both databases: migrations, audit chain, accounts, segment index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, inspect, select, update

from citywatch.governance.accounts import AccountError, Accounts
from citywatch.governance.audit import AuditLog, AuditRecord, entry_hash
from citywatch.recording.index import SegmentIndex
from citywatch.recording.segmenter import SegmentInfo
from citywatch.store.db import Database
from citywatch.store.models import AuditEntry


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


def test_migrations_create_every_table_and_are_idempotent(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"cameras", "segments", "users", "auth_sessions", "audit_log"} <= tables
    db.upgrade()  # a second run is a no-op
    if not db.is_postgres:
        with db.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(AuditRecord(actor=f"user{i % 3}", action="test.action", target=f"t{i}"))


def test_audit_chain_verifies(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 20)
    result = log.verify()
    assert result.ok and result.entries == 20
    rows, total = log.page(limit=5, actor="user1")
    assert total == 7 and len(rows) == 5 and rows[0].seq > rows[-1].seq


def test_audit_verify_detects_an_edited_row(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 10)
    with db.session() as s, s.begin():
        s.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(actor="someone-else"))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 4 and "altered" in result.problem


def test_audit_verify_detects_a_deleted_row(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 10)
    with db.session() as s, s.begin():
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 6))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 6 and "missing" in result.problem


def test_audit_verify_detects_a_deleted_tail_only_by_head_hash(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 5)
    head = log.verify().head_hash
    with db.session() as s, s.begin():
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    # A truncated tail is a valid chain; the recorded head hash shows it.
    assert log.verify().head_hash != head


def test_audit_verify_detects_an_inserted_row(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 10)
    with db.session() as s, s.begin():
        # Make room at seq 5 and forge an entry with a correct-looking own hash.
        for seq in range(10, 4, -1):
            s.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(seq=seq + 1))
        prev = s.scalar(select(AuditEntry.hash).where(AuditEntry.seq == 4))
        assert prev is not None
        ts = time.time()
        forged = AuditEntry(
            seq=5, ts=ts, actor="intruder", action="recording.download", target="cam1",
            purpose="", outcome="ok", client="", details={}, prev_hash=prev,
        )  # fmt: skip
        forged.hash = entry_hash(5, ts, "intruder", "recording.download", "cam1", "", "ok", "",
                                 {}, prev)  # fmt: skip
        s.add(forged)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 6
    assert "inserted or removed" in result.problem


def test_accounts_sessions_and_limits(db: Database) -> None:
    acc = Accounts(db, session_hours=1)
    acc.create_user("inspector", "long enough password", "investigator", ["cam1"])
    with pytest.raises(AccountError, match="exists"):
        acc.create_user("inspector", "long enough password", "viewer")
    with pytest.raises(AccountError, match="at least"):
        acc.create_user("shorty", "short", "viewer")
    with pytest.raises(AccountError, match="unknown role"):
        acc.create_user("x-user", "long enough password", "superuser")
    assert acc.authenticate("inspector", "wrong password!") is None
    assert acc.authenticate("nobody", "long enough password") is None
    user = acc.authenticate("inspector", "long enough password")
    assert user is not None and user.password_hash.startswith("$argon2")
    token = acc.open_session(user, "127.0.0.1")
    who = acc.resolve(token)
    assert who is not None and who.role == "investigator"
    assert who.may_see("cam1") and not who.may_see("cam2")
    acc.set_password("inspector", "another long password")
    assert acc.resolve(token) is None  # a password change ends sessions
    token = acc.open_session(user, "127.0.0.1")
    acc.update_user("inspector", disabled=True)
    assert acc.resolve(token) is None
    assert acc.authenticate("inspector", "another long password") is None


def test_expired_sessions_are_refused_and_purged(db: Database) -> None:
    acc = Accounts(db, session_hours=-1 / 3600)  # already expired when issued
    user = acc.create_user("temp", "long enough password", "viewer")
    token = acc.open_session(user, "")
    assert acc.resolve(token) is None
    assert acc.purge_expired() == 1


def test_segment_index_ranges_and_gaps(db: Database, tmp_path: Path) -> None:
    idx = SegmentIndex(db, tmp_path)
    t = 1_800_000_000.0
    for start in (0, 10, 20, 50, 60):  # offline from 30 to 50
        p = tmp_path / "cam1" / f"{start}.mp4"
        idx.add(SegmentInfo("cam1", p, t + start, t + start + 10, 1000, "h264", 640, 360, [0.0]))
    idx.add(SegmentInfo("cam2", tmp_path / "cam2/x.mp4", t, t + 10, 5, "h264", 1, 1, [0.0]))
    got = idx.range("cam1", t + 15, t + 55)
    assert [s.start_ts - t for s in got] == [10, 20, 50]
    assert got[0].path == "cam1/10.mp4"
    gaps = idx.gaps("cam1", t, t + 80)
    assert [(g.start_ts - t, g.end_ts - t) for g in gaps] == [(30, 50), (70, 80)]
    rows, total = idx.page("cam1", t, t + 100, offset=1, limit=2)
    assert total == 5 and [s.start_ts - t for s in rows] == [10, 20]
    assert idx.usage() == {"cam1": (5, 5000), "cam2": (1, 5)}
    idx.remove([got[0].id])
    assert len(idx.range("cam1", t, t + 100)) == 4
