"""Zones (enter, leave, dwell) and directional tripwires (A->B, B->A crossings).

Geometry is in normalised image coordinates (0..1), so it survives a resolution change.
A track's position is its feet: the bottom centre of its box.

A line runs from `a` to `b`. Side A is on the right hand of someone walking from a to b
over the picture as displayed (a line drawn top to bottom has side A on the picture's
left; one drawn left to right has side A below it); side B is the other side. A track
whose feet move from side A to side B across the segment crosses "A->B".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Point = tuple[float, float]
ZoneEventKind = Literal["enter", "leave", "dwell", "cross"]


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[Point, ...]
    dwell_s: float | None = None  # loitering alarm after this long inside
    classes: frozenset[str] | None = None  # None: every class


@dataclass(frozen=True)
class Line:
    name: str
    a: Point
    b: Point
    classes: frozenset[str] | None = None


@dataclass(frozen=True)
class ZoneEvent:
    kind: ZoneEventKind
    name: str  # zone or line
    track_id: int
    class_name: str
    ts: float
    direction: str | None = None  # "A->B" or "B->A" for crossings
    dwell_s: float | None = None


def inside(p: Point, polygon: Sequence[Point]) -> bool:
    x, y = p
    result = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def _side(a: Point, b: Point, p: Point) -> float:
    """> 0 on side A of a->b, < 0 on side B (image coordinates, y down)."""
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def crossing(line: Line, p0: Point, p1: Point) -> str | None:
    """Direction if the move p0->p1 crosses the line segment, else None."""
    s0, s1 = _side(line.a, line.b, p0), _side(line.a, line.b, p1)
    if s0 == 0 or s1 == 0 or (s0 > 0) == (s1 > 0):
        return None
    # The move crosses the infinite line; check it crosses within the segment.
    t0, t1 = _side(p0, p1, line.a), _side(p0, p1, line.b)
    if (t0 > 0) == (t1 > 0) and t0 != 0 and t1 != 0:
        return None
    return "A->B" if s0 > 0 else "B->A"


@dataclass
class _TrackState:
    zones: dict[str, float] = field(default_factory=dict)  # zone -> entered at
    dwell_sent: set[str] = field(default_factory=set)
    last: Point | None = None
    crossed: list[tuple[str, str]] = field(default_factory=list)


class ZoneEngine:
    """Per camera: turns track positions into zone and line events, and keeps counts."""

    def __init__(self, zones: Sequence[Zone] = (), lines: Sequence[Line] = ()) -> None:
        self.zones = list(zones)
        self.lines = list(lines)
        self._state: dict[int, _TrackState] = {}
        self.counts: dict[str, int] = {}  # "zone:enter", "line:A->B", ...

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def update(self, track_id: int, class_name: str, feet: Point, ts: float) -> list[ZoneEvent]:
        """Feed one position (normalised) of one track; returns the events it causes."""
        st = self._state.setdefault(track_id, _TrackState())
        events: list[ZoneEvent] = []
        for z in self.zones:
            if z.classes is not None and class_name not in z.classes:
                continue
            now_in = inside(feet, z.polygon)
            was_in = z.name in st.zones
            if now_in and not was_in:
                st.zones[z.name] = ts
                events.append(ZoneEvent("enter", z.name, track_id, class_name, ts))
                self._count(f"{z.name}:enter")
            elif was_in and not now_in:
                since = st.zones.pop(z.name)
                st.dwell_sent.discard(z.name)
                events.append(
                    ZoneEvent("leave", z.name, track_id, class_name, ts, dwell_s=ts - since)
                )
                self._count(f"{z.name}:leave")
            elif now_in and z.dwell_s is not None and z.name not in st.dwell_sent:
                stayed = ts - st.zones[z.name]
                if stayed >= z.dwell_s:
                    st.dwell_sent.add(z.name)
                    events.append(
                        ZoneEvent("dwell", z.name, track_id, class_name, ts, dwell_s=stayed)
                    )
                    self._count(f"{z.name}:dwell")
        if st.last is not None:
            for line in self.lines:
                if line.classes is not None and class_name not in line.classes:
                    continue
                direction = crossing(line, st.last, feet)
                if direction is not None:
                    st.crossed.append((line.name, direction))
                    events.append(
                        ZoneEvent("cross", line.name, track_id, class_name, ts, direction)
                    )
                    self._count(f"{line.name}:{direction}")
        st.last = feet
        return events

    def end(self, track_id: int, ts: float) -> list[ZoneEvent]:
        """The track is gone: it leaves every zone it was in."""
        st = self._state.pop(track_id, None)
        if st is None:
            return []
        return [
            ZoneEvent("leave", name, track_id, "", ts, dwell_s=ts - since)
            for name, since in st.zones.items()
        ]

    def last_crossing(self, track_id: int) -> str | None:
        """Direction of the track's latest line crossing, if any."""
        st = self._state.get(track_id)
        return st.crossed[-1][1] if st and st.crossed else None

    def zones_of(self, track_id: int) -> list[str]:
        st = self._state.get(track_id)
        return sorted(st.zones) if st else []
