"""Face watchlists, live matching under an authorisation, and four-eyes review.

- `Watchlists`: lists of persons and their enrolled face images. Each image carries its
  provenance (source, legal basis, who added it); an image without provenance, without a
  usable face, with several faces, or with a face too small or blurred is refused with the
  reason. Every change is audited and changes the list's version hash, which the use log
  records at each match.
- `FaceMatcher`: receives the face shots analysis sends from cameras where real-time
  identification is authorised, and compares each with the watchlists its authorisation
  names. A shot that matches no one is dropped there and then: nothing of passers-by is
  stored. A match at or above the threshold becomes a *candidate*, shown to reviewers; it
  becomes an alert (and goes out to MQTT and webhooks) only when two different reviewers
  confirm it, and either may reject it (EU AI Act Art. 14(5)).
- When an authorisation ends, `purge` deletes what was derived under it and not confirmed
  (rejected and undecided candidates, with their crops); confirmed matches are kept for the
  days its terms say, longer only while a case holds their alert.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from citywatch.analytics.messages import FaceSeen
from citywatch.governance.audit import AuditLog, AuditRecord
from citywatch.governance.authorisations import AuthorisationService, target
from citywatch.governance.cases import held
from citywatch.store.db import Database
from citywatch.store.files import remove_file, write_file
from citywatch.store.models import (
    Alert,
    Authorisation,
    FaceCandidate,
    FaceEnrolment,
    FacePerson,
    FaceWatchlist,
)

log = logging.getLogger(__name__)

DIM = 128
CONFIRMATIONS = 2
MAX_IMAGE_BYTES = 20 * 1024 * 1024


class FaceError(ValueError):
    """Invalid or refused input; the message says why."""


class NotFound(LookupError):
    pass


class EnrolmentEngine(Protocol):
    """What enrolment needs of the face engine (citywatch.analytics.faces.FaceEngine)."""

    def enrolment_face(self, image_bgr: np.ndarray) -> Any: ...


def to_vector(blob: bytes) -> np.ndarray:
    v = np.frombuffer(blob, dtype=np.float32)
    if v.shape != (DIM,) or not np.all(np.isfinite(v)):
        raise FaceError(f"an embedding is {DIM} finite float32 values")
    return v


def _text(name: str, value: str | None, min_len: int = 3) -> str:
    value = (value or "").strip()
    if len(value) < min_len:
        raise FaceError(f"{name}: required (at least {min_len} characters)")
    return value


@dataclass(frozen=True)
class GalleryRow:
    enrolment_id: int
    person_id: int
    person_label: str
    watchlist_id: int
    watchlist_version: str


@dataclass(frozen=True)
class Gallery:
    """The enrolled faces of some watchlists, as one matrix (rows L2-normalised)."""

    vectors: np.ndarray  # (N, DIM) float32
    rows: tuple[GalleryRow, ...]

    def best(self, embedding: np.ndarray) -> list[tuple[GalleryRow, float]]:
        """The best-scoring enrolment of each person, best first."""
        if not self.rows:
            return []
        scores = self.vectors @ embedding.astype(np.float32)
        best: dict[int, tuple[GalleryRow, float]] = {}
        for i in np.argsort(-scores):
            row = self.rows[int(i)]
            if row.person_id not in best:
                best[row.person_id] = (row, float(scores[i]))
        return sorted(best.values(), key=lambda rs: -rs[1])


class Watchlists:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        data_dir: Path,
        engine: Callable[[], EnrolmentEngine],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.audit = audit
        self.dir = data_dir / "faces" / "enrolments"
        self.data_dir = data_dir
        self.engine = engine
        self.clock = clock
        self._lock = threading.Lock()
        self._galleries: dict[tuple[tuple[int, str], ...], Gallery] = {}

    # -- lists and persons ---------------------------------------------------------------------
    def create(
        self, actor: str, name: str, legal_basis: str, description: str = "", client: str = ""
    ) -> FaceWatchlist:
        now = self.clock()
        row = FaceWatchlist(
            name=_text("name", name, 2),
            legal_basis=_text("legal_basis", legal_basis),
            description=(description or "").strip(),
            created_by=actor,
            created_at=now,
            updated_at=now,
            version=_version([]),
        )
        try:
            with self.db.session() as s:
                s.add(row)
                s.commit()
        except IntegrityError:
            raise FaceError(f"a watchlist {name!r} exists already") from None
        self._audit(actor, "faces.watchlist.create", row.id, client, {"name": row.name})
        return row

    def delete(self, actor: str, watchlist_id: int, client: str = "") -> None:
        with self.db.session() as s:
            row = self._watchlist(s, watchlist_id)
            users = [
                a.id
                for a in s.scalars(select(Authorisation).where(Authorisation.ended_at.is_(None)))
                if watchlist_id in a.watchlist_ids
            ]
            if users:
                raise FaceError(
                    f"watchlist {row.name!r} is named by authorisation(s) {users} that have "
                    "not ended; revoke them first"
                )
            files = [
                e.image
                for e in s.scalars(
                    select(FaceEnrolment)
                    .join(FacePerson, FacePerson.id == FaceEnrolment.person_id)
                    .where(FacePerson.watchlist_id == watchlist_id)
                )
            ]
            s.delete(row)
            s.commit()
        for rel in files:
            remove_file(self.data_dir, rel)
        self._audit(actor, "faces.watchlist.delete", watchlist_id, client, {"name": row.name})

    def add_person(
        self, actor: str, watchlist_id: int, label: str, notes: str = "", client: str = ""
    ) -> FacePerson:
        with self.db.session() as s:
            self._watchlist(s, watchlist_id)
            row = FacePerson(
                watchlist_id=watchlist_id,
                label=_text("label", label, 1),
                notes=(notes or "").strip(),
                created_by=actor,
                created_at=self.clock(),
            )
            s.add(row)
            s.commit()
        self._audit(
            actor, "faces.person.add", watchlist_id, client, {"person": row.id, "label": row.label}
        )
        return row

    def remove_person(self, actor: str, person_id: int, client: str = "") -> None:
        with self.db.session() as s:
            person = s.get(FacePerson, person_id)
            if person is None:
                raise NotFound(f"no person {person_id}")
            files = [
                e.image
                for e in s.scalars(
                    select(FaceEnrolment).where(FaceEnrolment.person_id == person_id)
                )
            ]
            s.delete(person)
            s.commit()
        for rel in files:
            remove_file(self.data_dir, rel)
        self._touch(person.watchlist_id)
        self._audit(
            actor, "faces.person.remove", person.watchlist_id, client, {"person": person_id}
        )

    # -- enrolment -----------------------------------------------------------------------------
    def enrol(
        self,
        actor: str,
        person_id: int,
        image: bytes,
        source: str,
        legal_basis: str,
        client: str = "",
    ) -> FaceEnrolment:
        """Add one face image to a person. Refused, with the reason, without provenance or
        when the image does not hold exactly one usable face."""
        from citywatch.analytics.faces import EnrolmentRejected, load_image

        source = _text("source (where the image comes from)", source)
        legal_basis = _text("legal_basis (why it may be enrolled)", legal_basis)
        if not image:
            raise FaceError("image: empty")
        if len(image) > MAX_IMAGE_BYTES:
            raise FaceError(f"image: larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
        with self.db.session() as s:
            person = s.get(FacePerson, person_id)
            if person is None:
                raise NotFound(f"no person {person_id}")
        try:
            pixels = load_image(image)
            face = self.engine().enrolment_face(pixels)
        except EnrolmentRejected as e:
            self._audit(
                actor,
                "faces.enrol",
                person.watchlist_id,
                client,
                {"person": person_id, "refused": str(e)},
                outcome="refused",
            )
            raise FaceError(f"image refused: {e}") from None
        except ValueError as e:
            raise FaceError(f"image: {e}") from None
        from citywatch.analytics.faces import crop_jpeg

        digest = hashlib.sha256(image).hexdigest()
        row = FaceEnrolment(
            person_id=person_id,
            image="",
            embedding=np.asarray(face.embedding, dtype=np.float32).tobytes(),
            quality=_quality(face.quality),
            source=source,
            legal_basis=legal_basis,
            sha256=digest,
            added_by=actor,
            added_at=self.clock(),
        )
        with self.db.session() as s:
            s.add(row)
            s.flush()
            row.image = write_file(
                self.data_dir,
                f"faces/enrolments/{person.watchlist_id}/{row.id}.jpg",
                crop_jpeg(pixels, face.box),
            )
            s.commit()
        version = self._touch(person.watchlist_id)
        self._audit(
            actor,
            "faces.enrol",
            person.watchlist_id,
            client,
            {
                "person": person_id,
                "enrolment": row.id,
                "source": source,
                "legal_basis": legal_basis,
                "sha256": digest,
                "quality": row.quality,
                "version": version,
            },
        )
        return row

    def remove_enrolment(self, actor: str, enrolment_id: int, client: str = "") -> None:
        with self.db.session() as s:
            row = s.get(FaceEnrolment, enrolment_id)
            if row is None:
                raise NotFound(f"no enrolment {enrolment_id}")
            person = s.get(FacePerson, row.person_id)
            assert person is not None
            s.delete(row)
            s.commit()
        remove_file(self.data_dir, row.image)
        version = self._touch(person.watchlist_id)
        self._audit(
            actor,
            "faces.enrolment.remove",
            person.watchlist_id,
            client,
            {"enrolment": enrolment_id, "version": version},
        )

    # -- reading -------------------------------------------------------------------------------
    def all(self) -> list[FaceWatchlist]:
        with self.db.session() as s:
            return list(s.scalars(select(FaceWatchlist).order_by(FaceWatchlist.name)))

    def get(self, watchlist_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            wl = self._watchlist(s, watchlist_id)
            persons = list(
                s.scalars(
                    select(FacePerson)
                    .where(FacePerson.watchlist_id == watchlist_id)
                    .order_by(FacePerson.id)
                )
            )
            enrolments = list(
                s.scalars(
                    select(FaceEnrolment)
                    .where(FaceEnrolment.person_id.in_([p.id for p in persons]))
                    .order_by(FaceEnrolment.id)
                )
            )
        by_person: dict[int, list[dict[str, Any]]] = {}
        for e in enrolments:
            by_person.setdefault(e.person_id, []).append(describe_enrolment(e))
        return {
            **describe_watchlist(wl),
            "persons": [
                {
                    "id": p.id,
                    "label": p.label,
                    "notes": p.notes,
                    "created_by": p.created_by,
                    "created_at": p.created_at,
                    "enrolments": by_person.get(p.id, []),
                }
                for p in persons
            ],
        }

    def enrolment(self, enrolment_id: int) -> FaceEnrolment:
        with self.db.session() as s:
            row = s.get(FaceEnrolment, enrolment_id)
            if row is None:
                raise NotFound(f"no enrolment {enrolment_id}")
            return row

    def versions(self, ids: Iterable[int]) -> dict[int, str]:
        ids = list(ids)
        with self.db.session() as s:
            return {
                w.id: w.version
                for w in s.scalars(select(FaceWatchlist).where(FaceWatchlist.id.in_(ids)))
            }

    def gallery(self, ids: Iterable[int]) -> Gallery:
        """The enrolments of these watchlists (cached until one of them changes)."""
        versions = self.versions(ids)
        key = tuple(sorted(versions.items()))
        with self._lock:
            cached = self._galleries.get(key)
        if cached is not None:
            return cached
        with self.db.session() as s:
            rows = s.execute(
                select(FaceEnrolment, FacePerson)
                .join(FacePerson, FacePerson.id == FaceEnrolment.person_id)
                .where(FacePerson.watchlist_id.in_(list(versions)))
                .order_by(FaceEnrolment.id)
            ).all()
        vectors = (
            np.stack([to_vector(e.embedding) for e, _ in rows])
            if rows
            else np.zeros((0, DIM), np.float32)
        )
        gallery = Gallery(
            vectors,
            tuple(
                GalleryRow(e.id, p.id, p.label, p.watchlist_id, versions[p.watchlist_id])
                for e, p in rows
            ),
        )
        with self._lock:
            if len(self._galleries) > 32:
                self._galleries.clear()
            self._galleries[key] = gallery
        return gallery

    # -- internals -----------------------------------------------------------------------------
    def _watchlist(self, s: Any, watchlist_id: int) -> FaceWatchlist:
        row = s.get(FaceWatchlist, watchlist_id)
        if row is None:
            raise NotFound(f"no watchlist {watchlist_id}")
        result: FaceWatchlist = row
        return result

    def _touch(self, watchlist_id: int) -> str:
        """Recompute the list's version hash after a change to its enrolments."""
        with self.db.session() as s:
            wl = self._watchlist(s, watchlist_id)
            rows = s.execute(
                select(FaceEnrolment.id, FacePerson.id, FaceEnrolment.sha256)
                .join(FacePerson, FacePerson.id == FaceEnrolment.person_id)
                .where(FacePerson.watchlist_id == watchlist_id)
                .order_by(FaceEnrolment.id)
            ).all()
            wl.version = _version([tuple(r) for r in rows])
            wl.updated_at = self.clock()
            s.commit()
            return wl.version

    def _audit(
        self,
        actor: str,
        action: str,
        watchlist_id: int,
        client: str,
        details: dict[str, Any],
        outcome: str = "ok",
    ) -> None:
        self.audit.append(
            AuditRecord(
                actor=actor,
                action=action,
                target=f"watchlist:{watchlist_id}",
                outcome=outcome,
                client=client,
                details=details,
            )
        )


