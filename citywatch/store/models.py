"""Database models. Times are UTC seconds since the epoch (float) for cheap range queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
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
        Index("ix_plate_reads_normalised_ts", "normalised", "ts"),
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
    """Padded bigrams of PlateText.canon (an n-gram index that works on every engine)."""

    __tablename__ = "plate_grams"

    gram: Mapped[str] = mapped_column(String(4), primary_key=True)
    text_id: Mapped[int] = mapped_column(
        ForeignKey("plate_texts.id", ondelete="CASCADE"), primary_key=True
    )


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
