"""Multi-object tracking with stable ids, in the manner of ByteTrack.

Detections are associated with tracks by IoU with an optimal assignment, first the
confident ones, then the weak ones (which keep an occluded object's track alive without
starting new tracks). A constant-velocity prediction bridges short misses. A track is
confirmed after `min_hits` matches and ends after `max_lost_s` without one.

Stationary objects: a track that has not moved for `stationary_s` is marked stationary;
when such a track is lost and a new one appears where it stood, the old id comes back, so
a parked car that the detector misses now and then stays one object, not a new event
every minute.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from citywatch.analytics.types import Box, Detection

VEHICLES = frozenset({"bicycle", "car", "motorcycle", "bus", "truck"})


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> npt.NDArray[np.float64]:
    if not a or not b:
        return np.zeros((len(a), len(b)))
    A = np.asarray(a, float)[:, None, :]
    B = np.asarray(b, float)[None, :, :]
    ix = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    iy = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = ix * iy
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])
    out: npt.NDArray[np.float64] = inter / np.maximum(area_a + area_b - inter, 1e-9)
    return out


def same_kind(a: str, b: str) -> bool:
    """Detectors confuse car, truck and bus; a person never becomes a car."""
    return a == b or (a in VEHICLES and b in VEHICLES)


@dataclass
class Track:
    id: int
    class_name: str
    box: Box
    confidence: float
    first_ts: float
    last_ts: float
    hits: int = 1
    confirmed: bool = False
    max_confidence: float = 0.0
    velocity: tuple[float, float] = (0.0, 0.0)  # px/s of the box centre
    stationary: bool = False
    revived: bool = False  # a parked object that came back under its old id
    path: list[tuple[float, float, float]] = field(default_factory=list)  # ts, x, y (feet)
    class_votes: dict[str, float] = field(default_factory=dict)
    _still_since: float = 0.0
    _anchor: tuple[float, float] = (0.0, 0.0)

    @property
    def feet(self) -> tuple[float, float]:
        x1, _, x2, y2 = self.box
        return ((x1 + x2) / 2, y2)

    def predicted(self, ts: float) -> Box:
        dt = ts - self.last_ts
        vx, vy = self.velocity
        x1, y1, x2, y2 = self.box
        return (x1 + vx * dt, y1 + vy * dt, x2 + vx * dt, y2 + vy * dt)


@dataclass(frozen=True)
class TrackerConfig:
    high_threshold: float = 0.45
    low_threshold: float = 0.15
    match_iou: float = 0.25
    low_match_iou: float = 0.4
    min_hits: int = 3
    max_lost_s: float = 2.0
    stationary_s: float = 10.0
    stationary_px: float = 0.02  # share of the image diagonal
    revive_s: float = 600.0  # how long a lost stationary object can come back
    revive_iou: float = 0.6
    path_points: int = 200


@dataclass
class TrackerUpdate:
    active: list[Track]  # confirmed tracks seen this frame
    started: list[Track]  # confirmed this frame
    ended: list[Track]  # lost for good this frame (confirmed ones only)


class Tracker:
    def __init__(
        self, config: TrackerConfig | None = None, diagonal: float = 1000.0, first_id: int = 1
    ) -> None:
        self.config = config or TrackerConfig()
        self.diagonal = diagonal
        self._ids = itertools.count(first_id)
        self.tracks: list[Track] = []
        self._parked: list[tuple[float, Track]] = []  # (lost at, track)

    def update(self, detections: Sequence[Detection], ts: float) -> TrackerUpdate:
        cfg = self.config
        high = [d for d in detections if d.confidence >= cfg.high_threshold]
        low = [d for d in detections if cfg.low_threshold <= d.confidence < cfg.high_threshold]
        seen: set[int] = set()
        started: list[Track] = []
        waiting = list(range(len(self.tracks)))
        waiting, new_high = self._associate(waiting, high, cfg.match_iou, ts, seen, started)
        self._associate(waiting, low, cfg.low_match_iou, ts, seen, started)
        for i in new_high:
            track = self._new_track(high[i], ts)
            seen.add(track.id)
            if track.confirmed:
                started.append(track)

        ended: list[Track] = []
        keep: list[Track] = []
        for t in self.tracks:
            if t.id in seen or ts - t.last_ts <= cfg.max_lost_s:
                keep.append(t)
            elif t.confirmed:
                ended.append(t)
                if t.stationary:
                    self._parked.append((ts, t))
        self.tracks = keep
        self._parked = [(lost, t) for lost, t in self._parked if ts - lost < cfg.revive_s]
        active = [t for t in self.tracks if t.confirmed and t.id in seen]
        return TrackerUpdate(active, started, ended)

    def _associate(
        self,
        waiting: list[int],
        pool: list[Detection],
        min_iou: float,
        ts: float,
        seen: set[int],
        started: list[Track],
    ) -> tuple[list[int], list[int]]:
        """Match tracks (indices into self.tracks) with detections by IoU of the predicted
        box; returns the tracks and the detections left unmatched."""
        if not waiting or not pool:
            return waiting, list(range(len(pool)))
        tracks = [self.tracks[i] for i in waiting]
        ious = iou_matrix([t.predicted(ts) for t in tracks], [d.box for d in pool])
        for r, t in enumerate(tracks):
            for c, d in enumerate(pool):
                if not same_kind(t.class_name, d.class_name):
                    ious[r, c] = 0.0
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        for r, c in zip(*linear_sum_assignment(-ious), strict=True):
            if ious[r, c] < min_iou:
                continue
            was_confirmed = tracks[r].confirmed
            self._match(tracks[r], pool[c], ts)
            if tracks[r].confirmed and not was_confirmed:
                started.append(tracks[r])
            seen.add(tracks[r].id)
            matched_t.add(waiting[r])
            matched_d.add(int(c))
        return (
            [i for i in waiting if i not in matched_t],
            [c for c in range(len(pool)) if c not in matched_d],
        )

    def finish(self) -> list[Track]:
        """End every confirmed track (the stream stopped)."""
        ended = [t for t in self.tracks if t.confirmed]
        self.tracks = []
        return ended

    def _new_track(self, det: Detection, ts: float) -> Track:
        cfg = self.config
        for k, (_, old) in enumerate(self._parked):
            if (
                same_kind(old.class_name, det.class_name)
                and iou_matrix([old.box], [det.box])[0, 0] >= cfg.revive_iou
            ):
                # A parked object seen again where it stood: the same object, same id.
                del self._parked[k]
                old.box, old.last_ts = det.box, ts
                old.hits = max(old.hits, cfg.min_hits)
                old.confirmed = True
                old.revived = True
                self.tracks.append(old)
                return old
        t = Track(
            id=next(self._ids),
            class_name=det.class_name,
            box=det.box,
            confidence=det.confidence,
            first_ts=ts,
            last_ts=ts,
            max_confidence=det.confidence,
            confirmed=cfg.min_hits <= 1,
            class_votes={det.class_name: det.confidence},
            _still_since=ts,
            _anchor=((det.box[0] + det.box[2]) / 2, det.box[3]),
        )
        t.path.append((ts, *t.feet))
        self.tracks.append(t)
        return t

    def _match(self, t: Track, det: Detection, ts: float) -> None:
        cfg = self.config
        dt = ts - t.last_ts
        ocx, ocy = (t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2
        ncx, ncy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
        if dt > 0:
            vx, vy = (ncx - ocx) / dt, (ncy - ocy) / dt
            t.velocity = (0.6 * t.velocity[0] + 0.4 * vx, 0.6 * t.velocity[1] + 0.4 * vy)
        t.box = det.box
        t.confidence = det.confidence
        t.max_confidence = max(t.max_confidence, det.confidence)
        t.last_ts = ts
        t.hits += 1
        t.class_votes[det.class_name] = t.class_votes.get(det.class_name, 0.0) + det.confidence
        t.class_name = max(t.class_votes.items(), key=lambda kv: kv[1])[0]
        if t.hits >= cfg.min_hits:
            t.confirmed = True
        fx, fy = t.feet
        if math.hypot(fx - t._anchor[0], fy - t._anchor[1]) > cfg.stationary_px * self.diagonal:
            t._anchor = (fx, fy)
            t._still_since = ts
            t.stationary = False
        elif ts - t._still_since >= cfg.stationary_s:
            t.stationary = True
        t.path.append((ts, fx, fy))
        if len(t.path) > cfg.path_points:
            del t.path[1 : len(t.path) - cfg.path_points + 1]
