"""The audit log, for auditors and admins. Reading it is itself logged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from citywatch.api.deps import Runtime, client_of, require
from citywatch.api.schemas import AuditOut, Page, VerifyOut
from citywatch.governance.accounts import Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import Permission as P

router = APIRouter(prefix="/audit", tags=["audit"])
CanAudit = Annotated[Principal, require(P.AUDIT_READ)]


@router.get("", response_model=Page[AuditOut])
def read_audit(
    request: Request,
    who: CanAudit,
    cw: Runtime,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: str | None = None,
    actor: str | None = None,
) -> Page[AuditOut]:
    """Newest first."""
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="audit.read",
            client=client_of(request),
            details={"offset": offset, "limit": limit, "action": action, "actor": actor},
        )
    )
    rows, total = cw.audit.page(offset=offset, limit=limit, action=action, actor=actor)
    items = [
        AuditOut(
            seq=r.seq,
            ts=r.ts,
            actor=r.actor,
            action=r.action,
            target=r.target,
            purpose=r.purpose,
            outcome=r.outcome,
            client=r.client,
            details=r.details,
            hash=r.hash,
        )
        for r in rows
    ]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.post("/verify", response_model=VerifyOut)
async def verify(request: Request, who: CanAudit, cw: Runtime) -> VerifyOut:
    result = await run_in_threadpool(cw.audit.verify)
    await run_in_threadpool(
        cw.audit.append,
        AuditRecord(
            actor=who.username,
            action="audit.verify",
            outcome="ok" if result.ok else "broken",
            client=client_of(request),
            details={"entries": result.entries, "first_bad_seq": result.first_bad_seq},
        ),
    )
    return VerifyOut(
        ok=result.ok,
        entries=result.entries,
        head_hash=result.head_hash,
        first_bad_seq=result.first_bad_seq,
        problem=result.problem,
    )
