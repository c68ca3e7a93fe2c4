"""API request and response bodies (pydantic: only at the edge)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from citywatch.config import AnalyticsConfig, CameraRetention, Location, StreamConfig

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class LoginResponse(BaseModel):
    token: str
    username: str
    role: str
    expires_in: int


class Me(BaseModel):
    username: str
    role: str
    camera_ids: list[str] | None
    permissions: list[str]


class StreamOut(BaseModel):
    url: str  # password removed
    username: str | None
    has_password: bool


class CameraOut(BaseModel):
    id: str
    name: str
    location: Location
    main_stream: StreamOut
    sub_stream: StreamOut | None
    purpose: str
    legal_basis: str
    enabled: bool
    source: str
    retention: CameraRetention
    analytics: AnalyticsConfig
    health: dict[str, Any]


class CameraIn(BaseModel):
    """A camera as the API accepts it (same fields as the YAML file)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str = Field(min_length=1, max_length=200)
    location: Location = Field(default_factory=Location)
    main_stream: StreamConfig
    sub_stream: StreamConfig | None = None
    purpose: str = Field(min_length=3, max_length=2000)
    legal_basis: str = Field(min_length=3, max_length=2000)
    enabled: bool = True
    retention: CameraRetention = Field(default_factory=CameraRetention)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)


class SegmentOut(BaseModel):
    id: int
    camera_id: str
    start_ts: float
    end_ts: float
    duration: float
    bytes: int
    codec: str
    width: int
    height: int


class GapOut(BaseModel):
    start_ts: float
    end_ts: float


class Timeline(BaseModel):
    camera_id: str
    start_ts: float
    end_ts: float
    recorded: list[GapOut]
    gaps: list[GapOut]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=2, max_length=100)
    password: str = Field(min_length=10, max_length=1000)
    role: str
    camera_ids: list[str] | None = None


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = None
    camera_ids: list[str] | None = None
    limit_cameras: bool | None = Field(
        default=None, description="false lifts the camera limit; true applies camera_ids"
    )
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1000)


class UserOut(BaseModel):
    username: str
    role: str
    camera_ids: list[str] | None
    disabled: bool
    created_at: float


class AuditOut(BaseModel):
    seq: int
    ts: float
    actor: str
    action: str
    target: str
    purpose: str
    outcome: str
    client: str
    details: dict[str, Any]
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None
    problem: str
