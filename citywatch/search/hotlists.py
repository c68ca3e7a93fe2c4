"""Hotlists: named lists of wanted plates (exact or `*`/`?` patterns) with expiry.

Every create, change and delete of a list or an entry is an audit entry with its actor.
`check` runs on every plate read, so it answers from an in-memory index, rebuilt after each
change made through this object and reloaded at most every `refresh_s` seconds (changes
made by another process). It tolerates `tolerance` OCR confusions (O/0, I/1, B/8, S/5, Z/2,
G/6; 0 disables). Expired lists and entries never match, purged or not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select

from citywatch.governance.audit import AuditLog, AuditRecord
from citywatch.search.text import (
    PlateTextError,
    confusion_variants,
    normalise,
    parse_pattern,
    pattern_regex,
)
from citywatch.store.db import Database
from citywatch.store.models import Hotlist, HotlistEntry

PRIORITIES = ("low", "normal", "high", "critical")
LIST_FIELDS = ("name", "owner", "reason", "legal_basis", "priority", "expires_at")


class HotlistError(ValueError):
    """Invalid hotlist input (the message says why)."""


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class HotlistHit:
    hotlist_id: int
    hotlist_name: str
    priority: str
    entry_id: int
    plate: str  # the entry's plate or pattern
    read: str  # the text that was checked
    matched_as: str  # the text that matched (differs from `read` by `confusions` swaps)
    confusions: int
    reason: str


@dataclass(frozen=True)
class _Entry:
    hotlist_id: int
    hotlist_name: str
    priority: str
    entry_id: int
    plate: str
    reason: str
    expires_at: float | None  # the earlier of the entry's and the list's expiry


@dataclass
class _Index:
    exact: dict[str, list[_Entry]] = field(default_factory=dict)
    patterns: list[tuple[Any, _Entry]] = field(default_factory=list)
    loaded_at: float = 0.0


def _is_pattern(plate: str) -> bool:
    return "*" in plate or "?" in plate


def entry_plate(plate: str) -> str:
    """Normalise an entry's plate: exact text or a `*`/`?` pattern."""
    try:
        if _is_pattern(plate):
            return parse_pattern(plate)
        return normalise(plate)
    except PlateTextError as e:
        raise HotlistError(str(e)) from None


def _expiry(a: float | None, b: float | None) -> float | None:
    vals = [v for v in (a, b) if v is not None]
    return min(vals) if vals else None