def _version(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _quality(q: Any) -> dict[str, Any]:
    return {
        "size": round(float(q.size), 1),
        "sharpness": round(float(q.sharpness), 2),
        "frontal": round(float(q.frontal), 3),
        "score": round(float(q.score), 3),
    }


def describe_watchlist(w: FaceWatchlist) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "description": w.description,
        "legal_basis": w.legal_basis,
        "created_by": w.created_by,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
        "version": w.version,
    }


def describe_enrolment(e: FaceEnrolment) -> dict[str, Any]:
    return {
        "id": e.id,
        "person_id": e.person_id,
        "image": f"/api/v1/faces/enrolments/{e.id}/image.jpg",
        "quality": e.quality,
        "source": e.source,
        "legal_basis": e.legal_basis,
        "sha256": e.sha256,
        "added_by": e.added_by,
        "added_at": e.added_at,
    }


def describe_candidate(c: FaceCandidate, person_label: str = "") -> dict[str, Any]:
    return {
        "id": c.id,
        "authorisation_id": c.authorisation_id,
        "camera_id": c.camera_id,
        "ts": c.ts,
        "track_id": c.track_id,
        "search_id": c.search_id,
        "watchlist_id": c.watchlist_id,
        "watchlist_version": c.watchlist_version,
        "person_id": c.person_id,
        "person": person_label,
        "enrolment_id": c.enrolment_id,
        "enrolled_image": f"/api/v1/faces/enrolments/{c.enrolment_id}/image.jpg",
        "crop": f"/api/v1/faces/candidates/{c.id}/crop.jpg" if c.crop else None,
        "score": round(c.score, 4),
        "threshold": c.threshold,
        "quality": c.quality,
        "status": c.status,
        "reviews": c.reviews,
        "alert_id": c.alert_id,
        "playback": f"/api/v1/cameras/{c.camera_id}/playback.mp4"
        f"?start={c.ts - 5:.3f}&end={c.ts + 10:.3f}",
    }


