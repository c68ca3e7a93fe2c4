"""Database models. Times are UTC seconds since the epoch (float) for cheap range queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    main_url: Mapped[str] = mapped_column(Text)
    main_username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    main_password: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sub_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    sub_username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sub_password: Mapped[str | None] = mapped_column(String(500), nullable=True)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    max_age_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    quota_gb: Mapped[float | None] = mapped_column(Float, nullable=True)
    analytics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_camera_start", "camera_id", "start_ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(63))
    start_ts: Mapped[float] = mapped_column(Float)
    end_ts: Mapped[float] = mapped_column(Float)
    duration: Mapped[float] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500), unique=True)
    codec: Mapped[str] = mapped_column(String(32), default="")
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    keyframes: Mapped[list[float]] = mapped_column(JSON, default=list)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    camera_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class AuthSession(Base):
    __tablename__ = "auth_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    client: Mapped[str] = mapped_column(String(100), default="")


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(300), default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(100), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Event(Base):
    """One tracked object: camera, class, when, where it went, its best picture."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_camera_start", "camera_id", "start_ts"),
        Index("ix_events_start", "start_ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(63))
    track_id: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String(32), index=True)
    start_ts: Mapped[float] = mapped_column(Float)
    end_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_confidence: Mapped[float] = mapped_column(Float)
    zones: Mapped[list[str]] = mapped_column(JSON, default=list)
    crossings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    path: Mapped[list[list[float]]] = mapped_column(JSON, default=list)  # [ts, x, y] normalised
    box: Mapped[list[float]] = mapped_column(JSON, default=list)  # best box, normalised
    snapshot: Mapped[str | None] = mapped_column(String(300), nullable=True)
    frame: Mapped[str | None] = mapped_column(String(300), nullable=True)
    stationary: Mapped[bool] = mapped_column(Boolean, default=False)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_ts", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(16))
    camera_id: Mapped[str] = mapped_column(String(63), index=True)
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ZoneCount(Base):
    """Per-minute counts of zone entries and line crossings, for charts over time."""

    __tablename__ = "zone_counts"

    camera_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # enter, dwell, A->B, ...
    class_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds // 60
    count: Mapped[int] = mapped_column(Integer, default=0)


# licence plates (issue #4) ------------------------------------------------------------------
class PlateRead(Base):
    """One plate read: one vehicle passing one camera gives one row."""

    __tablename__ = "plate_reads"
    __table_args__ = (
        # PostgreSQL: the newest reads of a plate (and their camera and direction filters)
        # from the index alone; SQLite's index holds the id (rowid) anyway.
        Index(
            "ix_plate_reads_normalised_ts",
            "normalised",
            "ts",
            postgresql_include=["id", "camera_id", "direction"],
        ),
        Index("ix_plate_reads_camera_ts", "camera_id", "ts"),
        Index("ix_plate_reads_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(63))
    ts: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(String(32))  # as read
    normalised: Mapped[str] = mapped_column(String(32))  # A-Z 0-9 only
    country: Mapped[str] = mapped_column(String(8), default="")
    format: Mapped[str] = mapped_column(String(32), default="")  # "" = unformatted
    confidence: Mapped[float] = mapped_column(Float)
    crop: Mapped[str | None] = mapped_column(String(300), nullable=True)  # under data dir
    snapshot: Mapped[str | None] = mapped_column(String(300), nullable=True)
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    direction: Mapped[str | None] = mapped_column(String(16), nullable=True)


class PlateText(Base):
    """Every distinct normalised plate text seen (the search vocabulary): partial and fuzzy
    search look plates up here (trigram/bigram indexes), then fetch their reads."""

    __tablename__ = "plate_texts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    normalised: Mapped[str] = mapped_column(String(32), unique=True)
    canon: Mapped[str] = mapped_column(String(32), index=True)  # OCR confusions folded
    reads: Mapped[int] = mapped_column(Integer, default=0)
    first_ts: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)


class PlateGram(Base):
    """Trigrams of `^normalised$` of each PlateText (the n-gram index of partial search, on
    every engine). No foreign key: the store deletes a text's rows by key (a cascade would
    scan this table for every deleted text on SQLite)."""

    __tablename__ = "plate_grams"
    __table_args__ = {"sqlite_with_rowid": False}

    gram: Mapped[str] = mapped_column(String(4), primary_key=True)
    text_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class PlateVariant(Base):
    """PlateText.canon and each text one character shorter (the variant index of fuzzy
    search: texts within an edit or two share a variant or reach one; see
    citywatch.search.text.fuzzy_keys). No foreign key, as for PlateGram."""

    __tablename__ = "plate_variants"
    __table_args__ = {"sqlite_with_rowid": False}

    variant: Mapped[str] = mapped_column(String(32), primary_key=True)
    text_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Hotlist(Base):
    __tablename__ = "hotlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    owner: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[float] = mapped_column(Float)


class HotlistEntry(Base):
    __tablename__ = "hotlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hotlist_id: Mapped[int] = mapped_column(
        ForeignKey("hotlists.id", ondelete="CASCADE"), index=True
    )
    plate: Mapped[str] = mapped_column(String(32))  # normalised, or a pattern with * and ?
    reason: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(100))


