"""The CityWatch server's parts, wired together: one object per process.

Everything a request handler or a CLI command needs is reached from here; nothing lives
in module-level state, so tests build as many independent instances as they like.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from citywatch.analytics.manager import AnalyticsManager
from citywatch.analytics.messages import FaceSeen, Message
from citywatch.cameras.registry import CameraManager, WorkerOptions, to_config
from citywatch.config import CameraConfig, Settings
from citywatch.events.faces import FaceMatcher, Watchlists
from citywatch.events.hub import EventHub
from citywatch.events.outbound import MqttPublisher, WebhookDispatcher
from citywatch.events.service import EventService
from citywatch.governance.accounts import Accounts
from citywatch.governance.audit import AuditLog, AuditRecord
from citywatch.governance.authorisations import AuthorisationService
from citywatch.governance.cases import CaseService
from citywatch.recording.index import SegmentIndex
from citywatch.recording.repair import RepairReport, repair
from citywatch.recording.retention import GB, Policy, RetentionSweeper
from citywatch.recording.segmenter import SegmentInfo
from citywatch.search.faces import FaceSearchService
from citywatch.search.hotlists import HotlistService
from citywatch.search.plates import PlateStore
from citywatch.search.vectors import VectorIndex, open_vector_index
from citywatch.store.db import Database
from citywatch.store.models import Authorisation

log = logging.getLogger(__name__)


class CityWatch:
    def __init__(self, settings: Settings, worker_options: WorkerOptions | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.db_url)
        self.audit = AuditLog(self.db)
        self.accounts = Accounts(self.db, settings.server.session_hours)
        self.index = SegmentIndex(self.db, settings.recordings_dir)
        options = worker_options or WorkerOptions(
            segment_seconds=settings.recording.segment_seconds
        )
        self.cameras = CameraManager(
            self.db,
            settings.recordings_dir,
            self._on_segment,
            options,
            self._on_camera_state,
            self._on_camera_change,
        )
        self.hub = EventHub()
        self.mqtt = MqttPublisher(settings.mqtt) if settings.mqtt else None
        self.webhooks = WebhookDispatcher(settings.webhooks) if settings.webhooks else None
        publishers: list[Any] = [p for p in (self.mqtt, self.webhooks) if p is not None]
        self.plate_store = PlateStore(self.db, settings.data_dir)
        self.hotlists = HotlistService(self.db, self.audit)
        self.events = EventService(
            self.db,
            self.snapshots_dir,
            lambda: self.settings.alerts,
            self.hub,
            publishers,
            self.plate_store,
            self.hotlists,
        )
        self.cases = CaseService(self.db, self.audit)
        # Faces: models load on first use; nothing runs without an authorisation.
        self._face_engine: Any = None
        self._vectors: VectorIndex | None = None
        self._lazy_lock = threading.Lock()
        self.watchlists = Watchlists(self.db, self.audit, settings.data_dir, self.face_engine)
        self.authorisations = AuthorisationService(
            self.db,
            self.audit,
            on_end=self._authorisation_ended,
            watchlist_versions=self.watchlists.versions,
        )
        self.face_matcher = FaceMatcher(
            self.db,
            self.audit,
            self.authorisations,
            self.watchlists,
            settings.data_dir,
            self.hub.publish,
            self.events.deliver,
            self.face_threshold,
        )
        self.face_search = FaceSearchService(
            self.db,
            self.audit,
            self.authorisations,
            self.index,
            settings.data_dir,
            self.face_engine,
            self._search_detector,
            self.vectors,
            self.face_threshold,
            settings.faces.search_fps,
        )
        self.analytics = AnalyticsManager(settings.detector, self._on_analysis)
        self._analytics_started = False
        self.sweeper = RetentionSweeper(
            self.index,
            self.audit,
            self.retention_policy,
            settings.recording.retention.sweep_interval_s,
        )
        self.started = False
        self._maintenance_stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        self._authorise: threading.Thread | None = None

    @property
    def snapshots_dir(self) -> Path:
        return self.settings.data_dir / "snapshots"

    # -- faces -------------------------------------------------------------------------------
    def face_engine(self) -> Any:
        """The server process's face engine (enrolment, probes, retrospective search),
        loaded on first use; it serialises its own calls, so threads share it."""
        from citywatch.analytics.faces import FaceEngine

        with self._lazy_lock:
            if self._face_engine is None:
                self._face_engine = FaceEngine(detector=self.settings.faces.detector)
            return self._face_engine

    def face_threshold(self) -> float:
        if self.settings.faces.threshold is not None:
            return self.settings.faces.threshold
        # Watchlist matching uses the strict threshold (about 0.1 % false accepts on LFW,
        # BENCHMARKS.md), not the verification one: most faces a camera sees are strangers.
        from citywatch.analytics.faces import STRICT_THRESHOLD

        return float(STRICT_THRESHOLD)

    def vectors(self) -> VectorIndex:
        with self._lazy_lock:
            if self._vectors is None:
                self._vectors = open_vector_index(self.db, self.settings.data_dir)
            return self._vectors

    def _search_detector(self) -> Any:
        from citywatch.analytics.detector import load_detector

        return load_detector(self.settings.detector.model, classes=["person"])

    def _on_analysis(self, msg: Message) -> None:
        if isinstance(msg, FaceSeen):
            self.face_matcher.handle(msg)
        else:
            self.events.handle(msg)

    def _authorisation_ended(self, auth: Authorisation) -> dict[str, int]:
        """Delete what was derived under an authorisation that ended (see its terms)."""
        if auth.mode == "realtime":
            for camera_id in auth.camera_ids:
                if camera_id not in self.authorisations.cameras("realtime"):
                    self.analytics.set_faces(camera_id, None)
            return self.face_matcher.purge(auth)
        return {**self.face_matcher.purge(auth), **self.face_search.purge(auth)}

    def sync_faces(self) -> None:
        """Face analysis runs exactly on the cameras an active real-time authorisation
        names: switched on and off here, every second."""
        self.authorisations.tick()
        wanted = self.authorisations.cameras("realtime")
        f = self.settings.faces
        opts = {"min_face_px": f.min_face_px, "shots_per_track": f.shots_per_track}
        for camera_id in self.analytics.faces_on() - wanted:
            self.analytics.set_faces(camera_id, None)
            self._apply_analytics(camera_id)
        for camera_id in wanted - self.analytics.faces_on():
            self.analytics.set_faces(camera_id, opts)
            self._apply_analytics(camera_id)

    def _apply_analytics(self, camera_id: str) -> None:
        row = next((c for c in self.cameras.all() if c.id == camera_id), None)
        self._on_camera_change(camera_id, to_config(row) if row is not None else None)

    def _authorise_loop(self) -> None:
        while not self._maintenance_stop.wait(1.0):
            try:
                self.sync_faces()
            except Exception:
                log.exception("authorisation check failed")

    def _maintain(self, interval_s: float = 5.0) -> None:
        """Follow registry changes from other processes; drop expired login sessions and
        events past their camera's retention."""
        while not self._maintenance_stop.wait(interval_s):
            try:
                self.cameras.reconcile()
                self.accounts.purge_expired()
                policy = self.retention_policy()
                now = time.time()
                self.events.expire(policy.camera_max_age_s, policy.max_age_s or float("inf"), now)
                self.plate_store.expire(now, per_camera=self._plate_retention())
                self.hotlists.purge_expired()
                self.face_matcher.expire(now)
                self.face_search.expire(now)
            except Exception:
                log.exception("maintenance pass failed")

    def _plate_retention(self) -> dict[str, float]:
        return {
            cam.id: cam.analytics.plate_retention_days * 86400
            for cam in (to_config(row) for row in self.cameras.all())
        }

    def _on_camera_change(self, camera_id: str, cfg: CameraConfig | None) -> None:
        """Analytics follow the camera: started, changed or stopped with it. A camera with
        face identification authorised is analysed even when its own analytics are off
        (faces need person tracks)."""
        if cfg is not None and not cfg.analytics.enabled and camera_id in self.analytics.faces_on():
            cfg = cfg.model_copy(
                update={"analytics": cfg.analytics.model_copy(update={"enabled": True})}
            )
        wanted = cfg is not None and cfg.enabled and cfg.analytics.enabled
        if wanted and not self._analytics_started:
            self.analytics.start()
            self._analytics_started = True
        self.analytics.apply(cfg, camera_id)

    def _on_segment(self, info: SegmentInfo) -> None:
        self.index.add(info)

    def _on_camera_state(self, camera_id: str, state: str, error: str) -> None:
        log.info("camera %s is %s%s", camera_id, state, f": {error}" if error else "")

    def retention_policy(self) -> Policy:
        r = self.settings.recording.retention
        cam_age: dict[str, float] = {}
        cam_quota: dict[str, int] = {}
        for cam in self.cameras.all():
            if cam.max_age_hours is not None:
                cam_age[cam.id] = cam.max_age_hours * 3600
            if cam.quota_gb is not None:
                cam_quota[cam.id] = int(cam.quota_gb * GB)
        return Policy(
            max_age_s=r.max_age_hours * 3600,
            quota_bytes=int(r.quota_gb * GB) if r.quota_gb is not None else None,
            free_reserve_bytes=int(r.free_reserve_gb * GB),
            camera_max_age_s=cam_age,
            camera_quota_bytes=cam_quota,
        )

    def prepare(self) -> RepairReport:
        """Migrate the database and repair the recordings index. Safe to run twice."""
        self.db.upgrade()
        report = repair(self.index)
        if report.changed:
            self.audit.append(
                AuditRecord(
                    actor="system:startup",
                    action="recording.repair",
                    details={
                        "salvaged": len(report.salvaged),
                        "indexed": len(report.indexed),
                        "quarantined": report.quarantined[:50],
                        "dropped_rows": report.dropped_rows,
                    },
                )
            )
        return report

    def start(self) -> None:
        self.prepare()
        for publisher in (self.mqtt, self.webhooks):
            if publisher is not None:
                publisher.start()
        changes = self.cameras.sync_config(self.settings.cameras)
        for camera_id, change in sorted(changes.items()):
            cfg = next(c for c in self.settings.cameras if c.id == camera_id)
            self.audit.append(
                AuditRecord(
                    actor="system:config",
                    action=f"camera.config_{change}",
                    target=camera_id,
                    details={"url": cfg.main_stream.safe_url(), "name": cfg.name},
                )
            )
        self.cameras.start_all()
        self.sweeper.start()
        self._maintenance_stop.clear()
        self._maintenance = threading.Thread(target=self._maintain, name="maintenance", daemon=True)
        self._maintenance.start()
        self._authorise = threading.Thread(
            target=self._authorise_loop, name="authorisations", daemon=True
        )
        self._authorise.start()
        self.face_search.start()
        self.started = True
        self.audit.append(AuditRecord(actor="system", action="system.start"))

    def stop(self) -> None:
        self._maintenance_stop.set()
        if self._maintenance is not None:
            self._maintenance.join(10)
        if self._authorise is not None:
            self._authorise.join(10)
        self.face_search.stop()
        self.sweeper.stop()
        self.cameras.stop_all()
        if self._analytics_started:
            self.analytics.stop()
            self._analytics_started = False
        for publisher in (self.mqtt, self.webhooks):
            if publisher is not None:
                publisher.stop()
        if self.started:
            self.audit.append(AuditRecord(actor="system", action="system.stop"))
        self.started = False
        if self._vectors is not None:
            self._vectors.close()
            self._vectors = None
        self.db.dispose()