class FaceMatcher:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorisations: AuthorisationService,
        watchlists: Watchlists,
        data_dir: Path,
        publish: Callable[[dict[str, Any]], None],
        deliver: Callable[[dict[str, Any]], None],
        threshold: Callable[[], float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`publish` reaches the command centre only (candidates); `deliver` also reaches
        MQTT and webhooks (confirmed alerts)."""
        self.db = db
        self.audit = audit
        self.authorisations = authorisations
        self.watchlists = watchlists
        self.data_dir = data_dir
        self.publish = publish
        self.deliver = deliver
        self.threshold = threshold
        self.clock = clock
        self._lock = threading.Lock()
        self._proposed: OrderedDict[tuple[int, str, int, int], int] = OrderedDict()
        self.faces_seen = 0
        self.unauthorised = 0  # shots dropped: no active authorisation for the camera
        self.non_matches = 0  # shots dropped: no one on the watchlists

    # -- live matching -------------------------------------------------------------------------
    def handle(self, msg: FaceSeen) -> list[FaceCandidate]:
        self.faces_seen += 1
        now = self.clock()
        auths = self.authorisations.covering("realtime", msg.camera_id, now)
        if not auths:
            self.unauthorised += 1
            return []
        embedding = to_vector(msg.embedding)
        threshold = self.threshold()
        out: list[FaceCandidate] = []
        for auth in auths:
            gallery = self.watchlists.gallery(auth.watchlist_ids)
            for row, score in gallery.best(embedding):
                if score < threshold:
                    break
                key = (auth.id, msg.camera_id, msg.track_id, row.person_id)
                with self._lock:
                    if key in self._proposed:
                        continue
                    self._proposed[key] = -1
                    while len(self._proposed) > 10_000:
                        self._proposed.popitem(last=False)
                cand = self._propose(auth.id, msg, row, score, threshold)
                with self._lock:
                    self._proposed[key] = cand.id
                out.append(cand)
        if not out:
            self.non_matches += 1
        return out

    def _propose(
        self, auth_id: int, msg: FaceSeen, row: GalleryRow, score: float, threshold: float
    ) -> FaceCandidate:
        digest = hashlib.sha256(msg.crop_jpeg).hexdigest()
        cand = FaceCandidate(
            authorisation_id=auth_id,
            camera_id=msg.camera_id,
            ts=msg.ts,
            track_id=msg.track_id,
            watchlist_id=row.watchlist_id,
            watchlist_version=row.watchlist_version,
            person_id=row.person_id,
            enrolment_id=row.enrolment_id,
            score=score,
            threshold=threshold,
            quality={k: round(float(v), 3) for k, v in msg.quality.items()},
            crop_sha256=digest,
            status="pending",
            reviews=[],
        )
        with self.db.session() as s:
            s.add(cand)
            s.flush()
            cand.crop = write_file(
                self.data_dir, f"faces/candidates/{auth_id}/{cand.id}.jpg", msg.crop_jpeg
            )
            s.commit()
        self.audit.append(
            AuditRecord(
                actor="system:faces",
                action="faces.match.candidate",
                target=target(auth_id),
                details={
                    "candidate": cand.id,
                    "camera": msg.camera_id,
                    "ts": msg.ts,
                    "track": msg.track_id,
                    "watchlist": row.watchlist_id,
                    "watchlist_version": row.watchlist_version,
                    "person": row.person_id,
                    "enrolment": row.enrolment_id,
                    "score": round(score, 4),
                    "threshold": threshold,
                    "input_sha256": digest,
                },
            )
        )
        self.publish({"type": "face.candidate", **describe_candidate(cand, row.person_label)})
        return cand

    # -- four-eyes review ------------------------------------------------------------------------
    def review(
        self, actor: str, candidate_id: int, decision: str, note: str = "", client: str = ""
    ) -> FaceCandidate:
        if decision not in ("confirm", "reject"):
            raise FaceError("decision: confirm or reject")
        now = self.clock()
        with self.db.session() as s:
            cand = s.get(FaceCandidate, candidate_id)
            if cand is None:
                raise NotFound(f"no candidate {candidate_id}")
            if cand.status != "pending":
                raise FaceError(f"candidate {candidate_id} is {cand.status} already")
            if any(r["by"] == actor for r in cand.reviews):
                raise FaceError("you have reviewed this candidate already; a second person must")
            reviews = [
                *cand.reviews,
                {"by": actor, "decision": decision, "at": now, "note": note.strip()[:500]},
            ]
            cand.reviews = reviews
            confirmations = [r["by"] for r in reviews if r["decision"] == "confirm"]
            if decision == "reject":
                cand.status = "rejected"
                cand.decided_at = now
            elif len(set(confirmations)) >= CONFIRMATIONS:
                cand.status = "confirmed"
                cand.decided_at = now
            person = s.get(FacePerson, cand.person_id)
            label = person.label if person is not None else ""
            s.commit()
        self.audit.append(
            AuditRecord(
                actor=actor,
                action="faces.match.review",
                target=target(cand.authorisation_id),
                client=client,
                details={"candidate": cand.id, "decision": decision, "status": cand.status},
            )
        )
        if cand.status == "confirmed":
            self._confirmed(cand, label, confirmations)
        self.publish({"type": "face.review", **describe_candidate(cand, label)})
        return cand

    def _confirmed(self, cand: FaceCandidate, label: str, by: list[str]) -> None:
        details = {
            "candidate": cand.id,
            "authorisation_id": cand.authorisation_id,
            "person": label,
            "person_id": cand.person_id,
            "watchlist_id": cand.watchlist_id,
            "score": round(cand.score, 4),
            "confirmed_by": by,
            "crop": f"/api/v1/faces/candidates/{cand.id}/crop.jpg",
            "enrolled_image": f"/api/v1/faces/enrolments/{cand.enrolment_id}/image.jpg",
            "playback": f"/api/v1/cameras/{cand.camera_id}/playback.mp4"
            f"?start={cand.ts - 5:.3f}&end={cand.ts + 10:.3f}",
        }
        with self.db.session() as s:
            alert = Alert(
                ts=cand.ts,
                rule=f"face watchlist: {label}",
                priority="high",
                camera_id=cand.camera_id,
                event_id=None,
                kind="face",
                details=details,
            )
            s.add(alert)
            s.flush()
            row = s.get(FaceCandidate, cand.id)
            assert row is not None
            row.alert_id = alert.id
            cand.alert_id = alert.id
            s.commit()
        self.audit.append(
            AuditRecord(
                actor="system:faces",
                action="faces.match.confirmed",
                target=target(cand.authorisation_id),
                details={"candidate": cand.id, "alert": alert.id, "verified_by": by},
            )
        )
        self.deliver(
            {
                "type": "alert",
                "id": alert.id,
                "rule": alert.rule,
                "priority": alert.priority,
                "camera_id": cand.camera_id,
                "event_id": None,
                "kind": "face",
                "ts": cand.ts,
                "raised_at": self.clock(),
                **details,
            }
        )

    # -- reading -------------------------------------------------------------------------------
    def candidates(
        self,
        status: str | None = None,
        authorisation_id: int | None = None,
        cameras: Iterable[str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        q = select(FaceCandidate, FacePerson.label).outerjoin(
            FacePerson, FacePerson.id == FaceCandidate.person_id
        )
        if status:
            q = q.where(FaceCandidate.status == status)
        if authorisation_id is not None:
            q = q.where(FaceCandidate.authorisation_id == authorisation_id)
        if cameras is not None:
            q = q.where(FaceCandidate.camera_id.in_(list(cameras)))
        q = q.order_by(FaceCandidate.ts.desc()).limit(limit)
        with self.db.session() as s:
            return [describe_candidate(c, label or "") for c, label in s.execute(q)]

    def candidate(self, candidate_id: int) -> FaceCandidate:
        with self.db.session() as s:
            row = s.get(FaceCandidate, candidate_id)
            if row is None:
                raise NotFound(f"no candidate {candidate_id}")
            return row

    # -- deletion ------------------------------------------------------------------------------
    def purge(self, auth: Authorisation) -> dict[str, int]:
        """At the end of an authorisation: delete every candidate not confirmed, and its crop."""
        with self.db.session() as s:
            rows = list(
                s.scalars(
                    select(FaceCandidate).where(
                        FaceCandidate.authorisation_id == auth.id,
                        FaceCandidate.status != "confirmed",
                    )
                )
            )
            counts = {
                "rejected_candidates": sum(r.status == "rejected" for r in rows),
                "undecided_candidates": sum(r.status == "pending" for r in rows),
            }
            s.execute(delete(FaceCandidate).where(FaceCandidate.id.in_([r.id for r in rows])))
            s.commit()
        for r in rows:
            remove_file(self.data_dir, r.crop)
        with self._lock:
            for key in [k for k in self._proposed if k[0] == auth.id]:
                del self._proposed[key]
        return counts

    def expire(self, now: float | None = None) -> int:
        """Delete confirmed matches past their authorisation's `keep_matches_days`, unless an
        open case holds their alert."""
        now = self.clock() if now is None else now
        with self.db.session() as s:
            keep = {a.id: a.keep_matches_days * 86400 for a in s.scalars(select(Authorisation))}
            held_alerts = set(s.scalars(held("alert")))
            rows = [
                c
                for c in s.scalars(select(FaceCandidate).where(FaceCandidate.status == "confirmed"))
                if c.ts < now - keep.get(c.authorisation_id, 0)
                and (c.alert_id is None or c.alert_id not in held_alerts)
            ]
            for c in rows:
                s.delete(c)
            s.commit()
        for c in rows:
            remove_file(self.data_dir, c.crop)
        return len(rows)
