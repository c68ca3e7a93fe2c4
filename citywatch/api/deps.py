"""Request dependencies: the runtime, the logged-in principal, permissions, purposes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, WebSocket

from citywatch.api.problems import Problem
from citywatch.governance.accounts import Principal
from citywatch.governance.roles import Permission, has_permission
from citywatch.runtime import CityWatch

COOKIE = "cw_session"


def runtime(request: Request) -> CityWatch:
    cw: CityWatch = request.app.state.cw
    return cw


def client_of(conn: Request | WebSocket) -> str:
    return conn.client.host if conn.client else ""


def token_of(conn: Request | WebSocket) -> str | None:
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return conn.cookies.get(COOKIE)


def principal(request: Request, cw: Annotated[CityWatch, Depends(runtime)]) -> Principal:
    token = token_of(request)
    who = cw.accounts.resolve(token) if token else None
    if who is None:
        raise Problem(401, "login required", headers={"WWW-Authenticate": "Bearer"})
    return who


def require(permission: Permission) -> Any:
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not has_permission(who.role, permission):
            raise Problem(403, f"your role ({who.role}) may not do this ({permission})")
        return who

    return Depends(check)


def check_camera(who: Principal, camera_id: str) -> None:
    if not who.may_see(camera_id):
        # 404, not 403: a camera-limited user learns nothing about other cameras.
        raise Problem(404, f"no camera {camera_id!r}")


class Purpose:
    """Why a recording is viewed or exported; required by law and kept in the audit log."""

    def __init__(
        self,
        purpose: Annotated[
            str,
            Query(min_length=3, max_length=500, description="Why you need this footage"),
        ],
        case_ref: Annotated[str | None, Query(max_length=100)] = None,
    ) -> None:
        self.purpose = purpose.strip()
        self.case_ref = case_ref
        if len(self.purpose) < 3:
            raise Problem(422, "purpose: state why you need this footage")

    def text(self) -> str:
        return f"{self.purpose} [case {self.case_ref}]" if self.case_ref else self.purpose


Runtime = Annotated[CityWatch, Depends(runtime)]
Who = Annotated[Principal, Depends(principal)]