# cases (investigations): what is attached to an open case outlives ordinary retention ------
class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    closed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    closed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CaseItem(Base):
    """A piece of evidence held by a case: a plate read, an alert, a face search, ..."""

    __tablename__ = "case_items"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "ref_id"),
        Index("ix_case_items_kind_ref", "kind", "ref_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[float] = mapped_column(Float)


# faces under legal authorisation (issue #5) -------------------------------------------------
class Authorisation(Base):
    """The legal authorisation biometric identification runs under. Without an active one
    (approved, not revoked, now within [valid_from, valid_to]) nothing is matched."""

    __tablename__ = "authorisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(16))  # realtime | retrospective
    legal_basis: Mapped[str] = mapped_column(Text)
    authority: Mapped[str] = mapped_column(String(200))  # issuing authority
    authority_ref: Mapped[str] = mapped_column(String(100))  # its reference number
    objective: Mapped[str] = mapped_column(Text)
    case_ref: Mapped[str] = mapped_column(String(100), default="")
    watchlist_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    camera_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[float] = mapped_column(Float)
    valid_to: Mapped[float] = mapped_column(Float)
    footage_from: Mapped[float | None] = mapped_column(Float, nullable=True)  # retrospective
    footage_to: Mapped[float | None] = mapped_column(Float, nullable=True)
    keep_matches_days: Mapped[float] = mapped_column(Float, default=30.0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    approved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    approved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoke_reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # use began
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # use ended, purged
    purged: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FaceWatchlist(Base):
    __tablename__ = "face_watchlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    version: Mapped[str] = mapped_column(String(64), default="")  # hash of its enrolments


class FacePerson(Base):
    __tablename__ = "face_persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    watchlist_id: Mapped[int] = mapped_column(
        ForeignKey("face_watchlists.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)


class FaceEnrolment(Base):
    """One enrolled face image, with where it came from and on what legal basis."""

    __tablename__ = "face_enrolments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("face_persons.id", ondelete="CASCADE"), index=True
    )
    image: Mapped[str] = mapped_column(String(300))  # face crop JPEG, under the data dir
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 x 128, L2-normalised
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded image
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[float] = mapped_column(Float)


class FaceCandidate(Base):
    """A proposed match: acted on only after two different reviewers confirm it."""

    __tablename__ = "face_candidates"
    __table_args__ = (Index("ix_face_candidates_ts", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authorisation_id: Mapped[int] = mapped_column(Integer, index=True)
    camera_id: Mapped[str] = mapped_column(String(63))
    ts: Mapped[float] = mapped_column(Float)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    search_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    watchlist_id: Mapped[int] = mapped_column(Integer)
    watchlist_version: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(Integer)
    enrolment_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    crop: Mapped[str | None] = mapped_column(String(300), nullable=True)
    crop_sha256: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # confirmed, rejected
    reviews: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class FaceSearch(Base):
    """A retrospective search by photo over a closed set of footage."""

    __tablename__ = "face_searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authorisation_id: Mapped[int] = mapped_column(Integer, index=True)
    case_ref: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(Text)
    probe_image: Mapped[str | None] = mapped_column(String(300), nullable=True)
    probe_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    probe_sha256: Mapped[str] = mapped_column(String(64), default="")
    camera_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_ts: Mapped[float] = mapped_column(Float)
    to_ts: Mapped[float] = mapped_column(Float)
    sample_fps: Mapped[float] = mapped_column(Float, default=2.0)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    segments_total: Mapped[int] = mapped_column(Integer, default=0)
    segments_done: Mapped[int] = mapped_column(Integer, default=0)
    faces_seen: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class FaceAppearance(Base):
    """A face seen in the footage of a retrospective search (its embedding is in the
    search's vector collection)."""

    __tablename__ = "face_appearances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(
        ForeignKey("face_searches.id", ondelete="CASCADE"), index=True
    )
    camera_id: Mapped[str] = mapped_column(String(63))
    ts: Mapped[float] = mapped_column(Float)
    box: Mapped[list[float]] = mapped_column(JSON, default=list)  # normalised
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    crop: Mapped[str | None] = mapped_column(String(300), nullable=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)  # similarity to the probe
