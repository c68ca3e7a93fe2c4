"""Configuration: the YAML file an admin writes, validated with pydantic.

A bad file is rejected whole, with an error that names the field and the line, so the
server never starts with half a config.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CAMERA_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ConfigError(ValueError):
    """A configuration problem, with the location (file:line) of each bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(StrictModel):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str = ""


class StreamConfig(StrictModel):
    """One video stream of a camera: rtsp://, rtsps://, http(s):// MJPEG, or file://."""

    url: str
    username: str | None = None
    password: str | None = Field(default=None, repr=False)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme not in {"rtsp", "rtsps", "http", "https", "file"}:
            raise ValueError("url must start with rtsp://, rtsps://, http(s):// or file://")
        return value

    @property
    def kind(self) -> Literal["rtsp", "http", "file"]:
        scheme = urlsplit(self.url).scheme.lower()
        if scheme.startswith("rtsp"):
            return "rtsp"
        if scheme.startswith("http"):
            return "http"
        return "file"

    def connect_url(self) -> str:
        """The URL with credentials in it, for the demuxer only. Never log it."""
        parts = urlsplit(self.url)
        if self.username is None or parts.scheme == "file":
            return self.url
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        cred = quote(self.username, safe="")
        if self.password is not None:
            cred += ":" + quote(self.password, safe="")
        return urlunsplit((parts.scheme, f"{cred}@{host}", parts.path, parts.query, ""))

    def safe_url(self) -> str:
        """The URL with any password removed: safe for logs, the API and the audit log."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class CameraRetention(StrictModel):
    max_age_hours: float | None = Field(default=None, gt=0)
    quota_gb: float | None = Field(default=None, gt=0)


Point = tuple[float, float]
DETECTABLE = ("person", "bicycle", "car", "motorcycle", "bus", "truck")


def _normalised(points: list[Point]) -> list[Point]:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError("coordinates are fractions of the image: 0..1")
    return points


class ZoneConfig(StrictModel):
    """A polygon over the image (x, y as fractions of width and height)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _.-]+$")
    polygon: list[Point] = Field(min_length=3, max_length=64)
    dwell_s: float | None = Field(default=None, gt=0, description="loitering alarm after")
    classes: list[str] | None = None

    _check = field_validator("polygon")(_normalised)


