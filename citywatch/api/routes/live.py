"""Live view: fMP4 over WebSocket (Media Source Extensions), JPEG snapshots, MJPEG."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from citywatch.api.deps import Runtime, check_camera, client_of, require, token_of
from citywatch.api.problems import Problem
from citywatch.api.ws import ThreadFeed
from citywatch.governance.accounts import Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import Permission as P
from citywatch.governance.roles import has_permission
from citywatch.runtime import CityWatch

router = APIRouter(tags=["live"])
CanLive = Annotated[Principal, require(P.LIVE_VIEW)]
MAX_QUEUE = 300  # fragments; a viewer this far behind is disconnected, not buffered for


def _camera(cw: CityWatch, who: Principal, camera_id: str) -> None:
    check_camera(who, camera_id)
    if cw.cameras.get(camera_id) is None:
        raise Problem(404, f"no camera {camera_id!r}")


@router.get("/cameras/{camera_id}/snapshot.jpg")
async def snapshot(
    camera_id: str,
    request: Request,
    who: CanLive,
    cw: Runtime,
    width: Annotated[int | None, Query(ge=64, le=3840)] = None,
) -> Response:
    """The camera's latest keyframe as a JPEG."""
    _camera(cw, who, camera_id)
    shot = await run_in_threadpool(cw.cameras.feed(camera_id).snapshot_jpeg, width)
    if shot is None:
        raise Problem(503, "no frame from this camera yet", headers={"Retry-After": "2"})
    jpeg, when = shot
    await run_in_threadpool(
        cw.audit.append,
        AuditRecord(
            actor=who.username,
            action="live.snapshot",
            target=camera_id,
            client=client_of(request),
        ),
    )
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": "no-store", "X-Frame-Time": f"{when:.3f}"},
    )


@router.get("/cameras/{camera_id}/live.mjpeg")
async def mjpeg(
    camera_id: str,
    request: Request,
    who: CanLive,
    cw: Runtime,
    width: Annotated[int | None, Query(ge=64, le=3840)] = 640,
) -> StreamingResponse:
    """Fallback live view for clients without MSE: a JPEG at each new keyframe."""
    _camera(cw, who, camera_id)
    feed = cw.cameras.feed(camera_id)
    await run_in_threadpool(
        cw.audit.append,
        AuditRecord(
            actor=who.username,
            action="live.start",
            target=camera_id,
            client=client_of(request),
            details={"transport": "mjpeg"},
        ),
    )

    async def frames() -> AsyncIterator[bytes]:
        last = -1.0
        while not await request.is_disconnected():
            shot = await run_in_threadpool(feed.snapshot_jpeg, width)
            if shot is not None and shot[1] != last:
                jpeg, last = shot
                yield (
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(jpeg)).encode()
                    + b"\r\n\r\n"
                    + jpeg
                    + b"\r\n"
                )
            await asyncio.sleep(0.1)

    return StreamingResponse(
        frames(),
        media_type="multipart/x-mixed-replace; boundary=frame",
        headers={"Cache-Control": "no-store"},
    )


@router.websocket("/cameras/{camera_id}/live")
async def live_ws(websocket: WebSocket, camera_id: str) -> None:
    """fMP4 over WebSocket. First a JSON text message {"camera", "codec"}; then binary
    messages: the init segment (starts with an `ftyp` box; a new one means the stream
    restarted) and media fragments, one per frame."""
    cw: CityWatch = websocket.app.state.cw
    token = token_of(websocket)
    who = cw.accounts.resolve(token) if token else None
    if who is None:
        await websocket.close(code=4401, reason="login required")
        return
    if (
        not has_permission(who.role, P.LIVE_VIEW)
        or not who.may_see(camera_id)
        or cw.cameras.get(camera_id) is None
    ):
        await websocket.close(code=4403, reason="not allowed or no such camera")
        return
    await websocket.accept()
    client = client_of(websocket)
    await run_in_threadpool(
        cw.audit.append,
        AuditRecord(
            actor=who.username,
            action="live.start",
            target=camera_id,
            client=client,
            details={"transport": "websocket-fmp4"},
        ),
    )
    feed = cw.cameras.feed(camera_id)
    out: ThreadFeed[bytes] = ThreadFeed(MAX_QUEUE)
    sid, codec = feed.subscribe(out.put)  # put is called on the camera's worker thread
    try:
        await websocket.send_text(json.dumps({"camera": camera_id, "codec": codec}))
        await out.serve(websocket, websocket.send_bytes)
    finally:
        feed.unsubscribe(sid)
