"""Retention: delete the oldest recordings first, by age, quota and free-space reserve.

`plan` is a pure function over the index and the policy, so it is tested without a disk;
`RetentionSweeper` runs it on a timer, deletes files and rows, and audits each run.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from citywatch.governance.audit import AuditLog, AuditRecord
from citywatch.recording.index import SegmentIndex

log = logging.getLogger(__name__)
GB = 1024**3


class SegmentLike(Protocol):
    id: int
    camera_id: str
    start_ts: float
    end_ts: float
    bytes: int


@dataclass(frozen=True)
class Policy:
    """Limits; None means no limit of that kind."""

    max_age_s: float | None
    quota_bytes: int | None
    free_reserve_bytes: int
    camera_max_age_s: dict[str, float]
    camera_quota_bytes: dict[str, int]


@dataclass(frozen=True)
class Deletion:
    segment_id: int
    camera_id: str
    bytes: int
    reason: str  # "age", "camera_quota", "quota", "free_space"


def plan(
    segments: Sequence[SegmentLike],
    policy: Policy,
    now: float,
    free_bytes: int,
    protect_newest_s: float = 0.0,
) -> list[Deletion]:
    """Which segments to delete, oldest first. `segments` must be in start-time order.

    The newest segment of each camera is never deleted for quota or free-space reasons:
    the system keeps recording the present rather than keeping nothing.
    """
    doomed: dict[int, Deletion] = {}

    def drop(seg: SegmentLike, reason: str) -> None:
        if seg.id not in doomed:
            doomed[seg.id] = Deletion(seg.id, seg.camera_id, seg.bytes, reason)

    newest: dict[str, int] = {}
    for seg in segments:
        newest[seg.camera_id] = seg.id
    protected = set(newest.values())

    for seg in segments:
        max_age = policy.camera_max_age_s.get(seg.camera_id, policy.max_age_s)
        if max_age is not None and now - seg.end_ts > max_age:
            drop(seg, "age")

    def live(cam: str | None = None) -> list[SegmentLike]:
        return [
            s
            for s in segments
            if s.id not in doomed
            and (cam is None or s.camera_id == cam)
            and s.id not in protected
            and now - s.end_ts >= protect_newest_s
        ]

    usage: dict[str, int] = {}
    for seg in segments:
        if seg.id not in doomed:
            usage[seg.camera_id] = usage.get(seg.camera_id, 0) + seg.bytes

    for cam, quota in policy.camera_quota_bytes.items():
        for seg in live(cam):
            if usage.get(cam, 0) <= quota:
                break
            drop(seg, "camera_quota")
            usage[cam] -= seg.bytes

    total = sum(usage.values())
    if policy.quota_bytes is not None:
        for seg in live():
            if total <= policy.quota_bytes:
                break
            drop(seg, "quota")
            total -= seg.bytes

    freed = sum(d.bytes for d in doomed.values())
    if free_bytes + freed < policy.free_reserve_bytes:
        for seg in live():
            if free_bytes + freed >= policy.free_reserve_bytes:
                break
            drop(seg, "free_space")
            freed += seg.bytes

    return sorted(doomed.values(), key=lambda d: d.segment_id)


class RetentionSweeper:
    """Runs the plan every `interval_s` in a thread; `sweep()` runs it once."""

    def __init__(
        self,
        index: SegmentIndex,
        audit: AuditLog,
        policy: Callable[[], Policy],
        interval_s: float = 30.0,
        free_bytes: Callable[[Path], int] | None = None,
    ) -> None:
        self.index = index
        self.audit = audit
        self.policy = policy
        self.interval_s = interval_s
        self.free_bytes = free_bytes or (lambda p: shutil.disk_usage(p).free)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_run: dict[str, object] = {}

    def sweep(self) -> list[Deletion]:
        root = self.index.root
        root.mkdir(parents=True, exist_ok=True)
        segments = self.index.all_ordered()
        deletions = plan(segments, self.policy(), time.time(), self.free_bytes(root))
        if not deletions:
            self.last_run = {"at": time.time(), "deleted": 0}
            return []
        by_id = {s.id: s for s in segments}
        for d in deletions:
            try:
                self.index.abs(by_id[d.segment_id]).unlink(missing_ok=True)
            except OSError as exc:
                log.error("retention: cannot delete segment %d: %s", d.segment_id, exc)
        self.index.remove(d.segment_id for d in deletions)
        summary: dict[str, dict[str, int]] = {}
        for d in deletions:
            entry = summary.setdefault(f"{d.camera_id}:{d.reason}", {"segments": 0, "bytes": 0})
            entry["segments"] += 1
            entry["bytes"] += d.bytes
        oldest = min(by_id[d.segment_id].start_ts for d in deletions)
        newest = max(by_id[d.segment_id].end_ts for d in deletions)
        total = sum(d.bytes for d in deletions)
        self.audit.append(
            AuditRecord(
                actor="system:retention",
                action="retention.delete",
                target=",".join(sorted({d.camera_id for d in deletions})),
                details={
                    "segments": len(deletions),
                    "bytes": total,
                    "reasons": sorted({d.reason for d in deletions}),
                    "by_camera_reason": summary,
                    "from_ts": oldest,
                    "to_ts": newest,
                },
            )
        )
        log.info("retention: deleted %d segments (%d bytes)", len(deletions), total)
        self.last_run = {"at": time.time(), "deleted": len(deletions), "bytes": total}
        return deletions

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:
                log.exception("retention sweep failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
