"""The segment index: which file holds which camera's video for which time.

Paths are stored relative to the recordings root, so a data directory can move.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from sqlalchemy import delete, func, select

from citywatch.recording.segmenter import SegmentInfo
from citywatch.store.db import Database
from citywatch.store.models import Segment

log = logging.getLogger(__name__)

# No segment is longer than this (segments are cut at the first keyframe after
# segment_seconds <= 300 s). It bounds range scans to the index entries that can overlap.
MAX_SEGMENT_SPAN_S = 3600.0


@dataclass(frozen=True)
class Gap:
    start_ts: float
    end_ts: float


def _overlaps(camera_id: str, start_ts: float, end_ts: float) -> tuple[Any, ...]:
    return (
        Segment.camera_id == camera_id,
        Segment.start_ts > start_ts - MAX_SEGMENT_SPAN_S,
        Segment.start_ts < end_ts,
        Segment.end_ts > start_ts,
    )


class SegmentIndex:
    def __init__(self, db: Database, root: Path) -> None:
        self._db = db
        self.root = root

    def rel(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.root.resolve()))

    def abs(self, segment: Segment) -> Path:
        return self.root / segment.path

    def add(self, info: SegmentInfo) -> Segment:
        row = Segment(
            camera_id=info.camera_id,
            start_ts=info.start_ts,
            end_ts=info.end_ts,
            duration=info.duration,
            bytes=info.bytes,
            path=self.rel(info.path),
            codec=info.codec,
            width=info.width,
            height=info.height,
            keyframes=[round(k, 4) for k in info.keyframes],
        )
        with self._db.session() as s, s.begin():
            s.add(row)
        return row

    def get(self, segment_id: int) -> Segment | None:
        with self._db.session() as s:
            return s.get(Segment, segment_id)

    def range(self, camera_id: str, start_ts: float, end_ts: float) -> list[Segment]:
        """Segments of a camera that overlap [start_ts, end_ts), in time order."""
        with self._db.session() as s:
            q = (
                select(Segment)
                .where(*_overlaps(camera_id, start_ts, end_ts))
                .order_by(Segment.start_ts)
            )
            return list(s.scalars(q))

    def page(
        self, camera_id: str, start_ts: float, end_ts: float, offset: int, limit: int
    ) -> tuple[list[Segment], int]:
        with self._db.session() as s:
            cond = _overlaps(camera_id, start_ts, end_ts)
            total = int(s.scalar(select(func.count()).select_from(Segment).where(*cond)) or 0)
            rows = s.scalars(
                select(Segment).where(*cond).order_by(Segment.start_ts).offset(offset).limit(limit)
            )
            return list(rows), total

    def has_camera(self, camera_id: str) -> bool:
        """Whether any recording of this camera is indexed (it may have been removed)."""
        with self._db.session() as s:
            q = select(Segment.id).where(Segment.camera_id == camera_id).limit(1)
            return s.scalar(q) is not None

    def gaps(
        self, camera_id: str, start_ts: float, end_ts: float, tolerance_s: float = 1.0
    ) -> list[Gap]:
        """Stretches of [start_ts, end_ts) with no recording (camera offline, say)."""
        gaps: list[Gap] = []
        cursor = start_ts
        for seg in self.range(camera_id, start_ts, end_ts):
            if seg.start_ts - cursor > tolerance_s:
                gaps.append(Gap(cursor, seg.start_ts))
            cursor = max(cursor, seg.end_ts)
        if end_ts - cursor > tolerance_s:
            gaps.append(Gap(cursor, end_ts))
        return gaps

    def all_ordered(self, camera_id: str | None = None) -> list[Segment]:
        with self._db.session() as s:
            q = select(Segment).order_by(Segment.start_ts)
            if camera_id is not None:
                q = q.where(Segment.camera_id == camera_id)
            return list(s.scalars(q))

    def usage(self) -> dict[str, tuple[int, int]]:
        """camera -> (segments, bytes)."""
        with self._db.session() as s:
            rows = s.execute(
                select(Segment.camera_id, func.count(), func.sum(Segment.bytes)).group_by(
                    Segment.camera_id
                )
            )
            return {cam: (int(n), int(b or 0)) for cam, n, b in rows}

    def remove(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        with self._db.session() as s, s.begin():
            for i in range(0, len(ids), 500):
                s.execute(delete(Segment).where(Segment.id.in_(ids[i : i + 500])))

    def known_paths(self) -> set[str]:
        with self._db.session() as s:
            return set(s.scalars(select(Segment.path)))


def probe_segment(path: Path, camera_id: str, start_ts: float) -> SegmentInfo | None:
    """Read a finished segment file back; None if it holds no decodable video."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            v: Any = c.streams.video[0]
            tb = v.time_base
            first: int | None = None
            end = 0
            keys: list[float] = []
            for p in c.demux(v):
                if p.dts is None and p.pts is None:
                    continue
                if p.is_corrupt:  # truncated or damaged: the file does not play whole
                    return None
                ts = p.dts if p.dts is not None else p.pts
                if first is None:
                    if not p.is_keyframe:
                        return None
                    first = ts
                if p.is_keyframe:
                    keys.append(float((ts - first) * tb))
                end = max(end, ts + int(p.duration or 0))
            if first is None or end <= first:
                return None
            ctx = v.codec_context
            duration = float((end - first) * tb)
            codec, width, height = str(ctx.name), int(ctx.width or 0), int(ctx.height or 0)
        with av.open(str(path)) as c:  # it must decode, not only parse
            next(c.decode(video=0))
        return SegmentInfo(
            camera_id,
            path,
            start_ts,
            start_ts + duration,
            path.stat().st_size,
            codec,
            width,
            height,
            keys,
        )
    except (av.FFmpegError, OSError, StopIteration) as exc:
        log.warning("cannot read segment %s: %s", path, exc)
        return None
