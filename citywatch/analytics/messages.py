"""What an analysis worker reports to the server process. Small, picklable values:
pixels never cross the process boundary, only JPEG snapshots of chosen moments.

Positions and boxes are normalised to the image (0..1), so consumers need not know the
analysis resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from citywatch.analytics.types import Box
from citywatch.analytics.zones import ZoneEvent


@dataclass(frozen=True)
class TrackedBox:
    track_id: int
    class_name: str
    confidence: float
    box: Box  # normalised
    stationary: bool = False


@dataclass(frozen=True)
class FrameResult:
    """Tracks of one analysed frame (for the live overlay)."""

    camera_id: str
    ts: float
    boxes: list[TrackedBox]


@dataclass(frozen=True)
class TrackStarted:
    camera_id: str
    track_id: int
    class_name: str
    ts: float  # first sighting
    box: Box
    confidence: float
    revived: bool = False


@dataclass(frozen=True)
class ZoneHit:
    camera_id: str
    event: ZoneEvent


@dataclass(frozen=True)
class Snapshot:
    """A better picture of a track: the crop and the whole frame, as JPEG."""

    camera_id: str
    track_id: int
    ts: float
    box: Box
    score: float
    crop_jpeg: bytes
    frame_jpeg: bytes


@dataclass(frozen=True)
class TrackEnded:
    camera_id: str
    track_id: int
    class_name: str
    first_ts: float
    last_ts: float
    max_confidence: float
    stationary: bool
    path: list[tuple[float, float, float]] = field(default_factory=list)  # ts, x, y


@dataclass(frozen=True)
class PlateResult:
    """The one plate read of a vehicle track: the reads of several frames, fused."""

    camera_id: str
    track_id: int
    ts: float  # when the best read was taken
    text: str
    normalised: str
    format: str
    country: str
    confidence: float
    reads: int  # frames read
    agreeing: int  # of which agree with the result
    crop_jpeg: bytes
    direction: str | None = None  # last line crossing of the vehicle, if any
    frame_jpeg: bytes = b""  # dedicated LPR cameras: the frame of the best read (no vehicle)


@dataclass(frozen=True)
class FaceSeen:
    """A good face shot of a person track, sent only from cameras where an authorisation
    allows face identification. The server matches it against the authorised watchlists
    and keeps nothing of it when it matches no one."""

    camera_id: str
    track_id: int
    ts: float
    box: Box  # the face, normalised to the frame
    embedding: bytes  # float32 x 128, L2-normalised
    quality: dict[str, float]
    crop_jpeg: bytes


@dataclass(frozen=True)
class AnalyticsStatus:
    """Per-camera analysis health, sent about once a second."""

    camera_id: str
    state: str  # starting, running, error, stopped
    error: str = ""
    decoded_fps: float = 0.0
    analysed_fps: float = 0.0
    dropped: int = 0  # frames skipped because analysis fell behind
    frame_age_ms: float = 0.0  # how old frames are when analysis finishes (p95, last second)
    detect_ms: float = 0.0  # mean detector time per analysed frame
    detector_runs: int = 0
    motion_skips: int = 0  # frames where no motion spared the detector


Message = (
    FrameResult
    | TrackStarted
    | ZoneHit
    | Snapshot
    | PlateResult
    | FaceSeen
    | TrackEnded
    | AnalyticsStatus
)