class LineConfig(StrictModel):
    """A tripwire from a to b; crossings are counted A->B and B->A (see analytics.zones)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _.-]+$")
    a: Point
    b: Point
    classes: list[str] | None = None

    @field_validator("a", "b")
    @classmethod
    def _in_image(cls, p: Point) -> Point:
        _normalised([p])
        return p


class AnalyticsConfig(StrictModel):
    """Live analytics of one camera. Off unless enabled."""

    enabled: bool = False
    fps: float = Field(default=5.0, gt=0, le=30)
    keyframes_only: bool = Field(default=False, description="low-power mode")
    width: int = Field(default=768, ge=160, le=3840, description="analysis image width")
    motion_gating: bool = True
    motion_mask: list[list[Point]] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(DETECTABLE, 0.4),
        description="per-class minimum confidence; a class left out is not reported",
    )
    min_height: float = Field(default=0.0, ge=0, le=1, description="fraction of image height")
    max_height: float = Field(default=1.0, gt=0, le=1)
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)
    plates: bool = Field(default=False, description="read the licence plate of each vehicle")
    plate_countries: list[str] | None = Field(
        default=None, description="plate format rules to apply (all built-in ones if unset)"
    )
    plate_retention_days: float = Field(default=30.0, gt=0, description="reads and crops")
    plate_mode: Literal["vehicles", "lpr"] = Field(
        default="vehicles",
        description="vehicles: read the plate of each tracked vehicle; lpr: a dedicated "
        "licence-plate camera, plates found on the whole frame (no vehicle detection), one "
        "fused read per passing plate",
    )

    @field_validator("thresholds")
    @classmethod
    def _known_classes(cls, value: dict[str, float]) -> dict[str, float]:
        for name, t in value.items():
            if name not in DETECTABLE:
                raise ValueError(f"unknown class {name!r}; one of {', '.join(DETECTABLE)}")
            if not 0 < t <= 1:
                raise ValueError(f"threshold of {name} must be in (0, 1]")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> AnalyticsConfig:
        names = [z.name for z in self.zones] + [ln.name for ln in self.lines]
        if len(names) != len(set(names)):
            raise ValueError("zone and line names must be unique per camera")
        return self

    @model_validator(mode="after")
    def _lpr_reads_plates(self) -> AnalyticsConfig:
        if self.plate_mode == "lpr" and not self.plates:
            raise ValueError("plate_mode 'lpr' needs plates: true")
        return self


class CameraConfig(StrictModel):
    id: str
    name: str = Field(min_length=1)
    location: Location = Field(default_factory=Location)
    main_stream: StreamConfig
    sub_stream: StreamConfig | None = None
    purpose: str = Field(min_length=3, description="Why this camera exists (published).")
    legal_basis: str = Field(min_length=3, description="The law or decision that allows it.")
    enabled: bool = True
    retention: CameraRetention = Field(default_factory=CameraRetention)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not CAMERA_ID.match(value):
            raise ValueError("id must be 1-63 chars of a-z, 0-9, '_' or '-', starting alphanumeric")
        return value


class RetentionConfig(StrictModel):
    max_age_hours: float = Field(default=24 * 7, gt=0)
    quota_gb: float | None = Field(default=None, gt=0)
    free_reserve_gb: float = Field(default=1.0, ge=0)
    sweep_interval_s: float = Field(default=30.0, gt=0)


class RecordingConfig(StrictModel):
    segment_seconds: float = Field(default=10.0, ge=1, le=300)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    session_hours: float = Field(default=12.0, gt=0)
    secure_cookies: bool = False


class AlertRule(StrictModel):
    """When an analytics event matches, raise an alert with a priority."""

    name: str = Field(min_length=1, max_length=100)
    on: Literal["object", "enter", "leave", "dwell", "cross"] = "object"
    cameras: list[str] | None = None
    classes: list[str] | None = None
    zone: str | None = Field(default=None, description="zone or line name")
    direction: Literal["A->B", "B->A"] | None = None
    between: tuple[str, str] | None = Field(
        default=None, description='UTC time window, e.g. ["22:00", "06:00"]'
    )
    priority: Literal["low", "medium", "high", "critical"] = "medium"

    @field_validator("between")
    @classmethod
    def _hhmm(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None:
            for t in value:
                if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", t):
                    raise ValueError("times are HH:MM (UTC)")
        return value


class MqttConfig(StrictModel):
    host: str
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    topic_prefix: str = "citywatch"


Topic = Literal["alert", "event"]


def _alerts_only() -> list[Topic]:
    return ["alert"]


class WebhookConfig(StrictModel):
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=16, repr=False, description="HMAC-SHA256 key")
    topics: list[Topic] = Field(default_factory=_alerts_only)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_attempts: int = Field(default=5, ge=1, le=20)


class DetectorConfig(StrictModel):
    model: str = Field(default="nanodet", description="built-in name or path to a model spec")
    workers: int = Field(default=1, ge=1, le=64, description="analysis worker processes")
    threads: int = Field(default=1, ge=1, le=64, description="inference threads per worker")


class FacesConfig(StrictModel):
    """Face identification. It runs only under an approved legal authorisation (see
    citywatch/governance/authorisations.py); these settings do not turn it on."""

    threshold: float | None = Field(
        default=None, gt=0, le=1, description="similarity for a candidate (None: calibrated)"
    )
    detector: str = Field(default="hog", description="face detector name")
    min_face_px: int = Field(default=40, ge=16, le=1000, description="smaller faces are skipped")
    shots_per_track: int = Field(default=3, ge=1, le=20, description="faces sent per person")
    search_fps: float = Field(default=2.0, gt=0, le=25, description="retrospective decode rate")


class Settings(StrictModel):
    data_dir: Path = Path("./citywatch-data")
    database_url: str | None = None
    server: ServerConfig = Field(default_factory=ServerConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    alerts: list[AlertRule] = Field(default_factory=list)
    mqtt: MqttConfig | None = None
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    faces: FacesConfig = Field(default_factory=FacesConfig)

    @model_validator(mode="after")
    def _unique_ids(self) -> Settings:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"duplicate camera id {cam.id!r}")
            seen.add(cam.id)
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'citywatch.db').resolve()}"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"


def _node_at(root: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """Walk the YAML node tree along a pydantic error location; return the deepest node."""
    node = root
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if nxt is None:
                return node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return node
            node = node.value[key]
        else:
            return node
    return node


def parse_settings(text: str, source: str = "<config>") -> Settings:
    """Parse and validate a YAML config. Raise ConfigError naming file, line and field."""
    try:
        root = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: the top level must be a mapping"])
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            node = _node_at(root, loc)
            line = node.start_mark.line + 1 if node is not None else 1
            field = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{source}:{line}: {field}: {err['msg']}")
        raise ConfigError(problems) from exc


def load_settings(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    settings = parse_settings(text, str(path))
    if not settings.data_dir.is_absolute():
        settings.data_dir = (path.parent / settings.data_dir).resolve()
    return settings
