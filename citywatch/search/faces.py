"""Retrospective search of recorded video by photo, under a retrospective authorisation.

An investigator gives a probe photo, the cameras and a time window; both must lie inside
what an active retrospective authorisation names (a closed set of footage, never the whole
archive). A job then reads the recordings in scope: it decodes them at a reduced rate
(`sample_fps`), finds persons with the object detector, looks for a face in the upper part
of each person, and keeps each face it finds (crop, quality, similarity to the probe) with
its embedding in the job's own vector collection. Results are the appearances ranked by
similarity, each with a playback link; they stay with the case.

When the authorisation ends, the job stops, and the faces that do not match the probe
(below the threshold: passers-by) are deleted with their embeddings; the matches stay for
the days the authorisation's terms say, or while an open case holds the search.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import av
import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select

from citywatch.governance.audit import AuditLog, AuditRecord
from citywatch.governance.authorisations import AuthorisationService, target
from citywatch.governance.cases import held
from citywatch.recording.index import SegmentIndex
from citywatch.store.db import Database
from citywatch.store.files import remove_file, write_file
from citywatch.store.models import Authorisation, FaceAppearance, FaceSearch

log = logging.getLogger(__name__)

MAX_PROBE_BYTES = 20 * 1024 * 1024
UPPER_BODY = 0.55  # share of a person box (from the top) searched for a face
MIN_PERSON_PX = 48


class SearchError(ValueError):
    """Invalid request; the message says why."""


class OutOfScope(PermissionError):
    """The request reaches outside what the authorisation allows."""


class NotFound(LookupError):
    pass


class FaceEngineLike(Protocol):
    def enrolment_face(self, image_bgr: np.ndarray) -> Any: ...
    def faces(self, image_bgr: np.ndarray, boxes: Any = None) -> list[Any]: ...


class PersonDetector(Protocol):
    def detect_frame(self, frame: av.VideoFrame) -> list[Any]: ...


class Vectors(Protocol):
    def add(self, collection: str, ids: Any, vectors: np.ndarray) -> None: ...
    def remove(self, collection: str, ids: Any) -> None: ...
    def drop(self, collection: str) -> None: ...
    def search(self, collection: str, query: np.ndarray, k: int = 10) -> list[Any]: ...


def collection(search_id: int) -> str:
    return f"face-search-{search_id}"


@dataclass(frozen=True)
class Scope:
    camera_ids: tuple[str, ...]
    from_ts: float
    to_ts: float


def describe(row: FaceSearch) -> dict[str, Any]:
    return {
        "id": row.id,
        "authorisation_id": row.authorisation_id,
        "case_ref": row.case_ref,
        "purpose": row.purpose,
        "camera_ids": list(row.camera_ids),
        "from_ts": row.from_ts,
        "to_ts": row.to_ts,
        "sample_fps": row.sample_fps,
        "status": row.status,
        "progress": round(row.progress, 4),
        "segments_total": row.segments_total,
        "segments_done": row.segments_done,
        "faces_seen": row.faces_seen,
        "error": row.error,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "probe": f"/api/v1/faces/searches/{row.id}/probe.jpg" if row.probe_image else None,
    }


def describe_appearance(a: FaceAppearance, threshold: float) -> dict[str, Any]:
    return {
        "id": a.id,
        "camera_id": a.camera_id,
        "ts": a.ts,
        "box": a.box,
        "quality": a.quality,
        "score": round(a.score, 4),
        "match": a.score >= threshold,
        "crop": f"/api/v1/faces/searches/{a.search_id}/appearances/{a.id}/crop.jpg"
        if a.crop
        else None,
        "playback": f"/api/v1/cameras/{a.camera_id}/playback.mp4"
        f"?start={a.ts - 5:.3f}&end={a.ts + 10:.3f}",
    }


class FaceSearchService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorisations: AuthorisationService,
        segments: SegmentIndex,
        data_dir: Path,
        engine: Callable[[], FaceEngineLike],
        detector: Callable[[], PersonDetector],
        vectors: Callable[[], Vectors],
        threshold: Callable[[], float],
        sample_fps: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorisations = authorisations
        self.segments = segments
        self.data_dir = data_dir
        self.engine = engine
        self.detector = detector
        self.vectors = vectors
        self.threshold = threshold
        self.sample_fps = sample_fps
        self.clock = clock
        self._jobs: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        with self.db.session() as s:
            # Jobs cut short by a restart run again from the start.
            for row in s.scalars(
                select(FaceSearch).where(FaceSearch.status.in_(("queued", "running")))
            ):
                row.status = "queued"
                self._jobs.put(row.id)
            s.commit()
        self._thread = threading.Thread(target=self._work, name="face-search", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(30)
            self._thread = None

    # -- requests ------------------------------------------------------------------------------
    def scope_of(
        self, authorisation_id: int, camera_ids: Iterable[str], from_ts: float, to_ts: float
    ) -> Scope:
        """The requested scope, checked against the authorisation (OutOfScope if not)."""
        now = self.clock()
        auth = next((a for a in self.authorisations.active(now) if a.id == authorisation_id), None)
        if auth is None or auth.mode != "retrospective":
            raise OutOfScope(
                f"authorisation {authorisation_id} is not an active retrospective authorisation"
            )
        cams = tuple(sorted(set(camera_ids)))
        if not cams:
            raise SearchError("camera_ids: at least one camera")
        if outside := [c for c in cams if c not in auth.camera_ids]:
            raise OutOfScope(f"cameras outside the authorisation: {', '.join(outside)}")
        if to_ts <= from_ts:
            raise SearchError("to_ts: must be after from_ts")
        assert auth.footage_from is not None and auth.footage_to is not None
        if from_ts < auth.footage_from or to_ts > auth.footage_to:
            raise OutOfScope(
                "time window outside the authorisation's footage window "
                f"[{auth.footage_from:.0f}, {auth.footage_to:.0f}]"
            )
        return Scope(cams, from_ts, to_ts)

    def create(
        self,
        actor: str,
        authorisation_id: int,
        camera_ids: Iterable[str],
        from_ts: float,
        to_ts: float,
        probe: bytes,
        purpose: str,
        case_ref: str,
        client: str = "",
    ) -> FaceSearch:
        from citywatch.analytics.faces import EnrolmentRejected, crop_jpeg, load_image

        purpose = (purpose or "").strip()
        if len(purpose) < 3:
            raise SearchError("purpose: state why you search (at least 3 characters)")
        case_ref = (case_ref or "").strip()
        if not case_ref:
            raise SearchError("case_ref: a retrospective search belongs to a case")
        try:
            scope = self.scope_of(authorisation_id, camera_ids, from_ts, to_ts)
        except OutOfScope as e:
            self.audit.append(
                AuditRecord(
                    actor=actor,
                    action="faces.search.start",
                    target=target(authorisation_id),
                    outcome="denied",
                    purpose=purpose,
                    client=client,
                    details={"error": str(e), "cameras": sorted(set(camera_ids))},
                )
            )
            raise
        if not probe:
            raise SearchError("probe: empty image")
        if len(probe) > MAX_PROBE_BYTES:
            raise SearchError("probe: larger than 20 MB")
        try:
            pixels = load_image(probe)
            face = self.engine().enrolment_face(pixels)
        except EnrolmentRejected as e:
            raise SearchError(f"probe refused: {e}") from None
        except ValueError as e:
            raise SearchError(f"probe: {e}") from None
        digest = hashlib.sha256(probe).hexdigest()
        row = FaceSearch(
            authorisation_id=authorisation_id,
            case_ref=case_ref,
            purpose=purpose,
            probe_embedding=np.asarray(face.embedding, np.float32).tobytes(),
            probe_sha256=digest,
            camera_ids=list(scope.camera_ids),
            from_ts=scope.from_ts,
            to_ts=scope.to_ts,
            sample_fps=self.sample_fps,
            status="queued",
            created_by=actor,
            created_at=self.clock(),
        )
        with self.db.session() as s:
            s.add(row)
            s.flush()
            row.probe_image = write_file(
                self.data_dir, f"faces/searches/{row.id}/probe.jpg", crop_jpeg(pixels, face.box)
            )
            s.commit()
        self.audit.append(
            AuditRecord(
                actor=actor,
                action="faces.search.start",
                target=target(authorisation_id),
                purpose=purpose,
                client=client,
                details={
                    "search": row.id,
                    "case": case_ref,
                    "cameras": list(scope.camera_ids),
                    "from": scope.from_ts,
                    "to": scope.to_ts,
                    "probe_sha256": digest,
                },
            )
        )
        self._jobs.put(row.id)
        return row

    def get(self, search_id: int) -> FaceSearch:
        with self.db.session() as s:
            row = s.get(FaceSearch, search_id)
            if row is None:
                raise NotFound(f"no face search {search_id}")
            return row

    def all(self, authorisation_id: int | None = None) -> list[FaceSearch]:
        q = select(FaceSearch).order_by(FaceSearch.id.desc())
        if authorisation_id is not None:
            q = q.where(FaceSearch.authorisation_id == authorisation_id)
        with self.db.session() as s:
            return list(s.scalars(q))

    def results(self, search_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """Appearances ranked by similarity to the probe (through the vector index)."""
        row = self.get(search_id)
        if row.probe_embedding is None:
            return []
        probe = np.frombuffer(row.probe_embedding, np.float32)
        hits = self.vectors().search(collection(search_id), probe, k=limit)
        if not hits:
            return []
        scores = {h.id: h.score for h in hits}
        with self.db.session() as s:
            rows = {
                a.id: a
                for a in s.scalars(
                    select(FaceAppearance).where(
                        FaceAppearance.search_id == search_id,
                        FaceAppearance.id.in_(list(scores)),
                    )
                )
            }
        threshold = self.threshold()
        return [describe_appearance(rows[h.id], threshold) for h in hits if h.id in rows]

    def appearance(self, search_id: int, appearance_id: int) -> FaceAppearance:
        with self.db.session() as s:
            a = s.get(FaceAppearance, appearance_id)
            if a is None or a.search_id != search_id:
                raise NotFound(f"no appearance {appearance_id} in search {search_id}")
            return a

    def cancel(self, actor: str, search_id: int, client: str = "") -> None:
        row = self.get(search_id)
        with self._lock:
            self._cancelled.add(search_id)
        self._set(search_id, status="cancelled", finished_at=self.clock())
        self.audit.append(
            AuditRecord(
                actor=actor,
                action="faces.search.cancel",
                target=target(row.authorisation_id),
                client=client,
                details={"search": search_id},
            )
        )

    # -- the job -------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._run(job)
            except Exception as e:
                log.exception("face search %d failed", job)
                self._set(job, status="failed", error=str(e)[:500], finished_at=self.clock())

    def _active(self, row: FaceSearch) -> bool:
        with self._lock:
            if row.id in self._cancelled:
                return False
        return any(a.id == row.authorisation_id for a in self.authorisations.active())

    def _run(self, search_id: int) -> None:
        row = self.get(search_id)
        if row.status not in ("queued", "running"):
            return
        if not self._active(row):
            self._set(search_id, status="stopped", error="authorisation not active")
            return
        segs = [
            seg
            for cam in row.camera_ids
            for seg in self.segments.range(cam, row.from_ts, row.to_ts)
        ]
        self._set(search_id, status="running", segments_total=len(segs), segments_done=0)
        vectors = self.vectors()
        vectors.drop(collection(search_id))  # a restarted job starts from nothing
        with self.db.session() as s:
            s.execute(delete(FaceAppearance).where(FaceAppearance.search_id == search_id))
            s.commit()
        probe = np.frombuffer(row.probe_embedding or b"", np.float32)
        engine, detector = self.engine(), self.detector()
        seen = 0
        for i, seg in enumerate(segs):
            if not self._active(row):
                self._set(
                    search_id,
                    status="stopped",
                    error="stopped: the authorisation ended or the search was cancelled",
                    finished_at=self.clock(),
                )
                return
            try:
                seen += self._segment(row, seg, engine, detector, vectors, probe)
            except (av.FFmpegError, OSError) as e:
                log.warning("face search %d: segment %s unreadable: %s", search_id, seg.path, e)
            self._set(
                search_id,
                segments_done=i + 1,
                progress=(i + 1) / len(segs),
                faces_seen=seen,
            )
        self._set(search_id, status="done", progress=1.0, finished_at=self.clock())
        self.audit.append(
            AuditRecord(
                actor="system:faces",
                action="faces.search.done",
                target=target(row.authorisation_id),
                details={"search": search_id, "segments": len(segs), "faces": seen},
            )
        )

    def _segment(
        self,
        row: FaceSearch,
        seg: Any,
        engine: FaceEngineLike,
        detector: PersonDetector,
        vectors: Vectors,
        probe: np.ndarray,
    ) -> int:
        from citywatch.analytics.faces import crop_jpeg

        path = self.segments.abs(seg)
        found = 0
        step = 1.0 / max(0.01, row.sample_fps)
        next_t = max(row.from_ts, seg.start_ts)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first: float | None = None
            for frame in container.decode(stream):
                if frame.pts is None or frame.time_base is None:
                    continue
                t = float(frame.pts * frame.time_base)
                first = t if first is None else first
                ts = seg.start_ts + (t - first)
                if ts > row.to_ts:
                    break
                if ts < next_t:
                    continue
                next_t = ts + step
                image = cast(npt.NDArray[np.uint8], frame.to_ndarray(format="bgr24"))
                h, w = image.shape[:2]
                batch: list[tuple[FaceAppearance, np.ndarray, bytes]] = []
                for det in detector.detect_frame(frame):
                    if det.class_name != "person":
                        continue
                    x1, y1, x2, y2 = (int(v) for v in det.box)
                    if y2 - y1 < MIN_PERSON_PX:
                        continue
                    pad = int(0.1 * (x2 - x1))
                    a, b = max(0, x1 - pad), max(0, y1 - pad)
                    c, d = min(w, x2 + pad), min(h, y1 + int(UPPER_BODY * (y2 - y1)))
                    crop = image[b:d, a:c]
                    if crop.size == 0:
                        continue
                    for face in engine.faces(np.ascontiguousarray(crop)):
                        box = face.box
                        emb = np.asarray(face.embedding, np.float32)
                        app = FaceAppearance(
                            search_id=row.id,
                            camera_id=seg.camera_id,
                            ts=ts,
                            box=[
                                round((box.x1 + a) / w, 4),
                                round((box.y1 + b) / h, 4),
                                round((box.x2 + a) / w, 4),
                                round((box.y2 + b) / h, 4),
                            ],
                            quality=face.quality.as_dict(),
                            score=float(emb @ probe) if probe.size == emb.size else 0.0,
                        )
                        batch.append((app, emb, crop_jpeg(crop, box)))
                if batch:
                    self._keep(row.id, batch, vectors)
                    found += len(batch)
        return found

    def _keep(
        self,
        search_id: int,
        batch: list[tuple[FaceAppearance, np.ndarray, bytes]],
        vectors: Vectors,
    ) -> None:
        folder = self.data_dir / "faces" / "searches" / str(search_id)
        folder.mkdir(parents=True, exist_ok=True)
        with self.db.session() as s:
            for app, _emb, _jpeg in batch:
                s.add(app)
            s.flush()
            for app, _emb, jpeg in batch:
                app.crop = write_file(
                    self.data_dir, f"faces/searches/{search_id}/{app.id}.jpg", jpeg
                )
            s.commit()
        vectors.add(
            collection(search_id),
            [app.id for app, _, _ in batch],
            np.stack([emb for _, emb, _ in batch]),
        )

    def _set(self, search_id: int, **values: Any) -> None:
        with self.db.session() as s:
            row = s.get(FaceSearch, search_id)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)
                s.commit()

    # -- deletion ------------------------------------------------------------------------------
    def purge(self, auth: Authorisation) -> dict[str, int]:
        """At the end of an authorisation: stop its searches, delete the faces that do not
        match the probe (passers-by) with their crops and embeddings."""
        threshold = self.threshold()
        deleted = 0
        vectors = self.vectors()
        for row in self.all(auth.id):
            with self._lock:
                self._cancelled.add(row.id)
            if row.status in ("queued", "running"):
                self._set(
                    row.id,
                    status="stopped",
                    error="the authorisation ended",
                    finished_at=self.clock(),
                )
            with self.db.session() as s:
                gone = list(
                    s.scalars(
                        select(FaceAppearance).where(
                            FaceAppearance.search_id == row.id, FaceAppearance.score < threshold
                        )
                    )
                )
                s.execute(delete(FaceAppearance).where(FaceAppearance.id.in_([a.id for a in gone])))
                s.commit()
            for a in gone:
                remove_file(self.data_dir, a.crop)
            if gone:
                vectors.remove(collection(row.id), [a.id for a in gone])
            deleted += len(gone)
        return {"non_matching_faces": deleted}

    def expire(self, now: float | None = None) -> int:
        """Delete searches whose authorisation ended more than its `keep_matches_days` ago,
        unless an open case holds them."""
        now = self.clock() if now is None else now
        with self.db.session() as s:
            ended = {
                a.id: a.ended_at + a.keep_matches_days * 86400
                for a in s.scalars(select(Authorisation).where(Authorisation.ended_at.is_not(None)))
                if a.ended_at is not None
            }
            kept = set(s.scalars(held("face_search")))
            rows = [
                r
                for r in s.scalars(select(FaceSearch))
                if r.authorisation_id in ended
                and ended[r.authorisation_id] < now
                and r.id not in kept
            ]
        for r in rows:
            self.vectors().drop(collection(r.id))
            folder = self.data_dir / "faces" / "searches" / str(r.id)
            for f in folder.glob("*.jpg") if folder.is_dir() else []:
                f.unlink(missing_ok=True)
            if folder.is_dir():
                folder.rmdir()
            with self.db.session() as s:
                s.execute(delete(FaceSearch).where(FaceSearch.id == r.id))
                s.commit()
        return len(rows)