class HotlistService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        tolerance: int = 1,
        refresh_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.audit = audit
        self.tolerance = tolerance
        self.refresh_s = refresh_s
        self.clock = clock
        self._index = _Index()
        self._lock = threading.Lock()

    # -- audit -----------------------------------------------------------------------------
    def _audit(
        self, actor: str, action: str, target: str, details: dict[str, Any], client: str = ""
    ) -> None:
        self.audit.append(
            AuditRecord(actor=actor, action=action, target=target, client=client, details=details)
        )

    # -- lists -----------------------------------------------------------------------------
    def create_list(
        self,
        actor: str,
        name: str,
        owner: str,
        reason: str,
        legal_basis: str,
        priority: str = "normal",
        expires_at: float | None = None,
        client: str = "",
    ) -> Hotlist:
        values = self._check_list(
            {
                "name": name,
                "owner": owner,
                "reason": reason,
                "legal_basis": legal_basis,
                "priority": priority,
                "expires_at": expires_at,
            }
        )
        now = self.clock()
        with self.db.session() as s, s.begin():
            if s.scalar(select(Hotlist.id).where(Hotlist.name == values["name"])) is not None:
                raise HotlistError(f"a hotlist named {values['name']!r} exists")
            row = Hotlist(**values, created_at=now, created_by=actor, updated_at=now)
            s.add(row)
            s.flush()
        self._audit(actor, "hotlist.create", f"hotlist:{row.id}", dict(values), client)
        self.invalidate()
        return row

    def _check_list(self, values: dict[str, Any]) -> dict[str, Any]:
        out = dict(values)
        for key in ("name", "owner", "reason", "legal_basis"):
            if key in out:
                out[key] = str(out[key]).strip()
                if not out[key]:
                    raise HotlistError(f"{key} must not be empty")
        if "priority" in out and out["priority"] not in PRIORITIES:
            raise HotlistError(f"priority must be one of {', '.join(PRIORITIES)}")
        return out

    def update_list(
        self, actor: str, hotlist_id: int, changes: dict[str, Any], client: str = ""
    ) -> Hotlist:
        unknown = set(changes) - set(LIST_FIELDS)
        if unknown:
            raise HotlistError(f"cannot change {', '.join(sorted(unknown))}")
        values = self._check_list(changes)
        with self.db.session() as s, s.begin():
            row = s.get(Hotlist, hotlist_id)
            if row is None:
                raise NotFound(f"no hotlist {hotlist_id}")
            if "name" in values and values["name"] != row.name:
                clash = s.scalar(select(Hotlist.id).where(Hotlist.name == values["name"]))
                if clash is not None:
                    raise HotlistError(f"a hotlist named {values['name']!r} exists")
            before = {k: getattr(row, k) for k in values}
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = self.clock()
        self._audit(
            actor,
            "hotlist.update",
            f"hotlist:{hotlist_id}",
            {"before": before, "after": values},
            client,
        )
        self.invalidate()
        return row

    def delete_list(self, actor: str, hotlist_id: int, client: str = "") -> None:
        with self.db.session() as s, s.begin():
            row = s.get(Hotlist, hotlist_id)
            if row is None:
                raise NotFound(f"no hotlist {hotlist_id}")
            n = len(
                s.scalars(select(HotlistEntry.id).where(HotlistEntry.hotlist_id == row.id)).all()
            )
            s.execute(delete(HotlistEntry).where(HotlistEntry.hotlist_id == row.id))
            s.delete(row)
            name = row.name
        self._audit(
            actor, "hotlist.delete", f"hotlist:{hotlist_id}", {"name": name, "entries": n}, client
        )
        self.invalidate()

    def lists(self, include_expired: bool = True) -> list[Hotlist]:
        with self.db.session() as s:
            q = select(Hotlist).order_by(Hotlist.id)
            if not include_expired:
                q = q.where(or_(Hotlist.expires_at.is_(None), Hotlist.expires_at > self.clock()))
            return list(s.scalars(q))

    def get(self, hotlist_id: int) -> Hotlist:
        with self.db.session() as s:
            row = s.get(Hotlist, hotlist_id)
        if row is None:
            raise NotFound(f"no hotlist {hotlist_id}")
        return row

    # -- entries ---------------------------------------------------------------------------
    def entries(self, hotlist_id: int) -> list[HotlistEntry]:
        self.get(hotlist_id)
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(HotlistEntry)
                    .where(HotlistEntry.hotlist_id == hotlist_id)
                    .order_by(HotlistEntry.id)
                )
            )

    def add_entry(
        self,
        actor: str,
        hotlist_id: int,
        plate: str,
        reason: str = "",
        expires_at: float | None = None,
        client: str = "",
    ) -> HotlistEntry:
        norm = entry_plate(plate)
        with self.db.session() as s, s.begin():
            if s.get(Hotlist, hotlist_id) is None:
                raise NotFound(f"no hotlist {hotlist_id}")
            row = HotlistEntry(
                hotlist_id=hotlist_id,
                plate=norm,
                reason=reason.strip(),
                expires_at=expires_at,
                created_at=self.clock(),
                created_by=actor,
            )
            s.add(row)
            s.flush()
        self._audit(
            actor,
            "hotlist.entry_add",
            f"hotlist:{hotlist_id}/entry:{row.id}",
            {"plate": norm, "reason": row.reason, "expires_at": expires_at},
            client,
        )
        self.invalidate()
        return row

    def remove_entry(self, actor: str, hotlist_id: int, entry_id: int, client: str = "") -> None:
        with self.db.session() as s, s.begin():
            row = s.get(HotlistEntry, entry_id)
            if row is None or row.hotlist_id != hotlist_id:
                raise NotFound(f"no entry {entry_id} in hotlist {hotlist_id}")
            plate = row.plate
            s.delete(row)
        self._audit(
            actor,
            "hotlist.entry_remove",
            f"hotlist:{hotlist_id}/entry:{entry_id}",
            {"plate": plate},
            client,
        )
        self.invalidate()

    def purge_expired(self, actor: str = "system") -> tuple[int, int]:
        """Delete expired lists (with their entries) and expired entries; one audit entry."""
        now = self.clock()
        with self.db.session() as s, s.begin():
            lists = list(
                s.scalars(
                    select(Hotlist.id).where(
                        Hotlist.expires_at.is_not(None), Hotlist.expires_at <= now
                    )
                )
            )
            gone_entries = list(
                s.scalars(
                    select(HotlistEntry.id).where(
                        or_(
                            HotlistEntry.hotlist_id.in_(lists),
                            (HotlistEntry.expires_at.is_not(None))
                            & (HotlistEntry.expires_at <= now),
                        )
                    )
                )
            )
            if gone_entries:
                s.execute(delete(HotlistEntry).where(HotlistEntry.id.in_(gone_entries)))
            if lists:
                s.execute(delete(Hotlist).where(Hotlist.id.in_(lists)))
        if lists or gone_entries:
            self._audit(
                actor,
                "hotlist.purge",
                "hotlists",
                {"lists": lists, "entries": gone_entries},
            )
            self.invalidate()
        return len(lists), len(gone_entries)

    # -- matching --------------------------------------------------------------------------
    def invalidate(self) -> None:
        with self._lock:
            self._index = _Index()

    def _load(self) -> _Index:
        idx = _Index(loaded_at=time.monotonic())
        with self.db.session() as s:
            rows = s.execute(
                select(HotlistEntry, Hotlist).join(Hotlist, Hotlist.id == HotlistEntry.hotlist_id)
            ).all()
        for e, h in rows:
            entry = _Entry(
                hotlist_id=h.id,
                hotlist_name=h.name,
                priority=h.priority,
                entry_id=e.id,
                plate=e.plate,
                reason=e.reason or h.reason,
                expires_at=_expiry(e.expires_at, h.expires_at),
            )
            if _is_pattern(e.plate):
                idx.patterns.append((pattern_regex(e.plate), entry))
            else:
                idx.exact.setdefault(e.plate, []).append(entry)
        return idx

    def _current(self) -> _Index:
        with self._lock:
            idx = self._index
            if not idx.loaded_at or time.monotonic() - idx.loaded_at > self.refresh_s:
                idx = self._index = self._load()
            return idx

    def check(self, text: str) -> list[HotlistHit]:
        """Hotlist entries this read matches, exact matches first."""
        try:
            norm = normalise(text)
        except PlateTextError:
            return []
        idx = self._current()
        now = self.clock()
        hits: dict[int, HotlistHit] = {}
        for variant, swaps in confusion_variants(norm, self.tolerance):
            for e in idx.exact.get(variant, ()):
                self._hit(hits, e, norm, variant, swaps, now)
            for rx, e in idx.patterns:
                if rx.fullmatch(variant):
                    self._hit(hits, e, norm, variant, swaps, now)
        return sorted(
            hits.values(),
            key=lambda h: (h.confusions, -PRIORITIES.index(h.priority), h.entry_id),
        )

    @staticmethod
    def _hit(
        hits: dict[int, HotlistHit], e: _Entry, norm: str, variant: str, swaps: int, now: float
    ) -> None:
        if e.expires_at is not None and e.expires_at <= now:
            return
        if e.entry_id in hits and hits[e.entry_id].confusions <= swaps:
            return
        hits[e.entry_id] = HotlistHit(
            hotlist_id=e.hotlist_id,
            hotlist_name=e.hotlist_name,
            priority=e.priority,
            entry_id=e.entry_id,
            plate=e.plate,
            read=norm,
            matched_as=variant,
            confusions=swaps,
            reason=e.reason,
        )
