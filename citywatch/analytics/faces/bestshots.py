"""Best face shots per track: keep the top-k faces of each tracked person by quality score,
with bounded memory, and hand them over when the track ends."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from citywatch.analytics.faces.types import Face

__all__ = ["BestShots", "Shot"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class Shot:
    """One face of a track at time ``ts`` (seconds, the caller's clock)."""

    score: float
    ts: float
    face: Face = field(compare=False)
    track_id: Hashable = field(compare=False, default=None)


@dataclass(slots=True)
class _Track:
    heap: list[tuple[float, int, Shot]] = field(default_factory=list)  # min-heap by score
    last_ts: float = 0.0
    offered: int = 0


class BestShots:
    """Per-track best-shot picker.

    ``offer(track_id, ts, face)`` keeps the face if it is among the ``per_track`` best of
    that track by ``face.quality.score`` (and at least ``min_score``); ``pop(track_id)``
    gives the kept shots, best first, and forgets the track; ``finished(active_ids)`` does
    that for every track no longer active, ``idle(now, after_s)`` for every track not
    offered a face for ``after_s`` seconds. At most ``max_tracks`` tracks are held: past
    that the track offered a face the longest ago is dropped (counted in
    ``dropped_tracks``). Memory: at most per_track x max_tracks faces (each about 70 kB with
    its 150x150 chip). Not thread-safe."""

    def __init__(self, per_track: int = 3, max_tracks: int = 512, min_score: float = 0.0) -> None:
        if per_track < 1 or max_tracks < 1:
            raise ValueError("per_track and max_tracks must be at least 1")
        self.per_track = per_track
        self.max_tracks = max_tracks
        self.min_score = min_score
        self.dropped_tracks = 0
        self._tracks: OrderedDict[Hashable, _Track] = OrderedDict()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._tracks

    def offer(self, track_id: Hashable, ts: float, face: Face) -> bool:
        """Keep ``face`` if it is among the best of its track; True when kept."""
        score = face.quality.score
        track = self._tracks.get(track_id)
        if score < self.min_score:
            if track is not None:
                track.last_ts = max(track.last_ts, ts)
                track.offered += 1
            return False
        if track is None:
            while len(self._tracks) >= self.max_tracks:
                dropped, _ = self._tracks.popitem(last=False)
                self.dropped_tracks += 1
                logger.warning("best shots: too many tracks, dropped track %s", dropped)
            track = self._tracks[track_id] = _Track()
        else:
            self._tracks.move_to_end(track_id)
        track.last_ts = max(track.last_ts, ts)
        track.offered += 1
        item = (score, next(self._seq), Shot(score, ts, face, track_id))
        if len(track.heap) < self.per_track:
            heapq.heappush(track.heap, item)
            return True
        if score > track.heap[0][0]:
            heapq.heapreplace(track.heap, item)
            return True
        return False

    def best(self, track_id: Hashable) -> list[Shot]:
        """The kept shots of a track, best first (the track stays)."""
        track = self._tracks.get(track_id)
        if track is None:
            return []
        return [s for _, _, s in sorted(track.heap, key=lambda i: (-i[0], i[1]))]

    def pop(self, track_id: Hashable) -> list[Shot]:
        """The kept shots of a track, best first, and forget the track ([] if unknown)."""
        shots = self.best(track_id)
        self._tracks.pop(track_id, None)
        return shots

    def finished(self, active_ids: Iterable[Hashable]) -> dict[Hashable, list[Shot]]:
        """Pop every track not in ``active_ids``: {track_id: shots best first}."""
        active = set(active_ids)
        return {t: self.pop(t) for t in [t for t in self._tracks if t not in active]}

    def idle(self, now: float, after_s: float) -> dict[Hashable, list[Shot]]:
        """Pop every track not offered a face since ``now - after_s``."""
        stale = [t for t, tr in self._tracks.items() if tr.last_ts < now - after_s]
        return {t: self.pop(t) for t in stale}
