"""Login, logout and who-am-I."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response

from citywatch.api.deps import COOKIE, Runtime, Who, client_of, token_of
from citywatch.api.problems import Problem
from citywatch.api.schemas import LoginRequest, LoginResponse, Me
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import ROLE_PERMISSIONS

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, request: Request, response: Response, cw: Runtime) -> LoginResponse:
    client = client_of(request)
    wait = cw.accounts.limiter.retry_after(body.username, client)
    if wait > 0:
        cw.audit.append(
            AuditRecord(
                actor=body.username,
                action="auth.login",
                outcome="rate_limited",
                client=client,
            )
        )
        raise Problem(
            429,
            "too many failed logins; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    user = cw.accounts.authenticate(body.username, body.password)
    if user is None:
        cw.accounts.limiter.failed(body.username, client)
        cw.audit.append(
            AuditRecord(actor=body.username, action="auth.login", outcome="denied", client=client)
        )
        raise Problem(401, "wrong username or password")
    cw.accounts.limiter.succeeded(body.username, client)
    token = cw.accounts.open_session(user, client)
    cw.audit.append(AuditRecord(actor=user.username, action="auth.login", client=client))
    max_age = int(cw.accounts.session_seconds)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=cw.settings.server.secure_cookies,
        path="/",
    )
    return LoginResponse(token=token, username=user.username, role=user.role, expires_in=max_age)


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, who: Who, cw: Runtime) -> None:
    token = token_of(request)
    if token:
        cw.accounts.close_session(token)
    response.delete_cookie(COOKIE, path="/")
    cw.audit.append(
        AuditRecord(actor=who.username, action="auth.logout", client=client_of(request))
    )


@router.get("/me", response_model=Me)
def me(who: Who) -> Me:
    return Me(
        username=who.username,
        role=who.role,
        camera_ids=sorted(who.camera_ids) if who.camera_ids is not None else None,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[who.role]),
    )
