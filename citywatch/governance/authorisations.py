"""Legal authorisations for biometric identification (faces).

Face matching is off everywhere until an authorisation allows it, and only within what it
names: one mode (real-time matching, or retrospective search of recorded footage), the
cameras, the watchlists, a validity window, and for retrospective use the window of footage.
It is requested by one user and approved by a different user with the authority role; it
can be revoked at any time. The lifecycle, as `status` reports it:

    pending -> scheduled (approved, not yet valid) -> active -> expired | revoked

`tick` runs every second in the server: it writes the use log's start entry when an
authorisation becomes active, and when one ends (expired or revoked) it calls `on_end`, which
deletes the data derived under it according to its terms, and writes the end entry with
what was deleted. Matching code asks `covering` at every face, so a revoked or expired
authorisation stops matching at once, even before `tick` has run.

Every change, and the start and end of each use, is an audit entry whose target is
`authorisation:<id>`: that is the use log the EU AI Act (Art. 12(3)) asks for, exported by
`use_log`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from citywatch.governance.audit import AuditLog, AuditRecord
from citywatch.store.db import Database
from citywatch.store.models import AuditEntry, Authorisation, Camera, FaceWatchlist

MODES = ("realtime", "retrospective")
MAX_VALIDITY_DAYS = 90.0  # longer uses need a fresh authorisation
DAY = 86400.0


class AuthorisationError(ValueError):
    """The request is not allowed or not valid; the message says why."""


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class ActiveAuthorisation:
    """What matching code needs of an active authorisation (a snapshot, safe to share)."""

    id: int
    mode: str
    camera_ids: frozenset[str]
    watchlist_ids: tuple[int, ...]
    valid_from: float
    valid_to: float
    footage_from: float | None
    footage_to: float | None
    case_ref: str


def target(auth_id: int) -> str:
    return f"authorisation:{auth_id}"


def status(a: Authorisation, now: float) -> str:
    if a.revoked_at is not None:
        return "revoked"
    if a.approved_at is None:
        return "pending" if now < a.valid_to else "expired"
    if now >= a.valid_to:
        return "expired"
    if now < a.valid_from:
        return "scheduled"
    return "active"


def describe(a: Authorisation, now: float) -> dict[str, Any]:
    return {
        "id": a.id,
        "mode": a.mode,
        "status": status(a, now),
        "legal_basis": a.legal_basis,
        "authority": a.authority,
        "authority_ref": a.authority_ref,
        "objective": a.objective,
        "case_ref": a.case_ref,
        "watchlist_ids": list(a.watchlist_ids),
        "camera_ids": list(a.camera_ids),
        "valid_from": a.valid_from,
        "valid_to": a.valid_to,
        "footage_from": a.footage_from,
        "footage_to": a.footage_to,
        "keep_matches_days": a.keep_matches_days,
        "created_by": a.created_by,
        "created_at": a.created_at,
        "approved_by": a.approved_by,
        "approved_at": a.approved_at,
        "revoked_by": a.revoked_by,
        "revoked_at": a.revoked_at,
        "revoke_reason": a.revoke_reason,
        "started_at": a.started_at,
        "ended_at": a.ended_at,
        "purged": dict(a.purged or {}),
    }


def _text(name: str, value: str, min_len: int = 3) -> str:
    value = (value or "").strip()
    if len(value) < min_len:
        raise AuthorisationError(f"{name}: required (at least {min_len} characters)")
    return value


class AuthorisationService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
        on_end: Callable[[Authorisation], dict[str, int]] | None = None,
        watchlist_versions: Callable[[Iterable[int]], dict[int, str]] | None = None,
        refresh_s: float = 1.0,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.on_end = on_end
        self.watchlist_versions = watchlist_versions
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._active: list[ActiveAuthorisation] = []
        self._loaded_at = float("-inf")

    # -- requests and decisions ----------------------------------------------------------------
    def create(
        self,
        actor: str,
        *,
        mode: str,
        legal_basis: str,
        authority: str,
        authority_ref: str,
        objective: str,
        camera_ids: list[str],
        valid_from: float,
        valid_to: float,
        watchlist_ids: list[int] | None = None,
        footage_from: float | None = None,
        footage_to: float | None = None,
        keep_matches_days: float = 30.0,
        case_ref: str = "",
        client: str = "",
    ) -> Authorisation:
        if mode not in MODES:
            raise AuthorisationError(f"mode: must be one of {', '.join(MODES)}, not {mode!r}")
        if valid_to <= valid_from:
            raise AuthorisationError("valid_to: must be after valid_from")
        if valid_to - valid_from > MAX_VALIDITY_DAYS * DAY:
            raise AuthorisationError(
                f"validity: at most {MAX_VALIDITY_DAYS:g} days; ask for a new one after that"
            )
        if not camera_ids:
            raise AuthorisationError("camera_ids: name the cameras it covers (at least one)")
        if not 0 <= keep_matches_days <= 3650:
            raise AuthorisationError("keep_matches_days: between 0 and 3650")
        wl = sorted(set(watchlist_ids or []))
        if mode == "realtime":
            if not wl:
                raise AuthorisationError("watchlist_ids: real-time matching needs a watchlist")
            if footage_from is not None or footage_to is not None:
                raise AuthorisationError("footage window: only for retrospective authorisations")
        else:
            if footage_from is None or footage_to is None or footage_to <= footage_from:
                raise AuthorisationError(
                    "footage_from/footage_to: a retrospective authorisation names a closed "
                    "window of footage (footage_to after footage_from)"
                )
            if footage_to > self.clock() + 60:
                raise AuthorisationError(
                    "footage_to: recorded footage only (not in the future); real-time "
                    "identification needs a real-time authorisation"
                )
        with self.db.session() as s:
            cams = sorted(set(camera_ids))
            known = set(s.scalars(select(Camera.id).where(Camera.id.in_(cams))))
            if missing := [c for c in cams if c not in known]:
                raise AuthorisationError(f"camera_ids: no camera {', '.join(missing)}")
            if wl:
                found = set(s.scalars(select(FaceWatchlist.id).where(FaceWatchlist.id.in_(wl))))
                if missing_wl := [w for w in wl if w not in found]:
                    raise AuthorisationError(f"watchlist_ids: no watchlist {missing_wl}")
            row = Authorisation(
                mode=mode,
                legal_basis=_text("legal_basis", legal_basis),
                authority=_text("authority", authority, 2),
                authority_ref=_text("authority_ref", authority_ref, 1),
                objective=_text("objective", objective),
                case_ref=(case_ref or "").strip(),
                watchlist_ids=wl,
                camera_ids=cams,
                valid_from=valid_from,
                valid_to=valid_to,
                footage_from=footage_from,
                footage_to=footage_to,
                keep_matches_days=keep_matches_days,
                created_by=actor,
                created_at=self.clock(),
                revoke_reason="",
                purged={},
            )
            s.add(row)
            s.commit()
        self._audit(actor, "faces.authorisation.create", row, client, describe(row, self.clock()))
        return row

    def approve(self, actor: str, auth_id: int, client: str = "") -> Authorisation:
        """Approve a pending authorisation. The approver must not be its requester (the
        caller checks the approver's role)."""
        now = self.clock()
        with self.db.session() as s:
            row = self._row(s, auth_id)
            st = status(row, now)
            if st != "pending":
                raise AuthorisationError(f"authorisation {auth_id} is {st}, not pending")
            if row.created_by == actor:
                self._audit(actor, "faces.authorisation.approve", row, client, {}, "denied")
                raise AuthorisationError(
                    "the user who requested an authorisation cannot approve it"
                )
            row.approved_by = actor
            row.approved_at = now
            s.commit()
        self.invalidate()
        self._audit(actor, "faces.authorisation.approve", row, client, {"status": status(row, now)})
        return row

    def revoke(self, actor: str, auth_id: int, reason: str, client: str = "") -> Authorisation:
        reason = _text("reason", reason)
        now = self.clock()
        with self.db.session() as s:
            row = self._row(s, auth_id)
            st = status(row, now)
            if st in ("revoked", "expired"):
                raise AuthorisationError(f"authorisation {auth_id} is already {st}")
            row.revoked_by = actor
            row.revoked_at = now
            row.revoke_reason = reason
            s.commit()
        self.invalidate()
        self._audit(actor, "faces.authorisation.revoke", row, client, {"reason": reason})
        return row

    # -- queries -------------------------------------------------------------------------------
    def get(self, auth_id: int) -> Authorisation:
        with self.db.session() as s:
            return self._row(s, auth_id)

    def all(self) -> list[Authorisation]:
        with self.db.session() as s:
            return list(s.scalars(select(Authorisation).order_by(Authorisation.id.desc())))

    def _row(self, s: Any, auth_id: int) -> Authorisation:
        row = s.get(Authorisation, auth_id)
        if row is None:
            raise NotFound(f"no authorisation {auth_id}")
        result: Authorisation = row
        return result

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def active(self, now: float | None = None) -> list[ActiveAuthorisation]:
        """The authorisations active now (cached for `refresh_s`; expiry is checked on
        every call, so an expired one never leaks out of the cache)."""
        now = self.clock() if now is None else now
        with self._lock:
            if now - self._loaded_at >= self.refresh_s or now < self._loaded_at:
                with self.db.session() as s:
                    rows = s.scalars(
                        select(Authorisation).where(
                            Authorisation.approved_at.is_not(None),
                            Authorisation.revoked_at.is_(None),
                            Authorisation.valid_to > now,
                        )
                    ).all()
                self._active = [
                    ActiveAuthorisation(
                        r.id,
                        r.mode,
                        frozenset(r.camera_ids),
                        tuple(r.watchlist_ids),
                        r.valid_from,
                        r.valid_to,
                        r.footage_from,
                        r.footage_to,
                        r.case_ref,
                    )
                    for r in rows
                ]
                self._loaded_at = now
            return [a for a in self._active if a.valid_from <= now < a.valid_to]

    def covering(
        self, mode: str, camera_id: str, now: float | None = None
    ) -> list[ActiveAuthorisation]:
        return [a for a in self.active(now) if a.mode == mode and camera_id in a.camera_ids]

    def cameras(self, mode: str = "realtime", now: float | None = None) -> set[str]:
        """Cameras with an active authorisation of `mode`: where face analysis may run."""
        out: set[str] = set()
        for a in self.active(now):
            if a.mode == mode:
                out |= a.camera_ids
        return out

    # -- the use log ---------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> bool:
        """Log starts and ends of use; purge what ended. True when something changed (the
        caller then re-applies face analysis to cameras)."""
        now = self.clock() if now is None else now
        changed = False
        with self.db.session() as s:
            rows = s.scalars(
                select(Authorisation).where(
                    Authorisation.ended_at.is_(None),
                    Authorisation.approved_at.is_not(None)
                    | Authorisation.revoked_at.is_not(None)
                    | (Authorisation.valid_to <= now),
                )
            ).all()
        for row in rows:
            st = status(row, now)
            if st == "active" and row.started_at is None:
                self._mark(row.id, started_at=now)
                self._audit("system", "faces.use.start", row, "", self._use_details(row))
                changed = True
            elif st in ("expired", "revoked"):
                purged = self.on_end(row) if self.on_end is not None else {}
                self._mark(row.id, ended_at=now, purged=purged)
                if row.started_at is not None:
                    self._audit(
                        "system", "faces.use.end", row, "", {**self._use_details(row), "why": st}
                    )
                self._audit("system", "faces.authorisation.purge", row, "", {"deleted": purged})
                changed = True
        if changed:
            self.invalidate()
        return changed

    def _use_details(self, row: Authorisation) -> dict[str, Any]:
        versions = self.watchlist_versions(row.watchlist_ids) if self.watchlist_versions else {}
        return {
            "mode": row.mode,
            "cameras": list(row.camera_ids),
            "watchlists": [{"id": w, "version": versions.get(w, "")} for w in row.watchlist_ids],
            "footage": [row.footage_from, row.footage_to] if row.mode == "retrospective" else None,
        }

    def _mark(self, auth_id: int, **values: Any) -> None:
        with self.db.session() as s:
            row = s.get(Authorisation, auth_id)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)
                s.commit()

    def use_log(self, auth_id: int) -> dict[str, Any]:
        """The authorisation and every audit entry of its use, oldest first."""
        row = self.get(auth_id)
        with self.db.session() as s:
            entries = s.scalars(
                select(AuditEntry)
                .where(AuditEntry.target == target(auth_id))
                .order_by(AuditEntry.seq)
            ).all()
        return {
            "authorisation": describe(row, self.clock()),
            "entries": [
                {
                    "seq": e.seq,
                    "ts": e.ts,
                    "actor": e.actor,
                    "action": e.action,
                    "outcome": e.outcome,
                    "purpose": e.purpose,
                    "details": e.details,
                    "hash": e.hash,
                }
                for e in entries
            ],
        }

    def _audit(
        self,
        actor: str,
        action: str,
        row: Authorisation,
        client: str,
        details: dict[str, Any],
        outcome: str = "ok",
    ) -> None:
        self.audit.append(
            AuditRecord(
                actor=actor,
                action=action,
                target=target(row.id),
                outcome=outcome,
                purpose=row.objective,
                client=client,
                details=details,
            )
        )
