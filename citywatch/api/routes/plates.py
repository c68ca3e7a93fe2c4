"""Plate search, vehicle trails, plate crops and hotlists.

Every search and trail states a purpose and leaves an audit entry with its query; every
change to a hotlist or its entries is audited with its actor. Admin and investigator only.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from citywatch.api.deps import Purpose, Runtime, client_of, require
from citywatch.api.problems import Problem
from citywatch.api.routes.recordings import parse_time
from citywatch.governance.accounts import Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import Permission as P
from citywatch.runtime import CityWatch
from citywatch.search.hotlists import HotlistError, HotlistService, NotFound
from citywatch.search.plates import (
    PlateFilter,
    PlateHit,
    PlateSearch,
    PlateStore,
    camera_scope,
    hits_for,
)
from citywatch.search.text import PlateTextError
from citywatch.store.models import Hotlist, HotlistEntry, PlateRead

router = APIRouter(tags=["plates"])

CanSearch = Annotated[Principal, require(P.SEARCH)]
Why = Annotated[Purpose, Depends()]
PLAYBACK_BEFORE_S = 5.0
PLAYBACK_AFTER_S = 10.0


@dataclass
class Services:
    search: PlateSearch
    store: PlateStore
    hotlists: HotlistService


_services: weakref.WeakKeyDictionary[CityWatch, Services] = weakref.WeakKeyDictionary()


def services(cw: CityWatch) -> Services:
    """The runtime's plate services (the runtime's own `hotlists` when it has one, so the
    read pipeline and the API share one in-memory hotlist index)."""
    svc = _services.get(cw)
    if svc is None:
        hot = getattr(cw, "hotlists", None)
        svc = Services(
            search=PlateSearch(cw.db),
            store=getattr(cw, "plate_store", None) or PlateStore(cw.db, cw.settings.data_dir),
            hotlists=hot if isinstance(hot, HotlistService) else HotlistService(cw.db, cw.audit),
        )
        _services[cw] = svc
    return svc


# -- search ---------------------------------------------------------------------------------
def _time(value: str | None, name: str) -> float | None:
    return None if value in (None, "") else parse_time(value, name)


def _cameras(who: Principal, camera: list[str] | None) -> list[str] | None:
    asked = [c for v in camera or [] for c in v.split(",") if c.strip()]
    return camera_scope(who.camera_ids, [c.strip() for c in asked] or None)


def read_out(request: Request, r: PlateRead) -> dict[str, Any]:
    start, end = r.ts - PLAYBACK_BEFORE_S, r.ts + PLAYBACK_AFTER_S
    return {
        "id": r.id,
        "camera_id": r.camera_id,
        "ts": r.ts,
        "text": r.text,
        "normalised": r.normalised,
        "country": r.country,
        "format": r.format,
        "confidence": round(r.confidence, 3),
        "direction": r.direction,
        "event_id": r.event_id,
        "track_id": r.track_id,
        "crop_url": str(request.url_for("plate_crop", read_id=r.id)) if r.crop else None,
        "snapshot_url": (
            str(request.url_for("plate_snapshot", read_id=r.id)) if r.snapshot else None
        ),
        "playback": {
            "camera_id": r.camera_id,
            "start": start,
            "end": end,
            "url": f"/api/v1/cameras/{r.camera_id}/playback.mp4?start={start}&end={end}",
        },
    }


def _hit_out(request: Request, h: PlateHit) -> dict[str, Any]:
    return {**read_out(request, h.read), "distance": h.distance, "match": h.match}


@router.get("/plates/search")
def search_plates(
    request: Request,
    who: CanSearch,
    cw: Runtime,
    why: Why,
    q: Annotated[str, Query(min_length=1, max_length=40, description="plate or pattern")],
    mode: Literal["exact", "partial", "fuzzy"] = "exact",
    edits: Annotated[float, Query(ge=0.5, le=2, description="fuzzy: max weighted edits")] = 1,
    camera: Annotated[list[str] | None, Query()] = None,
    start: str | None = None,
    end: str | None = None,
    direction: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """Exact, partial (`*12*`, `BG12?`) or fuzzy (OCR confusions cost half an edit)."""
    cams = _cameras(who, camera)
    t0, t1 = _time(start, "start"), _time(end, "end")
    try:
        f = PlateFilter(cams, t0, t1, direction or None, limit, offset)
        hits = hits_for(services(cw).search, mode, q, f, edits)
    except PlateTextError as e:
        raise Problem(422, f"q: {e}") from None
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="plate.search",
            target=q,
            purpose=why.text(),
            client=client_of(request),
            details={
                "q": q,
                "mode": mode,
                "edits": edits if mode == "fuzzy" else None,
                "cameras": camera,
                "start": t0,
                "end": t1,
                "direction": direction,
                "limit": limit,
                "offset": offset,
                "results": len(hits),
                "case_ref": why.case_ref,
            },
        )
    )
    return {
        "items": [_hit_out(request, h) for h in hits],
        "offset": offset,
        "limit": limit,
        "mode": mode,
    }


@router.get("/plates/trail")
def plate_trail(
    request: Request,
    who: CanSearch,
    cw: Runtime,
    why: Why,
    plate: Annotated[str, Query(min_length=1, max_length=40)],
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """Where this vehicle was: its sightings in time order, with camera map positions."""
    t0, t1 = _time(start, "start"), _time(end, "end")
    try:
        cams = None if who.camera_ids is None else sorted(who.camera_ids)
        points = services(cw).search.trail(plate, t0, t1, cams)
    except PlateTextError as e:
        raise Problem(422, f"plate: {e}") from None
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="plate.trail",
            target=plate,
            purpose=why.text(),
            client=client_of(request),
            details={
                "plate": plate,
                "start": t0,
                "end": t1,
                "results": len(points),
                "case_ref": why.case_ref,
            },
        )
    )
    return {
        "plate": plate,
        "points": [
            {
                **read_out(request, p.read),
                "camera_name": p.camera_name,
                "lat": p.lat,
                "lon": p.lon,
                "address": p.address,
            }
            for p in points
        ],
    }


def _read_file(cw: CityWatch, who: Principal, read_id: int, which: str) -> FileResponse:
    svc = services(cw)
    r = svc.store.get(read_id)
    if r is None or not who.may_see(r.camera_id):
        raise Problem(404, f"no plate read {read_id}")
    rel = r.crop if which == "crop" else r.snapshot
    if not rel:
        raise Problem(404, f"plate read {read_id} has no {which}")
    root = cw.settings.data_dir.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Problem(404, f"the {which} of plate read {read_id} is gone")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private"})


@router.get("/plates/reads/{read_id}/crop.jpg", name="plate_crop")
def plate_crop(read_id: int, who: CanSearch, cw: Runtime) -> FileResponse:
    return _read_file(cw, who, read_id, "crop")


@router.get("/plates/reads/{read_id}/snapshot.jpg", name="plate_snapshot")
def plate_snapshot(read_id: int, who: CanSearch, cw: Runtime) -> FileResponse:
    return _read_file(cw, who, read_id, "snapshot")


# -- hotlists -------------------------------------------------------------------------------
Priority = Literal["low", "normal", "high", "critical"]
When = float | str


class HotlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    owner: str | None = Field(default=None, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)
    legal_basis: str = Field(min_length=1, max_length=2000)
    priority: Priority = "normal"
    expires_at: When | None = None


class HotlistPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    owner: str | None = Field(default=None, min_length=1, max_length=100)
    reason: str | None = Field(default=None, min_length=1, max_length=2000)
    legal_basis: str | None = Field(default=None, min_length=1, max_length=2000)
    priority: Priority | None = None
    expires_at: When | None = None


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plate: str = Field(min_length=1, max_length=40)
    reason: str = Field(default="", max_length=2000)
    expires_at: When | None = None


def _when(value: When | None, name: str) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, float | int) else parse_time(value, name)


def hotlist_out(h: Hotlist, entries: list[HotlistEntry] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": h.id,
        "name": h.name,
        "owner": h.owner,
        "reason": h.reason,
        "legal_basis": h.legal_basis,
        "priority": h.priority,
        "expires_at": h.expires_at,
        "created_at": h.created_at,
        "created_by": h.created_by,
        "updated_at": h.updated_at,
    }
    if entries is not None:
        out["entries"] = [entry_out(e) for e in entries]
    return out


def entry_out(e: HotlistEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "hotlist_id": e.hotlist_id,
        "plate": e.plate,
        "reason": e.reason,
        "expires_at": e.expires_at,
        "created_at": e.created_at,
        "created_by": e.created_by,
    }


def _problem(e: Exception) -> Problem:
    if isinstance(e, NotFound):
        return Problem(404, str(e))
    return Problem(422, str(e))


@router.get("/hotlists")
def list_hotlists(who: CanSearch, cw: Runtime, include_expired: bool = True) -> dict[str, Any]:
    rows = services(cw).hotlists.lists(include_expired)
    return {"items": [hotlist_out(h) for h in rows], "total": len(rows)}


@router.post("/hotlists", status_code=201)
def create_hotlist(
    body: HotlistIn, request: Request, who: CanSearch, cw: Runtime
) -> dict[str, Any]:
    try:
        h = services(cw).hotlists.create_list(
            who.username,
            body.name,
            body.owner or who.username,
            body.reason,
            body.legal_basis,
            body.priority,
            _when(body.expires_at, "expires_at"),
            client=client_of(request),
        )
    except (HotlistError, NotFound) as e:
        raise _problem(e) from None
    return hotlist_out(h, [])


@router.get("/hotlists/{hotlist_id}")
def get_hotlist(hotlist_id: int, who: CanSearch, cw: Runtime) -> dict[str, Any]:
    svc = services(cw).hotlists
    try:
        return hotlist_out(svc.get(hotlist_id), svc.entries(hotlist_id))
    except NotFound as e:
        raise _problem(e) from None


@router.patch("/hotlists/{hotlist_id}")
def patch_hotlist(
    hotlist_id: int, body: HotlistPatch, request: Request, who: CanSearch, cw: Runtime
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "expires_at" in changes:
        changes["expires_at"] = _when(changes["expires_at"], "expires_at")
    for key in ("name", "owner", "reason", "legal_basis", "priority"):
        if key in changes and changes[key] is None:
            raise Problem(422, f"{key} cannot be null")
    if not changes:
        raise Problem(422, "nothing to change")
    try:
        h = services(cw).hotlists.update_list(
            who.username, hotlist_id, changes, client=client_of(request)
        )
    except (HotlistError, NotFound) as e:
        raise _problem(e) from None
    return hotlist_out(h)


@router.delete("/hotlists/{hotlist_id}", status_code=204)
def delete_hotlist(hotlist_id: int, request: Request, who: CanSearch, cw: Runtime) -> Response:
    try:
        services(cw).hotlists.delete_list(who.username, hotlist_id, client=client_of(request))
    except NotFound as e:
        raise _problem(e) from None
    return Response(status_code=204)


@router.post("/hotlists/{hotlist_id}/entries", status_code=201)
def add_entry(
    hotlist_id: int, body: EntryIn, request: Request, who: CanSearch, cw: Runtime
) -> dict[str, Any]:
    try:
        e = services(cw).hotlists.add_entry(
            who.username,
            hotlist_id,
            body.plate,
            body.reason,
            _when(body.expires_at, "expires_at"),
            client=client_of(request),
        )
    except (HotlistError, NotFound) as err:
        raise _problem(err) from None
    return entry_out(e)


@router.delete("/hotlists/{hotlist_id}/entries/{entry_id}", status_code=204)
def remove_entry(
    hotlist_id: int, entry_id: int, request: Request, who: CanSearch, cw: Runtime
) -> Response:
    try:
        services(cw).hotlists.remove_entry(
            who.username, hotlist_id, entry_id, client=client_of(request)
        )
    except NotFound as e:
        raise _problem(e) from None
    return Response(status_code=204)
