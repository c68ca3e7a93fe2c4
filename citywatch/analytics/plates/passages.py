"""Dedicated licence-plate (LPR) cameras: plates found on the whole frame, with no vehicle
tracks, grouped into passages: one vehicle passing gives one fused read.

    passages = PlatePassages(countries=("RS", "EU"))
    for frame, ts in frames:                        # only frames the plate detector ran on
        for done in passages.update(reader.read(frame), ts, frame.shape[1::-1]):
            store(done.plate.text, done.direction)
    leftover = passages.finish()                    # the stream stopped

A read joins an open passage when its text is near the passage's (at most ``max_edits``
edits, OCR confusions counting half) and its box is where that plate could be now (not
further than ``reach`` plate widths per second from where it was last); or, whatever it
reads, when its box overlaps the passage's last box or where that box was heading (IoU >=
``overlap`` with the box moved on at the speed between the passage's last two reads: the
same physical plate, misread in this frame). Each passage takes at most one read per frame.
Otherwise the read starts a new passage. A passage not seen for ``gap_s`` and in at least
two detector runs (counted when the detector runs, so a parked car at a barrier stays one
passage while nothing moves, and a loaded machine whose runs are far apart does not cut a
passage in two) is closed and its reads fused with :func:`.fusion.fuse`, the same voting
as for vehicle tracks.

Direction from the plate's motion: the first directional line (``lines``, normalised image
points, as for tracks: "A->B" or "B->A") the plate's centre crossed; else "approaching" or
"leaving" when the plate grew or shrank by a quarter or more; else the main way it moved,
"left", "right", "up" or "down", when it moved at least half its width; else None.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from citywatch.analytics.plates.fusion import FusedPlate, PlateFusion, weighted_distance
from citywatch.analytics.plates.reader import Box, PlateRead
from citywatch.analytics.zones import Line, crossing

__all__ = ["Passage", "PassageResult", "PlatePassages", "direction_of"]

MAX_PATH = 200  # (ts, box) kept per passage
MAX_TEXTS = 64  # distinct texts a passage is matched against
MIN_MISSES = 2  # detector runs without the plate before its passage can close


@dataclass
class Passage:
    """One plate passing in front of the camera (open while it is seen)."""

    id: int
    fusion: PlateFusion
    first_ts: float
    last_ts: float
    path: list[tuple[float, Box]] = field(default_factory=list)  # (ts, box) per read
    texts: set[str] = field(default_factory=set)  # the normalised texts read so far
    best_ts: float = 0.0
    best_weight: float = -1.0
    misses: int = 0  # detector runs since it was last seen

    @property
    def last_box(self) -> Box:
        return self.path[-1][1]


@dataclass(frozen=True)
class PassageResult:
    """A closed passage: its fused read, when the best read was taken, and direction."""

    passage_id: int
    plate: FusedPlate
    ts: float
    first_ts: float
    last_ts: float
    direction: str | None
    path: list[tuple[float, Box]]


def _iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _predicted(p: Passage, ts: float) -> Box:
    """Where the passage's plate should be at ``ts``, moving on as between its last two
    reads (its last box if it has one read)."""
    if len(p.path) < 2:
        return p.last_box
    (t0, a), (t1, b) = p.path[-2], p.path[-1]
    k = (ts - t1) / (t1 - t0) if t1 > t0 else 0.0
    return (
        b[0] + (b[0] - a[0]) * k,
        b[1] + (b[1] - a[1]) * k,
        b[2] + (b[2] - a[2]) * k,
        b[3] + (b[3] - a[3]) * k,
    )


def direction_of(
    path: Sequence[tuple[float, Box]], size: tuple[int, int], lines: Sequence[Line] = ()
) -> str | None:
    """Which way a plate moved (see the module doc). ``path``: (ts, box) in pixels of an
    image of ``size`` (width, height), oldest first."""
    if len(path) < 2:
        return None
    w, h = max(1, size[0]), max(1, size[1])
    centres = [(cx / w, cy / h) for cx, cy in (_centre(b) for _, b in path)]
    for p0, p1 in zip(centres, centres[1:], strict=False):
        for line in lines:
            crossed = crossing(line, p0, p1)
            if crossed is not None:
                return crossed
    first, last = path[0][1], path[-1][1]
    h0, h1 = first[3] - first[1], last[3] - last[1]
    if h0 > 0 and h1 > 0:
        if h1 / h0 >= 1.25:
            return "approaching"
        if h1 / h0 <= 0.8:
            return "leaving"
    (x0, y0), (x1, y1) = _centre(first), _centre(last)
    dx, dy = x1 - x0, y1 - y0
    width = max(first[2] - first[0], last[2] - last[0], 1.0)
    if max(abs(dx), abs(dy)) < width / 2:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


class PlatePassages:
    """Groups the plate reads of an LPR camera's frames into passages (see the module
    doc). Not thread-safe: one per camera."""

    def __init__(
        self,
        countries: Iterable[str] | None = None,
        *,
        gap_s: float = 1.5,
        max_edits: float = 2.0,
        overlap: float = 0.3,
        reach: float = 30.0,
        max_reads: int = 20,
        lines: Sequence[Line] = (),
    ) -> None:
        if gap_s <= 0 or max_edits < 0 or not 0 < overlap <= 1 or reach <= 0:
            raise ValueError("gap_s and reach must be > 0, max_edits >= 0, overlap in (0, 1]")
        self.countries = list(countries) if countries is not None else None
        PlateFusion(self.countries)  # ValueError now for an unknown country
        self.gap_s = gap_s
        self.max_edits = max_edits
        self.overlap = overlap
        self.reach = reach
        self.max_reads = max_reads
        self.lines = list(lines)
        self.open: list[Passage] = []
        self._next_id = 1
        self._size = (1, 1)

    def _fits(self, p: Passage, read: PlateRead, ts: float) -> float | None:
        """How well ``read`` continues passage ``p`` (higher is better), None if not."""
        last = p.last_box
        iou = max(_iou(read.box, last), _iou(read.box, _predicted(p, ts)))
        if iou >= self.overlap:
            return 2.0 + iou  # the same plate where it was: whatever the OCR said
        dist = min(
            (weighted_distance(read.normalised, t) for t in p.texts),
            default=float("inf"),
        )
        if dist > self.max_edits:
            return None
        (x0, y0), (x1, y1) = _centre(last), _centre(read.box)
        width = max(last[2] - last[0], read.box[2] - read.box[0], 1.0)
        moved = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 / width
        if moved > self.reach * max(ts - p.last_ts, 0.2) + 1.0:
            return None
        return 1.0 - dist / (self.max_edits + 1) + iou

    def update(
        self, reads: Sequence[PlateRead], ts: float, size: tuple[int, int]
    ) -> list[PassageResult]:
        """The reads of one frame (at ``ts``, image ``size`` = width, height) the detector
        ran on; returns the passages this frame closed."""
        self._size = size
        taken: set[int] = set()
        pairs = sorted(
            (
                (score, i, j)
                for i, r in enumerate(reads)
                if r.normalised
                for j, p in enumerate(self.open)
                if (score := self._fits(p, r, ts)) is not None
            ),
            reverse=True,
        )
        matched: dict[int, int] = {}  # read index -> passage index
        for _, i, j in pairs:
            if i not in matched and j not in taken:
                matched[i] = j
                taken.add(j)
        for i, r in enumerate(reads):
            if not r.normalised:
                continue
            if i in matched:
                self._add(self.open[matched[i]], r, ts)
            else:
                p = Passage(
                    self._next_id, PlateFusion(self.countries, max_reads=self.max_reads), ts, ts
                )
                self._next_id += 1
                self._add(p, r, ts)
                self.open.append(p)
        for j, p in enumerate(self.open):
            p.misses = 0 if j in taken or p.last_ts == ts else p.misses + 1
        closed = [p for p in self.open if self._gone(p, ts)]
        self.open = [p for p in self.open if not self._gone(p, ts)]
        return [res for p in closed if (res := self._close(p)) is not None]

    def _gone(self, p: Passage, ts: float) -> bool:
        # missed for gap_s and at least twice: a slow (loaded) machine, whose detector runs
        # are far apart, does not cut a passage in two
        return ts - p.last_ts > self.gap_s and p.misses >= MIN_MISSES

    def finish(self) -> list[PassageResult]:
        """Close every open passage (the stream stopped)."""
        closed, self.open = self.open, []
        return [res for p in closed if (res := self._close(p)) is not None]

    def _add(self, p: Passage, read: PlateRead, ts: float) -> None:
        p.fusion.add(read)
        if len(p.texts) < MAX_TEXTS:
            p.texts.add(read.normalised)
        p.path.append((ts, read.box))
        if len(p.path) > MAX_PATH:  # a car parked in view: keep where it came from
            del p.path[1 : len(p.path) - MAX_PATH // 2]
        p.last_ts = ts
        weight = read.ocr_confidence * (0.5 + read.quality)
        if weight > p.best_weight:
            p.best_weight, p.best_ts = weight, ts

    def _close(self, p: Passage) -> PassageResult | None:
        fused = p.fusion.result()
        if fused is None:
            return None
        return PassageResult(
            p.id,
            fused,
            p.best_ts,
            p.first_ts,
            p.last_ts,
            direction_of(p.path, self._size, self.lines),
            list(p.path),
        )
