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


class Settings(StrictModel):
    data_dir: Path = Path("./citywatch-data")
    database_url: str | None = None
    server: ServerConfig = Field(default_factory=ServerConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)

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
