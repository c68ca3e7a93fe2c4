"""User administration (admins only). Every change is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from citywatch.api.deps import Runtime, client_of, require
from citywatch.api.problems import Problem
from citywatch.api.schemas import Page, UserIn, UserOut, UserPatch
from citywatch.governance.accounts import AccountError, Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import Permission as P
from citywatch.store.models import User

router = APIRouter(prefix="/users", tags=["users"])
CanManage = Annotated[Principal, require(P.USER_MANAGE)]


def _out(u: User) -> UserOut:
    return UserOut(
        username=u.username,
        role=u.role,
        camera_ids=u.camera_ids,
        disabled=u.disabled,
        created_at=u.created_at,
    )


@router.get("", response_model=Page[UserOut])
def list_users(who: CanManage, cw: Runtime, offset: int = 0, limit: int = 100) -> Page[UserOut]:
    users = cw.accounts.list_users()
    return Page(
        items=[_out(u) for u in users[offset : offset + limit]],
        total=len(users),
        offset=offset,
        limit=limit,
    )


@router.post("", response_model=UserOut, status_code=201)
def add_user(body: UserIn, request: Request, who: CanManage, cw: Runtime) -> UserOut:
    try:
        user = cw.accounts.create_user(body.username, body.password, body.role, body.camera_ids)
    except AccountError as exc:
        status = 409 if "exists" in str(exc) else 422
        raise Problem(status, str(exc)) from None
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="user.add",
            target=body.username,
            client=client_of(request),
            details={"role": body.role, "camera_ids": body.camera_ids},
        )
    )
    return _out(user)


@router.patch("/{username}", response_model=UserOut)
def change_user(
    username: str, body: UserPatch, request: Request, who: CanManage, cw: Runtime
) -> UserOut:
    cams: list[str] | None | bool = False
    if body.limit_cameras is False:
        cams = None
    elif body.limit_cameras or body.camera_ids is not None:
        cams = body.camera_ids or []
    try:
        user = cw.accounts.update_user(
            username, role=body.role, camera_ids=cams, disabled=body.disabled
        )
        if body.password is not None:
            cw.accounts.set_password(username, body.password)
    except AccountError as exc:
        raise Problem(404 if "no user" in str(exc) else 422, str(exc)) from None
    changes = body.model_dump(exclude_none=True)
    if "password" in changes:
        changes["password"] = "changed"
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="user.update",
            target=username,
            client=client_of(request),
            details=changes,
        )
    )
    return _out(user)


@router.delete("/{username}", status_code=204)
def delete_user(username: str, request: Request, who: CanManage, cw: Runtime) -> Response:
    if username == who.username:
        raise Problem(409, "you cannot delete your own account")
    try:
        cw.accounts.delete_user(username)
    except AccountError as exc:
        raise Problem(404, str(exc)) from None
    cw.audit.append(
        AuditRecord(
            actor=who.username, action="user.remove", target=username, client=client_of(request)
        )
    )
    return Response(status_code=204)
