"""The camera registry (database) and the workers that run the enabled cameras."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from citywatch.cameras.live import LiveFeed
from citywatch.cameras.worker import Backoff, CameraHealth, CameraWorker
from citywatch.config import AnalyticsConfig, CameraConfig, CameraRetention, Location, StreamConfig
from citywatch.recording.segmenter import SegmentInfo, SegmentWriter
from citywatch.store.db import Database
from citywatch.store.models import Camera

log = logging.getLogger(__name__)


def to_row(cfg: CameraConfig, source: str, now: float, row: Camera | None = None) -> Camera:
    row = row or Camera(id=cfg.id, created_at=now)
    row.name = cfg.name
    row.lat, row.lon, row.address = cfg.location.lat, cfg.location.lon, cfg.location.address
    row.main_url = cfg.main_stream.url
    row.main_username = cfg.main_stream.username
    row.main_password = cfg.main_stream.password
    sub = cfg.sub_stream
    row.sub_url = sub.url if sub else None
    row.sub_username = sub.username if sub else None
    row.sub_password = sub.password if sub else None
    row.purpose, row.legal_basis = cfg.purpose, cfg.legal_basis
    row.enabled = cfg.enabled
    row.source = source
    row.max_age_hours = cfg.retention.max_age_hours
    row.quota_gb = cfg.retention.quota_gb
    row.analytics = cfg.analytics.model_dump(mode="json")
    row.updated_at = now
    return row


def _recording_key(row: Camera | None) -> tuple[object, ...]:
    if row is None:
        return ()
    return (row.main_url, row.main_username, row.main_password, row.enabled)


def to_config(row: Camera) -> CameraConfig:
    sub = (
        StreamConfig(url=row.sub_url, username=row.sub_username, password=row.sub_password)
        if row.sub_url
        else None
    )
    return CameraConfig(
        id=row.id,
        name=row.name,
        location=Location(lat=row.lat, lon=row.lon, address=row.address),
        main_stream=StreamConfig(
            url=row.main_url, username=row.main_username, password=row.main_password
        ),
        sub_stream=sub,
        purpose=row.purpose,
        legal_basis=row.legal_basis,
        enabled=row.enabled,
        retention=CameraRetention(max_age_hours=row.max_age_hours, quota_gb=row.quota_gb),
        analytics=AnalyticsConfig.model_validate(row.analytics or {}),
    )


@dataclass
class WorkerOptions:
    segment_seconds: float = 10.0
    open_timeout_s: float = 10.0
    backoff: Backoff = Backoff()


class CameraManager:
    """Keeps one worker per enabled camera, in step with the registry."""

    def __init__(
        self,
        db: Database,
        recordings: Path,
        on_segment: Callable[[SegmentInfo], None],
        options: WorkerOptions | None = None,
        on_state: Callable[[str, str, str], None] | None = None,
        on_change: Callable[[str, CameraConfig | None], None] | None = None,
    ) -> None:
        self._db = db
        self.recordings = recordings
        self.on_segment = on_segment
        self.options = options or WorkerOptions()
        self.on_state = on_state
        self.on_change = on_change
        self._keys: dict[str, tuple[object, ...]] = {}  # camera -> what its recorder uses
        self._workers: dict[str, CameraWorker] = {}
        self._versions: dict[str, float] = {}  # camera -> updated_at its worker runs with
        self._feeds: dict[str, LiveFeed] = {}
        self._lock = threading.Lock()

    # registry ------------------------------------------------------------------------
    def all(self) -> list[Camera]:
        with self._db.session() as s:
            return list(s.scalars(select(Camera).order_by(Camera.id)))

    def get(self, camera_id: str) -> Camera | None:
        with self._db.session() as s:
            return s.get(Camera, camera_id)

    def upsert(
        self, cfg: CameraConfig, source: str = "api", restart: bool = True
    ) -> tuple[Camera, bool]:
        """Insert or update a camera and (re)start its worker. Returns (row, created)."""
        now = time.time()
        with self._db.session() as s, s.begin():
            existing = s.get(Camera, cfg.id)
            row = to_row(cfg, source, now, existing)
            if existing is None:
                s.add(row)
        if restart:
            self.apply(cfg.id)
        return row, existing is None

    def remove(self, camera_id: str) -> bool:
        with self._db.session() as s, s.begin():
            row = s.get(Camera, camera_id)
            if row is None:
                return False
            s.delete(row)
        self.apply(camera_id)
        return True

    def sync_config(self, cameras: list[CameraConfig]) -> dict[str, str]:
        """Cameras from the YAML file win over earlier copies of themselves in the database;
        cameras added through the API are kept. Returns {camera id: "added" | "changed"}."""
        changes: dict[str, str] = {}
        for cfg in cameras:
            old = self.get(cfg.id)
            if old is not None and to_config(old) == cfg:
                continue
            self.upsert(cfg, source="config", restart=False)
            changes[cfg.id] = "added" if old is None else "changed"
        return changes

    # workers -------------------------------------------------------------------------
    def feed(self, camera_id: str) -> LiveFeed:
        with self._lock:
            feed = self._feeds.get(camera_id)
            if feed is None:
                feed = self._feeds[camera_id] = LiveFeed(camera_id)
            return feed

    def health(self, camera_id: str) -> CameraHealth:
        with self._lock:
            worker = self._workers.get(camera_id)
        if worker is None:
            return CameraHealth(state="disabled")
        return worker.health

    def apply(self, camera_id: str) -> None:
        """Bring the camera's recorder in step with its row: stop it, (re)start it, or leave
        it running when only settings it does not use changed (zones, say: recording must
        not pause for those). Listeners hear of every change."""
        row = self.get(camera_id)
        cfg = to_config(row) if row is not None else None
        key = _recording_key(row)
        with self._lock:
            running = self._versions.pop(camera_id, None)
            if row is not None:
                self._versions[camera_id] = row.updated_at
        if running is None or self._keys.get(camera_id) != key:
            self._restart(camera_id, cfg)
            self._keys[camera_id] = key
        if self.on_change is not None:
            try:
                self.on_change(camera_id, cfg)
            except Exception:
                log.exception("camera %s: change listener failed", camera_id)

    def _restart(self, camera_id: str, cfg: CameraConfig | None) -> None:
        with self._lock:
            old = self._workers.pop(camera_id, None)
        if old is not None:
            old.stop()
        if cfg is None or not cfg.enabled:
            return
        writer = SegmentWriter(
            cfg.id, self.recordings, self.on_segment, self.options.segment_seconds
        )
        worker = CameraWorker(
            cfg.id,
            cfg.main_stream,
            writer,
            self.feed(cfg.id),
            backoff=self.options.backoff,
            open_timeout_s=self.options.open_timeout_s,
            on_state=self.on_state,
        )
        with self._lock:
            self._workers[cfg.id] = worker
        worker.start()

    def reconcile(self) -> None:
        """Follow changes made to the registry by another process (the CLI, say)."""
        rows = {r.id: r for r in self.all()}
        with self._lock:
            applied = dict(self._versions)
        for cam_id in applied.keys() - rows.keys():
            self.apply(cam_id)
        for cam_id, row in rows.items():
            if applied.get(cam_id) != row.updated_at:
                self.apply(cam_id)

    def start_all(self) -> None:
        for row in self.all():
            self.apply(row.id)

    def stop_all(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            self._versions.clear()
            self._keys.clear()
        for w in workers:
            w.request_stop()
        for w in workers:
            w.stop()
