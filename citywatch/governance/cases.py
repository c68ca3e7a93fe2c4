"""Cases: investigations that hold evidence past ordinary retention.

A plate read, an alert (a hotlist hit, a confirmed face match) or a face search attached to
an open case is kept while the case is open, whatever the retention of its data type says;
closing the case releases it to ordinary retention again. Opening, closing, attaching and
detaching are audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citywatch.governance.audit import AuditLog, AuditRecord
from citywatch.store.db import Database
from citywatch.store.models import Alert, Case, CaseItem, FaceSearch, PlateRead

# What can be attached, and the table each kind refers to.
KINDS: dict[str, Any] = {
    "plate_read": PlateRead,
    "alert": Alert,
    "face_search": FaceSearch,
}


class CaseError(ValueError):
    pass


class NotFound(LookupError):
    pass


def held(kind: str) -> Any:
    """A subquery of the ids of `kind` that open cases hold (for retention queries)."""
    return (
        select(CaseItem.ref_id)
        .join(Case, Case.id == CaseItem.case_id)
        .where(CaseItem.kind == kind, Case.closed_at.is_(None))
    )


def describe(case: Case, items: list[CaseItem] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": case.id,
        "reference": case.reference,
        "title": case.title,
        "created_by": case.created_by,
        "created_at": case.created_at,
        "closed_by": case.closed_by,
        "closed_at": case.closed_at,
        "open": case.closed_at is None,
    }
    if items is not None:
        out["items"] = [
            {
                "kind": i.kind,
                "ref_id": i.ref_id,
                "note": i.note,
                "added_by": i.added_by,
                "added_at": i.added_at,
            }
            for i in items
        ]
    return out


class CaseService:
    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], float] = time.time):
        self.db = db
        self.audit = audit
        self.clock = clock

    def open(self, actor: str, reference: str, title: str = "", client: str = "") -> Case:
        reference = (reference or "").strip()
        if not 2 <= len(reference) <= 100:
            raise CaseError("reference: 2 to 100 characters")
        row = Case(
            reference=reference, title=title.strip(), created_by=actor, created_at=self.clock()
        )
        try:
            with self.db.session() as s:
                s.add(row)
                s.commit()
        except IntegrityError:
            raise CaseError(f"a case {reference!r} exists already") from None
        self._audit(actor, "case.open", row, client, {"title": row.title})
        return row

    def get(self, case_id: int) -> tuple[Case, list[CaseItem]]:
        with self.db.session() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}")
            items = list(
                s.scalars(select(CaseItem).where(CaseItem.case_id == case_id).order_by(CaseItem.id))
            )
            return case, items

    def by_reference(self, reference: str) -> Case | None:
        with self.db.session() as s:
            return s.scalars(select(Case).where(Case.reference == reference.strip())).first()

    def all(self, include_closed: bool = True) -> list[Case]:
        with self.db.session() as s:
            q = select(Case).order_by(Case.id.desc())
            if not include_closed:
                q = q.where(Case.closed_at.is_(None))
            return list(s.scalars(q))

    def close(self, actor: str, case_id: int, client: str = "") -> Case:
        with self.db.session() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}")
            if case.closed_at is not None:
                raise CaseError(f"case {case.reference} is closed already")
            case.closed_by = actor
            case.closed_at = self.clock()
            s.commit()
        self._audit(actor, "case.close", case, client, {})
        return case

    def attach(
        self, actor: str, case_id: int, kind: str, ref_id: int, note: str = "", client: str = ""
    ) -> CaseItem:
        model = KINDS.get(kind)
        if model is None:
            raise CaseError(f"kind: one of {', '.join(KINDS)}, not {kind!r}")
        with self.db.session() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}")
            if case.closed_at is not None:
                raise CaseError(f"case {case.reference} is closed")
            target = s.get(model, ref_id)
            if target is None:
                raise NotFound(f"no {kind} {ref_id}")
            item = CaseItem(
                case_id=case_id,
                kind=kind,
                ref_id=ref_id,
                note=note.strip(),
                added_by=actor,
                added_at=self.clock(),
            )
            extra: list[CaseItem] = []
            # A hotlist hit holds the plate read it was raised for.
            if isinstance(target, Alert) and isinstance(target.details.get("read_id"), int):
                extra.append(
                    CaseItem(
                        case_id=case_id,
                        kind="plate_read",
                        ref_id=target.details["read_id"],
                        note=f"read of alert {ref_id}",
                        added_by=actor,
                        added_at=item.added_at,
                    )
                )
            s.add(item)
            try:
                s.commit()
            except IntegrityError:
                raise CaseError(f"{kind} {ref_id} is attached to this case already") from None
            for e in extra:
                try:
                    s.add(e)
                    s.commit()
                except IntegrityError:
                    s.rollback()
        self._audit(actor, "case.attach", case, client, {"kind": kind, "ref_id": ref_id})
        return item

    def detach(self, actor: str, case_id: int, kind: str, ref_id: int, client: str = "") -> None:
        with self.db.session() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}")
            item = s.scalars(
                select(CaseItem).where(
                    CaseItem.case_id == case_id, CaseItem.kind == kind, CaseItem.ref_id == ref_id
                )
            ).first()
            if item is None:
                raise NotFound(f"{kind} {ref_id} is not attached to case {case.reference}")
            s.delete(item)
            s.commit()
        self._audit(actor, "case.detach", case, client, {"kind": kind, "ref_id": ref_id})

    def is_held(self, kind: str, ref_id: int) -> bool:
        with self.db.session() as s:
            return (
                s.scalars(held(kind).where(CaseItem.ref_id == ref_id).limit(1)).first() is not None
            )

    def _audit(
        self, actor: str, action: str, case: Case, client: str, details: dict[str, Any]
    ) -> None:
        self.audit.append(
            AuditRecord(
                actor=actor,
                action=action,
                target=f"case:{case.reference}",
                client=client,
                details=details,
            )
        )
