"""Cameras: list, detail with health, add/update/remove. Passwords never leave the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from citywatch.api.deps import Runtime, check_camera, client_of, require
from citywatch.api.problems import Problem
from citywatch.api.schemas import CameraIn, CameraOut, Page, StreamOut
from citywatch.cameras.registry import to_config
from citywatch.config import CameraConfig, CameraRetention, Location, redact_url
from citywatch.governance.accounts import Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import Permission as P
from citywatch.store.models import Camera

router = APIRouter(prefix="/cameras", tags=["cameras"])

CanRead = Annotated[Principal, require(P.CAMERA_READ)]
CanManage = Annotated[Principal, require(P.CAMERA_MANAGE)]


def _stream(url: str | None, user: str | None, password: str | None) -> StreamOut | None:
    if url is None:
        return None
    return StreamOut(url=redact_url(url), username=user, has_password=password is not None)


def camera_out(cw: Runtime, row: Camera) -> CameraOut:
    main = _stream(row.main_url, row.main_username, row.main_password)
    assert main is not None
    return CameraOut(
        id=row.id,
        name=row.name,
        location=Location(lat=row.lat, lon=row.lon, address=row.address),
        main_stream=main,
        sub_stream=_stream(row.sub_url, row.sub_username, row.sub_password),
        purpose=row.purpose,
        legal_basis=row.legal_basis,
        enabled=row.enabled,
        source=row.source,
        retention=CameraRetention(max_age_hours=row.max_age_hours, quota_gb=row.quota_gb),
        analytics=to_config(row).analytics,
        health=cw.cameras.health(row.id).as_dict(),
    )


def _changes(cfg: CameraConfig) -> dict[str, object]:
    """What an audit entry records of a camera: everything but secrets."""
    data = cfg.model_dump(mode="json")
    for key in ("main_stream", "sub_stream"):
        stream = data.get(key)
        if stream:
            stream["url"] = redact_url(stream["url"])
            stream["password"] = "***" if stream.get("password") else None
    return data


@router.get("", response_model=Page[CameraOut])
def list_cameras(
    who: CanRead,
    cw: Runtime,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[CameraOut]:
    rows = [r for r in cw.cameras.all() if who.may_see(r.id)]
    return Page(
        items=[camera_out(cw, r) for r in rows[offset : offset + limit]],
        total=len(rows),
        offset=offset,
        limit=limit,
    )


@router.get("/{camera_id}", response_model=CameraOut)
def get_camera(camera_id: str, who: CanRead, cw: Runtime) -> CameraOut:
    check_camera(who, camera_id)
    row = cw.cameras.get(camera_id)
    if row is None:
        raise Problem(404, f"no camera {camera_id!r}")
    return camera_out(cw, row)


@router.get("/{camera_id}/health")
def camera_health(camera_id: str, who: CanRead, cw: Runtime) -> dict[str, object]:
    check_camera(who, camera_id)
    if cw.cameras.get(camera_id) is None:
        raise Problem(404, f"no camera {camera_id!r}")
    return cw.cameras.health(camera_id).as_dict()


@router.post("", response_model=CameraOut, status_code=201)
def add_camera(body: CameraIn, request: Request, who: CanManage, cw: Runtime) -> CameraOut:
    try:
        cfg = CameraConfig.model_validate(body.model_dump())
    except ValueError as exc:
        raise Problem(422, str(exc)) from None
    if cw.cameras.get(cfg.id) is not None:
        raise Problem(409, f"camera {cfg.id!r} exists; use PUT to change it")
    row, _ = cw.cameras.upsert(cfg, source="api")
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="camera.add",
            target=cfg.id,
            client=client_of(request),
            details=_changes(cfg),
        )
    )
    return camera_out(cw, row)


@router.put("/{camera_id}", response_model=CameraOut)
def update_camera(
    camera_id: str, body: CameraIn, request: Request, who: CanManage, cw: Runtime
) -> CameraOut:
    if body.id != camera_id:
        raise Problem(422, "id in the body must match the URL")
    old = cw.cameras.get(camera_id)
    if old is None:
        raise Problem(404, f"no camera {camera_id!r}")
    data = body.model_dump()
    # An omitted password keeps the stored one, so clients never need to know it.
    for key, pw in (("main_stream", old.main_password), ("sub_stream", old.sub_password)):
        if data.get(key) and data[key].get("password") is None:
            data[key]["password"] = pw
    try:
        cfg = CameraConfig.model_validate(data)
    except ValueError as exc:
        raise Problem(422, str(exc)) from None
    row, _ = cw.cameras.upsert(cfg, source="api")
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="camera.update",
            target=camera_id,
            client=client_of(request),
            details={"before": _changes(to_config(old)), "after": _changes(cfg)},
        )
    )
    return camera_out(cw, row)


@router.delete("/{camera_id}", status_code=204)
def remove_camera(camera_id: str, request: Request, who: CanManage, cw: Runtime) -> Response:
    if not cw.cameras.remove(camera_id):
        raise Problem(404, f"no camera {camera_id!r}")
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="camera.remove",
            target=camera_id,
            client=client_of(request),
            details={"recordings": "kept until retention removes them"},
        )
    )
    return Response(status_code=204)
