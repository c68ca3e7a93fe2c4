"""Recorded video: segment lists, timelines with gaps, MP4 download and HLS playback.

Every playback and download states a purpose and leaves an audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from citywatch.api.deps import Purpose, Runtime, check_camera, client_of, require
from citywatch.api.problems import Problem
from citywatch.api.schemas import GapOut, Page, SegmentOut, Timeline
from citywatch.governance.accounts import Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.roles import Permission as P
from citywatch.governance.roles import has_permission
from citywatch.recording.playback import hls_playlist, init_and_media_ranges, stream_mp4
from citywatch.store.models import Segment

router = APIRouter(tags=["recordings"])

CanPlay = Annotated[Principal, require(P.PLAYBACK)]
CanExport = Annotated[Principal, require(P.EXPORT)]
CanRead = Annotated[Principal, require(P.CAMERA_READ)]
MAX_RANGE_S = 24 * 3600


def parse_time(value: str, name: str) -> float:
    """Epoch seconds or ISO 8601 (UTC when no offset is given)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(422, f"{name}: not a time (use ISO 8601 or epoch seconds)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


class TimeRange:
    def __init__(self, start: Annotated[str, Query()], end: Annotated[str, Query()]) -> None:
        self.start = parse_time(start, "start")
        self.end = parse_time(end, "end")
        if self.end <= self.start:
            raise Problem(422, "end must be after start")


Range = Annotated[TimeRange, Depends()]
Why = Annotated[Purpose, Depends()]


def _segment_out(s: Segment) -> SegmentOut:
    return SegmentOut(
        id=s.id,
        camera_id=s.camera_id,
        start_ts=s.start_ts,
        end_ts=s.end_ts,
        duration=s.duration,
        bytes=s.bytes,
        codec=s.codec,
        width=s.width,
        height=s.height,
    )


def _known(cw: Runtime, who: Principal, camera_id: str) -> None:
    check_camera(who, camera_id)
    if cw.cameras.get(camera_id) is None and not cw.index.has_camera(camera_id):
        raise Problem(404, f"no camera {camera_id!r}")


@router.get("/cameras/{camera_id}/segments", response_model=Page[SegmentOut])
def list_segments(
    camera_id: str,
    who: CanPlay,
    cw: Runtime,
    rng: Range,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[SegmentOut]:
    _known(cw, who, camera_id)
    rows, total = cw.index.page(camera_id, rng.start, rng.end, offset, limit)
    return Page(items=[_segment_out(s) for s in rows], total=total, offset=offset, limit=limit)


@router.get("/cameras/{camera_id}/timeline", response_model=Timeline)
def timeline(camera_id: str, who: CanRead, cw: Runtime, rng: Range) -> Timeline:
    """Where there is recording and where there are gaps (no footage shown)."""
    _known(cw, who, camera_id)
    recorded: list[GapOut] = []
    for seg in cw.index.range(camera_id, rng.start, rng.end):
        if recorded and seg.start_ts - recorded[-1].end_ts <= 1.0:
            recorded[-1].end_ts = max(recorded[-1].end_ts, seg.end_ts)
        else:
            recorded.append(GapOut(start_ts=seg.start_ts, end_ts=seg.end_ts))
    gaps = [
        GapOut(start_ts=g.start_ts, end_ts=g.end_ts)
        for g in cw.index.gaps(camera_id, rng.start, rng.end)
    ]
    return Timeline(
        camera_id=camera_id, start_ts=rng.start, end_ts=rng.end, recorded=recorded, gaps=gaps
    )


def _range_segments(cw: Runtime, camera_id: str, rng: TimeRange) -> list[Segment]:
    if rng.end - rng.start > MAX_RANGE_S:
        raise Problem(422, f"range longer than {MAX_RANGE_S // 3600} h; split the export")
    segments = cw.index.range(camera_id, rng.start, rng.end)
    if not segments:
        raise Problem(404, "no recording in that range")
    return segments


def _audit_view(
    cw: Runtime,
    who: Principal,
    request: Request,
    action: str,
    camera_id: str,
    rng: TimeRange,
    why: Purpose,
    segments: list[Segment],
) -> None:
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action=action,
            target=camera_id,
            purpose=why.text(),
            client=client_of(request),
            details={
                "start_ts": rng.start,
                "end_ts": rng.end,
                "segments": len(segments),
                "case_ref": why.case_ref,
            },
        )
    )


