"""Analytics for people: events with snapshots, alerts pushed live, zone and line counts,
live track overlays, and the zone/line editor's read and write."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import String, cast, func, or_, select

from citywatch.api.deps import Runtime, check_camera, client_of, require, token_of
from citywatch.api.problems import Problem
from citywatch.api.routes.recordings import parse_time
from citywatch.api.schemas import Page
from citywatch.api.ws import ThreadFeed
from citywatch.cameras.registry import to_config
from citywatch.config import AnalyticsConfig, LineConfig, ZoneConfig
from citywatch.events.service import event_dict
from citywatch.governance.accounts import Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import Permission as P
from citywatch.governance.roles import has_permission
from citywatch.runtime import CityWatch
from citywatch.store.models import Alert, Event, ZoneCount

router = APIRouter(tags=["analytics"])
CanRead = Annotated[Principal, require(P.CAMERA_READ)]
CanLive = Annotated[Principal, require(P.LIVE_VIEW)]
CanManage = Annotated[Principal, require(P.CAMERA_MANAGE)]
MAX_QUEUE = 500


class EventOut(BaseModel):
    id: int
    camera_id: str
    track_id: int
    class_name: str = Field(alias="class")
    start_ts: float
    end_ts: float | None
    max_confidence: float
    zones: list[str]
    crossings: list[dict[str, Any]]
    box: list[float]
    stationary: bool
    has_snapshot: bool
    path: list[list[float]] = Field(default_factory=list)
    playback: str = ""

    model_config = ConfigDict(populate_by_name=True)


class AlertOut(BaseModel):
    id: int
    ts: float
    rule: str
    priority: str
    camera_id: str
    event_id: int | None
    kind: str
    details: dict[str, Any]
    acknowledged_by: str | None
    acknowledged_at: float | None
    # the same fields as the WebSocket's alert messages, at the top level
    class_name: str | None = Field(default=None, alias="class")
    zone: str | None = None
    direction: str | None = None

    model_config = ConfigDict(populate_by_name=True)

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        d = a.details or {}
        return cls.model_validate(
            {
                "id": a.id,
                "ts": a.ts,
                "rule": a.rule,
                "priority": a.priority,
                "camera_id": a.camera_id,
                "event_id": a.event_id,
                "kind": a.kind,
                "details": d,
                "acknowledged_by": a.acknowledged_by,
                "acknowledged_at": a.acknowledged_at,
                "class": d.get("class"),
                "zone": d.get("zone"),
                "direction": d.get("direction"),
            }
        )


class ZonesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)
    motion_mask: list[list[tuple[float, float]]] | None = None


def _event_out(e: Event, with_path: bool = False) -> EventOut:
    data = event_dict(e)
    data["class_name"] = data.pop("class")
    start = e.start_ts - 2
    end = (e.end_ts or e.start_ts) + 2
    data["playback"] = f"/api/v1/cameras/{e.camera_id}/playback.mp4?start={start:.3f}&end={end:.3f}"
    if with_path:
        data["path"] = e.path
    return EventOut.model_validate(data)


def _visible(who: Principal) -> list[str] | None:
    if who.camera_ids is None:
        return None
    return sorted(who.camera_ids)


@router.get("/events", response_model=Page[EventOut], response_model_by_alias=True)
def list_events(
    who: CanRead,
    cw: Runtime,
    camera: str | None = None,
    class_name: Annotated[str | None, Query(alias="class")] = None,
    zone: str | None = None,
    start: str | None = None,
    end: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[EventOut]:
    """Newest first. `zone` matches events that entered that zone or crossed that line;
    `start`/`end` match events that overlap the range."""
    q = select(Event)
    if camera is not None:
        check_camera(who, camera)
        q = q.where(Event.camera_id == camera)
    elif (cams := _visible(who)) is not None:
        q = q.where(Event.camera_id.in_(cams))
    if class_name:
        q = q.where(Event.class_name == class_name)
    if start:
        t0 = parse_time(start, "start")
        q = q.where(or_(Event.end_ts.is_(None), Event.end_ts >= t0))
    if end:
        q = q.where(Event.start_ts < parse_time(end, "end"))
    if zone:
        # A cheap pre-filter on the JSON text in SQL; the exact test below.
        needle = f"%{json.dumps(zone)}%"
        q = q.where(
            or_(cast(Event.zones, String).like(needle), cast(Event.crossings, String).like(needle))
        )
    q = q.order_by(Event.start_ts.desc())
    with cw.db.session() as s:
        if not zone:
            total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
            rows = list(s.scalars(q.offset(offset).limit(limit)))
        else:
            found = [
                e
                for e in s.scalars(q)
                if zone in e.zones or any(c["line"] == zone for c in e.crossings)
            ]
            total, rows = len(found), found[offset : offset + limit]
    return Page(items=[_event_out(e) for e in rows], total=total, offset=offset, limit=limit)


def _event(cw: CityWatch, who: Principal, event_id: int) -> Event:
    with cw.db.session() as s:
        e = s.get(Event, event_id)
    if e is None or not who.may_see(e.camera_id):
        raise Problem(404, f"no event {event_id}")
    return e


@router.get("/events/{event_id}", response_model=EventOut, response_model_by_alias=True)
def get_event(event_id: int, who: CanRead, cw: Runtime) -> EventOut:
    return _event_out(_event(cw, who, event_id), with_path=True)


@router.get("/events/{event_id}/snapshot.jpg")
def event_snapshot(
    event_id: int, request: Request, who: CanLive, cw: Runtime, full: bool = False
) -> FileResponse:
    """The best picture of the object (`full=true`: the whole frame at that moment)."""
    e = _event(cw, who, event_id)
    rel = e.frame if full else e.snapshot
    if rel is None or not (cw.snapshots_dir / rel).is_file():
        raise Problem(404, "no snapshot for this event")
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="event.snapshot",
            target=f"{e.camera_id}/event/{event_id}",
            client=client_of(request),
        )
    )
    return FileResponse(cw.snapshots_dir / rel, media_type="image/jpeg")


@router.get("/alerts", response_model=Page[AlertOut], response_model_by_alias=True)
def list_alerts(
    who: CanLive,
    cw: Runtime,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    unacknowledged: bool = False,
) -> Page[AlertOut]:
    q = select(Alert)
    if (cams := _visible(who)) is not None:
        q = q.where(Alert.camera_id.in_(cams))
    if unacknowledged:
        q = q.where(Alert.acknowledged_at.is_(None))
    with cw.db.session() as s:
        total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
        rows = list(s.scalars(q.order_by(Alert.ts.desc()).offset(offset).limit(limit)))
    items = [AlertOut.of(r) for r in rows]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, response_model_by_alias=True)
def acknowledge(alert_id: int, request: Request, who: CanLive, cw: Runtime) -> AlertOut:
    with cw.db.session() as s, s.begin():
        a = s.get(Alert, alert_id)
        if a is None or not who.may_see(a.camera_id):
            raise Problem(404, f"no alert {alert_id}")
        if a.acknowledged_at is None:
            a.acknowledged_by, a.acknowledged_at = who.username, time.time()
        out = AlertOut.of(a)
    cw.audit.append(
        AuditRecord(
            actor=who.username, action="alert.ack", target=str(alert_id), client=client_of(request)
        )
    )
    return out


@router.get("/cameras/{camera_id}/counts")
def counts(
    camera_id: str,
    who: CanRead,
    cw: Runtime,
    start: str,
    end: str,
    bucket_s: Annotated[int, Query(ge=60, le=86400)] = 3600,
) -> dict[str, Any]:
    """Zone entries, dwell alarms and line crossings (per direction) over time, per class."""
    check_camera(who, camera_id)
    t0, t1 = parse_time(start, "start"), parse_time(end, "end")
    with cw.db.session() as s:
        rows = list(
            s.scalars(
                select(ZoneCount).where(
                    ZoneCount.camera_id == camera_id,
                    ZoneCount.minute >= int(t0 // 60),
                    ZoneCount.minute < int(t1 // 60) + 1,
                )
            )
        )
    series: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r.name}:{r.kind}"
        entry = series.setdefault(
            key, {"name": r.name, "kind": r.kind, "total": 0, "by_class": {}, "buckets": {}}
        )
        bucket = int(r.minute * 60 // bucket_s * bucket_s)
        entry["total"] += r.count
        entry["by_class"][r.class_name] = entry["by_class"].get(r.class_name, 0) + r.count
        entry["buckets"][bucket] = entry["buckets"].get(bucket, 0) + r.count
    for entry in series.values():
        entry["buckets"] = [[k, v] for k, v in sorted(entry["buckets"].items())]
    return {"camera_id": camera_id, "bucket_s": bucket_s, "series": sorted(
        series.values(), key=lambda e: (e["name"], e["kind"])
    )}  # fmt: skip


@router.get("/cameras/{camera_id}/analytics", response_model=AnalyticsConfig)
def get_analytics(camera_id: str, who: CanRead, cw: Runtime) -> AnalyticsConfig:
    check_camera(who, camera_id)
    row = cw.cameras.get(camera_id)
    if row is None:
        raise Problem(404, f"no camera {camera_id!r}")
    return to_config(row).analytics


@router.get("/cameras/{camera_id}/analytics/status")
def analytics_status(camera_id: str, who: CanRead, cw: Runtime) -> dict[str, Any]:
    check_camera(who, camera_id)
    st = cw.analytics.status.get(camera_id)
    return st.__dict__ if st is not None else {"camera_id": camera_id, "state": "off"}


@router.put("/cameras/{camera_id}/analytics", response_model=AnalyticsConfig)
def put_analytics(
    camera_id: str, body: AnalyticsConfig, request: Request, who: CanManage, cw: Runtime
) -> AnalyticsConfig:
    """Replace the camera's analytics settings (zones, lines, thresholds, ...)."""
    return _save_analytics(cw, who, request, camera_id, body)


