"""Start-up repair: make the index match what is on disk after a crash or a kill.

- `.part` files (a segment being written when the process died) are salvaged: every whole
  fragment is copied into a finished segment, which is indexed; the rest is dropped.
- Finished files that are not in the index (died between rename and insert) are indexed.
- Files that do not play are renamed `.corrupt` (kept for inspection, never indexed).
- Index rows whose file is gone are removed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import av

from citywatch.recording.index import SegmentIndex, probe_segment
from citywatch.recording.segmenter import FMP4_FLAGS, parse_segment_name

log = logging.getLogger(__name__)


@dataclass
class RepairReport:
    salvaged: list[str] = field(default_factory=list)
    indexed: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    dropped_rows: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.salvaged or self.indexed or self.quarantined or self.dropped_rows)


def salvage_part(part: Path, final: Path) -> bool:
    """Copy the readable packets of a truncated fMP4 into `final`. True if anything played."""
    tmp = final.with_name(final.name + ".salvage")
    copied = 0
    try:
        with av.open(str(part)) as src:
            if not src.streams.video:
                return False
            v = src.streams.video[0]
            out = av.open(str(tmp), "w", format="mp4", options={"movflags": FMP4_FLAGS})
            try:
                ost = out.add_stream_from_template(v)
                started = False
                try:
                    for p in src.demux(v):
                        if p.dts is None and p.pts is None:
                            continue
                        if p.is_corrupt:  # cut short by the kill: not a whole packet
                            log.info("salvage of %s stopped at a truncated packet", part)
                            break
                        if not started and not p.is_keyframe:
                            continue
                        started = True
                        p.stream = ost
                        out.mux(p)
                        copied += 1
                except (av.FFmpegError, OSError) as exc:
                    log.info("salvage of %s stopped at a damaged packet: %s", part, exc)
            finally:
                out.close()
    except (av.FFmpegError, OSError) as exc:
        log.warning("cannot salvage %s: %s", part, exc)
        tmp.unlink(missing_ok=True)
        return False
    if copied == 0:
        tmp.unlink(missing_ok=True)
        return False
    os.replace(tmp, final)
    return True


def _camera_of(root: Path, path: Path) -> str:
    return path.relative_to(root).parts[0]


def repair(index: SegmentIndex) -> RepairReport:
    root = index.root
    report = RepairReport()
    if not root.exists():
        return report
    for stale in root.rglob("*.salvage"):
        stale.unlink(missing_ok=True)
    for part in sorted(root.rglob("*.mp4.part")):
        final = part.with_name(part.name[: -len(".part")])
        if parse_segment_name(final) is None:
            continue
        if salvage_part(part, final):
            report.salvaged.append(str(final.relative_to(root)))
            part.unlink(missing_ok=True)
        else:
            corrupt = part.with_name(part.name + ".corrupt")
            os.replace(part, corrupt)
            report.quarantined.append(str(corrupt.relative_to(root)))

    known = index.known_paths()
    for path in sorted(root.rglob("*.mp4")):
        rel = str(path.relative_to(root))
        if rel in known:
            continue
        start = parse_segment_name(path)
        if start is None:
            continue
        info = probe_segment(path, _camera_of(root, path), start)
        if info is None:
            corrupt = path.with_name(path.name + ".corrupt")
            os.replace(path, corrupt)
            report.quarantined.append(str(corrupt.relative_to(root)))
            continue
        index.add(info)
        if rel not in report.salvaged:
            report.indexed.append(rel)

    missing = [seg.id for seg in index.all_ordered() if not index.abs(seg).exists()]
    if missing:
        index.remove(missing)
        report.dropped_rows = len(missing)
    if report.changed:
        log.warning(
            "repair: salvaged %d, indexed %d, quarantined %d, dropped %d index rows",
            len(report.salvaged),
            len(report.indexed),
            len(report.quarantined),
            report.dropped_rows,
        )
    return report