@router.get("/cameras/{camera_id}/playback.mp4")
def playback_mp4(
    camera_id: str,
    request: Request,
    who: CanPlay,
    cw: Runtime,
    rng: Range,
    why: Why,
    download: bool = False,
) -> StreamingResponse:
    """The range as one MP4, starting at the keyframe before `start`. `download=true` asks
    the browser to save it (an export, which needs the export permission)."""
    _known(cw, who, camera_id)
    if download and not has_permission(who.role, P.EXPORT):
        raise Problem(403, f"your role ({who.role}) may not export video")
    segments = _range_segments(cw, camera_id, rng)
    action = "recording.download" if download else "recording.playback"
    _audit_view(cw, who, request, action, camera_id, rng, why, segments)
    paths = [cw.index.abs(s) for s in segments]
    headers = {"Cache-Control": "no-store"}
    if download:
        stamp = datetime.fromtimestamp(rng.start, UTC).strftime("%Y%m%dT%H%M%SZ")
        headers["Content-Disposition"] = f'attachment; filename="{camera_id}-{stamp}.mp4"'
    return StreamingResponse(
        stream_mp4(segments, paths, rng.start, rng.end), media_type="video/mp4", headers=headers
    )


@router.get("/cameras/{camera_id}/playback.m3u8")
def playback_hls(
    camera_id: str, request: Request, who: CanPlay, cw: Runtime, rng: Range, why: Why
) -> Response:
    """An HLS VOD playlist over the recorded segments in the range, for timeline seeking."""
    _known(cw, who, camera_id)
    segments = _range_segments(cw, camera_id, rng)
    _audit_view(cw, who, request, "recording.playback_hls", camera_id, rng, why, segments)
    body = hls_playlist(
        segments,
        str(request.url_for("segment_root", segment_id=0)).replace("/segments/0", "/segments/{id}"),
    )
    return Response(
        body, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-store"}
    )


def _segment(cw: Runtime, who: Principal, segment_id: int) -> Segment:
    seg = cw.index.get(segment_id)
    if seg is None or not who.may_see(seg.camera_id):
        raise Problem(404, f"no segment {segment_id}")
    return seg


@router.get("/segments/{segment_id}", name="segment_root", response_model=SegmentOut)
def segment_info(segment_id: int, who: CanPlay, cw: Runtime) -> SegmentOut:
    return _segment_out(_segment(cw, who, segment_id))


def _segment_part(cw: Runtime, who: Principal, segment_id: int, part: str) -> bytes:
    """The init segment (ftyp+moov) or the media (the fragments after it) of a file."""
    path = cw.index.abs(_segment(cw, who, segment_id))
    init, size = init_and_media_ranges(path)
    start, stop = (0, init) if part == "init" else (init, size)
    with path.open("rb") as f:
        f.seek(start)
        return f.read(stop - start)


@router.get("/segments/{segment_id}/init.mp4")
def segment_init(segment_id: int, who: CanPlay, cw: Runtime) -> Response:
    data = _segment_part(cw, who, segment_id, "init")
    return Response(data, media_type="video/mp4", headers={"Cache-Control": "private"})


@router.get("/segments/{segment_id}/media.m4s")
def segment_media(segment_id: int, who: CanPlay, cw: Runtime) -> Response:
    data = _segment_part(cw, who, segment_id, "media")
    return Response(data, media_type="video/iso.segment", headers={"Cache-Control": "private"})


@router.get("/segments/{segment_id}/file.mp4")
def segment_file(segment_id: int, who: CanPlay, cw: Runtime) -> FileResponse:
    """The whole segment file (supports HTTP Range requests)."""
    seg = _segment(cw, who, segment_id)
    return FileResponse(cw.index.abs(seg), media_type="video/mp4")