@router.put("/cameras/{camera_id}/zones", response_model=AnalyticsConfig)
def put_zones(
    camera_id: str, body: ZonesIn, request: Request, who: CanManage, cw: Runtime
) -> AnalyticsConfig:
    """The zone editor's save: zones, lines and (optionally) the motion mask."""
    row = cw.cameras.get(camera_id)
    if row is None:
        raise Problem(404, f"no camera {camera_id!r}")
    current = to_config(row).analytics.model_dump()
    current["zones"] = [z.model_dump() for z in body.zones]
    current["lines"] = [ln.model_dump() for ln in body.lines]
    if body.motion_mask is not None:
        current["motion_mask"] = body.motion_mask
    try:
        cfg = AnalyticsConfig.model_validate(current)
    except ValidationError as exc:
        # The first error in words (e.g. duplicate names), not pydantic's dump of the input.
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise Problem(422, f"{where}: {msg}" if where else msg, title="Invalid request") from None
    return _save_analytics(cw, who, request, camera_id, cfg)


def _save_analytics(
    cw: CityWatch, who: Principal, request: Request, camera_id: str, cfg: AnalyticsConfig
) -> AnalyticsConfig:
    row = cw.cameras.get(camera_id)
    if row is None:
        raise Problem(404, f"no camera {camera_id!r}")
    cam = to_config(row).model_copy(update={"analytics": cfg})
    cw.cameras.upsert(cam, source=row.source)
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="camera.analytics",
            target=camera_id,
            client=client_of(request),
            details=cfg.model_dump(mode="json"),
        )
    )
    return cfg


