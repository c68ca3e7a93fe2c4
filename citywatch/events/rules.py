"""Alert rules: which analytics happenings raise an alert, and with which priority."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from citywatch.config import AlertRule


@dataclass(frozen=True)
class Happening:
    """Something the analytics saw that a rule may match."""

    kind: str  # object (a new tracked object), enter, leave, dwell, cross
    camera_id: str
    class_name: str
    ts: float
    zone: str | None = None
    direction: str | None = None


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_window(ts: float, between: tuple[str, str] | None) -> bool:
    """Whether ts (UTC) falls in [from, to); a window may wrap past midnight."""
    if between is None:
        return True
    t = datetime.fromtimestamp(ts, UTC)
    now = t.hour * 60 + t.minute
    start, end = _minutes(between[0]), _minutes(between[1])
    return start <= now < end if start <= end else now >= start or now < end


def matching(rules: Sequence[AlertRule], h: Happening) -> list[AlertRule]:
    out = []
    for r in rules:
        if r.on != h.kind:
            continue
        if r.cameras is not None and h.camera_id not in r.cameras:
            continue
        if r.classes is not None and h.class_name not in r.classes:
            continue
        if r.zone is not None and r.zone != h.zone:
            continue
        if r.direction is not None and r.direction != h.direction:
            continue
        if not in_window(h.ts, r.between):
            continue
        out.append(r)
    return out
