"""Turns what the analysis workers report into stored events, counts and alerts, and
delivers them: to the command centre (hub), MQTT and webhooks.

One event per tracked object, linked to the recording by camera and time, with the best
snapshot (crop and full frame) on disk under `<data>/snapshots/<camera>/<date>/`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from citywatch.analytics.messages import (
    FrameResult,
    Message,
    PlateResult,
    Snapshot,
    TrackEnded,
    TrackStarted,
    ZoneHit,
)
from citywatch.config import AlertRule
from citywatch.events.hub import EventHub
from citywatch.events.rules import Happening, matching
from citywatch.search.hotlists import HotlistService
from citywatch.search.plates import PlateStore
from citywatch.store.db import Database
from citywatch.store.files import write_file
from citywatch.store.models import Alert, Event, ZoneCount
from citywatch.store.models import PlateRead as PlateReadRow

log = logging.getLogger(__name__)
PATH_POINTS = 60


class Publisher(Protocol):
    def publish(self, message: dict[str, Any]) -> None: ...


def event_dict(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "camera_id": e.camera_id,
        "track_id": e.track_id,
        "class": e.class_name,
        "start_ts": e.start_ts,
        "end_ts": e.end_ts,
        "max_confidence": round(e.max_confidence, 3),
        "zones": e.zones,
        "crossings": e.crossings,
        "box": e.box,
        "stationary": e.stationary,
        "has_snapshot": e.snapshot is not None,
    }


def _thin(path: Sequence[tuple[float, float, float]], n: int) -> list[list[float]]:
    if len(path) <= n:
        picked = list(path)
    else:
        step = (len(path) - 1) / (n - 1)
        picked = [path[round(i * step)] for i in range(n)]
    return [[round(t, 3), round(x, 4), round(y, 4)] for t, x, y in picked]


class EventService:
    def __init__(
        self,
        db: Database,
        snapshots: Path,
        rules: Callable[[], Sequence[AlertRule]],
        hub: EventHub,
        publishers: Sequence[Publisher] = (),
        plates: PlateStore | None = None,
        hotlists: HotlistService | None = None,
    ) -> None:
        self.db = db
        self.snapshots = snapshots
        self.plates = plates
        self.hotlists = hotlists
        self.rules = rules
        self.hub = hub
        self.publishers = list(publishers)
        self._open: dict[tuple[str, int], int] = {}  # (camera, track) -> event id
        self._lock = threading.Lock()
        self.alerts_raised = 0

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, msg: Message) -> None:
        if isinstance(msg, FrameResult):
            self.hub.publish(
                {
                    "type": "tracks",
                    "camera_id": msg.camera_id,
                    "ts": msg.ts,
                    "boxes": [
                        {
                            "id": b.track_id,
                            "class": b.class_name,
                            "confidence": round(b.confidence, 3),
                            "box": [round(v, 4) for v in b.box],
                            "stationary": b.stationary,
                        }
                        for b in msg.boxes
                    ],
                }
            )
        elif isinstance(msg, TrackStarted):
            self._started(msg)
        elif isinstance(msg, ZoneHit):
            self._zone(msg)
        elif isinstance(msg, Snapshot):
            self._snapshot(msg)
        elif isinstance(msg, PlateResult):
            self._plate(msg)
        elif isinstance(msg, TrackEnded):
            self._ended(msg)

    def deliver(self, message: dict[str, Any]) -> None:
        self.hub.publish(message)
        for p in self.publishers:
            try:
                p.publish(message)
            except Exception:
                log.exception("publishing %s failed", message.get("type"))

    # -- events --------------------------------------------------------------------------
    def _started(self, msg: TrackStarted) -> None:
        key = (msg.camera_id, msg.track_id)
        with self.db.session() as s, s.begin():
            event = None
            if msg.revived:
                # A parked object seen again: the same event goes on.
                event = s.scalar(
                    select(Event)
                    .where(Event.camera_id == msg.camera_id, Event.track_id == msg.track_id)
                    .order_by(Event.id.desc())
                    .limit(1)
                )
                if event is not None:
                    event.end_ts = None
            if event is None:
                event = Event(
                    camera_id=msg.camera_id,
                    track_id=msg.track_id,
                    class_name=msg.class_name,
                    start_ts=msg.ts,
                    max_confidence=msg.confidence,
                    zones=[],
                    crossings=[],
                    path=[],
                    box=list(msg.box),
                    stationary=False,
                )
                s.add(event)
            s.flush()
            data = event_dict(event)
        with self._lock:
            self._open[key] = data["id"]
        if not msg.revived:
            self.deliver({"type": "event.start", **data})
            self._check(Happening("object", msg.camera_id, msg.class_name, msg.ts), data["id"])

    def _event_id(self, camera_id: str, track_id: int) -> int | None:
        with self._lock:
            return self._open.get((camera_id, track_id))

    def _zone(self, msg: ZoneHit) -> None:
        ev = msg.event
        kind = ev.direction if ev.kind == "cross" and ev.direction else ev.kind
        self._count(msg.camera_id, ev.name, kind, ev.class_name, ev.ts)
        event_id = self._event_id(msg.camera_id, ev.track_id)
        class_name = ev.class_name
        if event_id is not None:
            with self.db.session() as s, s.begin():
                event = s.get(Event, event_id)
                if event is not None:
                    class_name = class_name or event.class_name
                    if ev.kind == "enter" and ev.name not in event.zones:
                        event.zones = [*event.zones, ev.name]
                    elif ev.kind == "cross":
                        event.crossings = [
                            *event.crossings,
                            {"line": ev.name, "direction": ev.direction, "ts": ev.ts},
                        ]
        self.hub.publish(
            {
                "type": "zone",
                "camera_id": msg.camera_id,
                "kind": ev.kind,
                "name": ev.name,
                "direction": ev.direction,
                "track_id": ev.track_id,
                "event_id": event_id,
                "class": class_name,
                "ts": ev.ts,
            }
        )
        if class_name:
            happening = Happening(ev.kind, msg.camera_id, class_name, ev.ts, ev.name, ev.direction)
            self._check(happening, event_id)

    def _count(self, camera_id: str, name: str, kind: str, class_name: str, ts: float) -> None:
        if kind == "leave":
            return
        values = {
            "camera_id": camera_id,
            "name": name,
            "kind": kind,
            "class_name": class_name or "",
            "minute": int(ts // 60),
            "count": 1,
        }
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        stmt = insert(ZoneCount).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["camera_id", "name", "kind", "class_name", "minute"],
            set_={"count": ZoneCount.count + 1},
        )
        with self.db.session() as s, s.begin():
            s.execute(stmt)

    def _snapshot(self, msg: Snapshot) -> None:
        event_id = self._event_id(msg.camera_id, msg.track_id)
        if event_id is None:
            return
        day = datetime.fromtimestamp(msg.ts, UTC).strftime("%Y-%m-%d")
        names = [
            write_file(self.snapshots, f"{msg.camera_id}/{day}/{event_id}-{suffix}.jpg", data)
            for suffix, data in (("crop", msg.crop_jpeg), ("frame", msg.frame_jpeg))
        ]
        with self.db.session() as s, s.begin():
            event = s.get(Event, event_id)
            if event is not None:
                event.snapshot, event.frame = names
                event.box = list(msg.box)

    def _ended(self, msg: TrackEnded) -> None:
        with self._lock:
            event_id = self._open.pop((msg.camera_id, msg.track_id), None)
        if event_id is None:
            return
        with self.db.session() as s, s.begin():
            event = s.get(Event, event_id)
            if event is None:
                return
            event.end_ts = msg.last_ts
            event.class_name = msg.class_name
            event.max_confidence = max(event.max_confidence, msg.max_confidence)
            event.stationary = msg.stationary
            event.path = _thin(msg.path, PATH_POINTS)
            data = event_dict(event)
        self.deliver({"type": "event.end", **data})

    # -- plates --------------------------------------------------------------------------
    def _plate(self, msg: PlateResult) -> None:
        """Store the read (crop under <data>/plates/), check it against the hotlists, and
        raise an alert per hit with the crop, the vehicle's event and a playback link."""
        if self.plates is None:
            return
        event_id = self._event_id(msg.camera_id, msg.track_id)
        crop_rel: str | None = None
        if msg.crop_jpeg:
            day = datetime.fromtimestamp(msg.ts, UTC).strftime("%Y-%m-%d")
            crop_rel = write_file(
                self.plates.data_dir,
                f"plates/{msg.camera_id}/{day}/{int(msg.ts * 1000)}-{msg.track_id}.jpg",
                msg.crop_jpeg,
            )
        snapshot = None
        if event_id is not None:
            with self.db.session() as s:
                event = s.get(Event, event_id)
                if event is not None and event.frame:
                    snapshot = str((self.snapshots / event.frame).relative_to(self.plates.data_dir))
        if snapshot is None and msg.frame_jpeg and crop_rel is not None:
            # A dedicated LPR camera has no vehicle event: keep the frame of the best read.
            snapshot = write_file(
                self.plates.data_dir, crop_rel.replace(".jpg", "-frame.jpg"), msg.frame_jpeg
            )
        row = self.plates.add(
            PlateReadRow(
                camera_id=msg.camera_id,
                ts=msg.ts,
                text=msg.text,
                normalised=msg.normalised,
                country=msg.country,
                format="" if msg.format == "unformatted" else msg.format,
                confidence=msg.confidence,
                crop=crop_rel,
                snapshot=snapshot,
                event_id=event_id,
                track_id=msg.track_id,
                direction=msg.direction,
            )
        )
        read = {
            "type": "plate",
            "camera_id": msg.camera_id,
            "read_id": row.id,
            "event_id": event_id,
            "text": msg.text,
            "normalised": row.normalised,
            "format": msg.format,
            "confidence": round(msg.confidence, 3),
            "frames": msg.reads,
            "agreeing": msg.agreeing,
            "direction": msg.direction,
            "ts": msg.ts,
        }
        self.hub.publish(read)
        if self.hotlists is None:
            return
        for hit in self.hotlists.check(row.normalised):
            raised = time.time()
            details = {
                "plate": msg.text,
                "read_id": row.id,
                "hotlist": hit.hotlist_name,
                "hotlist_id": hit.hotlist_id,
                "entry_id": hit.entry_id,
                "entry": hit.plate,
                "matched_as": hit.matched_as,
                "confusions": hit.confusions,
                "reason": hit.reason,
                "crop": f"/api/v1/plates/reads/{row.id}/crop.jpg",
                "playback": f"/api/v1/cameras/{msg.camera_id}/playback.mp4"
                f"?start={msg.ts - 5:.3f}&end={msg.ts + 10:.3f}",
            }
            with self.db.session() as s, s.begin():
                alert = Alert(
                    ts=msg.ts,
                    rule=f"hotlist: {hit.hotlist_name}",
                    priority=hit.priority,
                    camera_id=msg.camera_id,
                    event_id=event_id,
                    kind="hotlist",
                    details=details,
                )
                s.add(alert)
                s.flush()
                alert_id = alert.id
            self.alerts_raised += 1
            self.deliver(
                {
                    "type": "alert",
                    "id": alert_id,
                    "rule": f"hotlist: {hit.hotlist_name}",
                    "priority": hit.priority,
                    "camera_id": msg.camera_id,
                    "event_id": event_id,
                    "kind": "hotlist",
                    "ts": msg.ts,
                    "raised_at": raised,
                    **details,
                }
            )

    # -- alerts --------------------------------------------------------------------------
    def _check(self, h: Happening, event_id: int | None) -> None:
        for rule in matching(self.rules(), h):
            raised = time.time()
            details = {"class": h.class_name, "zone": h.zone, "direction": h.direction}
            with self.db.session() as s, s.begin():
                alert = Alert(
                    ts=h.ts,
                    rule=rule.name,
                    priority=rule.priority,
                    camera_id=h.camera_id,
                    event_id=event_id,
                    kind=h.kind,
                    details=details,
                )
                s.add(alert)
                s.flush()
                alert_id = alert.id
            self.alerts_raised += 1
            self.deliver(
                {
                    "type": "alert",
                    "id": alert_id,
                    "rule": rule.name,
                    "priority": rule.priority,
                    "camera_id": h.camera_id,
                    "event_id": event_id,
                    "kind": h.kind,
                    "ts": h.ts,
                    "raised_at": raised,
                    **details,
                }
            )

    # -- retention -----------------------------------------------------------------------
    def expire(self, max_age_s: dict[str, float], default_age_s: float, now: float) -> int:
        """Delete events (and their snapshots) older than their camera's retention."""
        removed = 0
        with self.db.session() as s, s.begin():
            cameras = set(s.scalars(select(Event.camera_id).distinct()))
            for cam in cameras:
                cutoff = now - max_age_s.get(cam, default_age_s)
                old = list(
                    s.scalars(
                        select(Event).where(
                            Event.camera_id == cam,
                            Event.end_ts.is_not(None),
                            Event.end_ts < cutoff,
                        )
                    )
                )
                for e in old:
                    for rel in (e.snapshot, e.frame):
                        if rel:
                            (self.snapshots / rel).unlink(missing_ok=True)
                if old:
                    s.execute(delete(Event).where(Event.id.in_([e.id for e in old])))
                    removed += len(old)
        return removed