@router.websocket("/live")
async def live_events(websocket: WebSocket, types: str = "alert,event.start,event.end") -> None:
    """The command centre's feed: JSON messages (alerts, events, zone hits and, when asked
    with types=tracks&camera=ID, the live boxes of a camera for the overlay)."""
    cw: CityWatch = websocket.app.state.cw
    token = token_of(websocket)
    who = cw.accounts.resolve(token) if token else None
    if who is None:
        await websocket.close(code=4401, reason="login required")
        return
    if not has_permission(who.role, P.LIVE_VIEW):
        await websocket.close(code=4403, reason="not allowed")
        return
    wanted = {t for t in types.split(",") if t}
    if not has_permission(who.role, P.FACE_REVIEW):
        # Candidate face matches are for reviewers' eyes only.
        wanted = {t for t in wanted if not t.startswith("face.")}
    camera = websocket.query_params.get("camera")
    cameras: set[str] | None = set(who.camera_ids) if who.camera_ids is not None else None
    if camera is not None:
        if not who.may_see(camera):
            await websocket.close(code=4403, reason="not allowed")
            return
        cameras = {camera}
    await websocket.accept()
    out: ThreadFeed[dict[str, Any]] = ThreadFeed(MAX_QUEUE)
    sid = cw.hub.subscribe(out.put, wanted, cameras)  # put runs on the event service thread
    try:
        await out.serve(
            websocket, lambda item: websocket.send_text(json.dumps(item, separators=(",", ":")))
        )
    finally:
        cw.hub.unsubscribe(sid)
