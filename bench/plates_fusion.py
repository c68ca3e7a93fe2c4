"""Reads per vehicle: one frame (what a one-shot reader does) vs multi-frame fusion.

A field report of an open-source deployment got a plate on only 23 % of vehicle visits, reading
a single frame per vehicle. This measures what fusing the reads of several frames of a track
(``citywatch.analytics.plates.fuse``, as the pipeline does) gains over one frame.

1. Real video (``../shared/data/video``: ``car-detection.mp4`` and the ``bgslibrary``
   highway clips, the clips with vehicles; no plate labels): NanoDet + CityWatch's tracker on
   every ``--every``-th frame (tracks start from a detection score of 0.25: NanoDet scores
   the cars of these clips low); plate detection + OCR inside every vehicle box of every
   analysed frame, at the clip's full resolution. Per track: frames, frames with a plate box,
   single-frame reads (any text), formatted reads (fit a plate format), reads equal to the
   fused read, and the fused read. Per clip, the share of vehicle tracks with any read and
   with a formatted read: single frame (the track's middle frame; the frame with its
   largest box) vs fused (all frames; the pipeline's first schedule, the first 6 frames 0.3 s
   apart; the pipeline's schedule now, ``ReadSchedule``: 6 tries 0.3 s apart, then more
   when the vehicle box grew 1.3x, at most 12, none once the fused read is settled).
2. Labelled passages (``../shared/data/plates/openalpr-us``): real plates, synthetic motion.
   Each photo becomes a car driving up: ``--frames`` frames in which the photo is shown at a
   scale growing from 0.3 to 0.9 (the plate from about a third of its pixels to nearly all)
   on a grey 1280x720 picture, drifting sideways, H.264-compressed as a camera stream
   (libx264, CRF 28). Every frame is read; single frame (middle; largest) vs fused, scored
   against the label (exact; at most one character wrong): here the gain of fusion can be
   checked against the truth, which the real clips cannot give.

    .venv/bin/python -m bench.plates_fusion [--clips car-detection.mp4,...] [--every 2]
        [--limit N] [--frames 10] [--no-video] [--no-passages] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from bench.common import REPO
from citywatch.analytics.plates import (
    FusedPlate,
    PlateFusion,
    PlateRead,
    PlateReader,
    fuse,
    load_image,
)
from citywatch.analytics.plates.detector import resize
from citywatch.analytics.plates.formats import UNFORMATTED
from citywatch.analytics.plates.fusion import ReadSchedule, TrackPlate

DATA = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "video"
OPENALPR = DATA / "plates" / "openalpr-us"
CLIPS = (
    "car-detection.mp4",
    "bgslibrary-video.avi",
    "bgslibrary-video02.avi",
    "bgslibrary-video03.avi",
)
VEHICLES = ("car", "truck", "bus", "motorcycle")
ORIGINAL_TRIES = 6  # the schedule before ReadSchedule: 6 tries 0.3 s apart, that's all
ORIGINAL_EVERY_S = 0.3

SCHEDULE = ReadSchedule()  # CameraAnalyzer.PLATE_SCHEDULE
Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]


def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f} %)" if d else "0/0"


def ms_stats(ms: list[float]) -> str:
    return f"median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms"


def formatted(read: PlateRead | None) -> bool:
    return read is not None and read.format != UNFORMATTED


@dataclass
class Seen:
    """One analysed frame of a track."""

    ts: float
    area: float
    boxes: int  # plate boxes the detector found in the vehicle
    read: PlateRead | None  # the best read in the vehicle, if any


@dataclass
class TrackReads:
    frames: list[Seen] = field(default_factory=list)

    def single(self, which: str) -> PlateRead | None:
        if which == "middle":
            return self.frames[len(self.frames) // 2].read
        return max(self.frames, key=lambda s: s.area).read

    def original(self) -> tuple[FusedPlate | None, int]:
        """Fused with the pipeline's first schedule: the first 6 frames 0.3 s apart.
        (fused read, frames read)"""
        fusion = PlateFusion()
        tries, last = 0, -1e9
        for s in self.frames:
            if tries >= ORIGINAL_TRIES or s.ts - last < ORIGINAL_EVERY_S:
                continue
            tries, last = tries + 1, s.ts
            if s.read is not None:
                fusion.add(s.read)
        return fusion.result(), tries

    def pipeline(self) -> tuple[FusedPlate | None, int]:
        """Fused the way CameraAnalyzer does it now (ReadSchedule: spaced tries, more when
        the vehicle comes closer, none once settled). (fused read, frames read)"""
        plate = TrackPlate()
        for s in self.frames:
            if plate.due(s.area, s.ts, SCHEDULE):
                plate.tried(s.area, s.ts, s.read)
        return plate.fusion.result(), plate.attempts


# 1. real video -----------------------------------------------------------------------------
def bench_clip(
    reader: PlateReader, path: Path, every: int, max_frames: int | None
) -> dict[str, Any]:
    from citywatch.analytics.detector import load_detector
    from citywatch.analytics.tracker import Tracker, TrackerConfig

    detector = load_detector("nanodet", classes=VEHICLES, threshold=0.15)
    tracker: Tracker | None = None
    tracks: dict[int, TrackReads] = {}
    frames = 0
    ms: list[float] = []
    size = (0, 0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        for index, frame in enumerate(container.decode(stream)):
            if max_frames and index >= max_frames:
                break
            if index % every:
                continue
            frames += 1
            image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
            size = (image.shape[1], image.shape[0])
            if tracker is None:
                # NanoDet scores these top-down and low-resolution cars 0.2-0.4: start
                # tracks from 0.25 (the pipeline's default class threshold is 0.4)
                tracker = Tracker(
                    TrackerConfig(high_threshold=0.25), diagonal=float(np.hypot(*image.shape[:2]))
                )
            update = tracker.update(detector.detect(image), index / fps)
            for track in update.active:
                x1, y1, x2, y2 = track.box
                t0 = time.perf_counter()
                reads = reader.read(image, vehicle_box=track.box)
                ms.append((time.perf_counter() - t0) * 1e3)
                seen = Seen(index / fps, (x2 - x1) * (y2 - y1), reader.last_found, None)
                seen.read = reads[0] if reads else None
                tracks.setdefault(track.id, TrackReads()).frames.append(seen)
    n = len(tracks)
    out: dict[str, Any] = {"clip": path.name, "size": size, "frames": frames, "tracks": n}
    rows = []
    counts = dict.fromkeys(
        ("boxed", "middle", "middle_fmt", "largest", "largest_fmt", "fused", "fused_fmt",
         "original", "original_fmt", "original_reads", "pipeline", "pipeline_fmt",
         "pipeline_reads"),
        0,
    )  # fmt: skip
    for tid, tr in sorted(tracks.items()):
        reads = [s.read for s in tr.frames if s.read is not None]
        fused = fuse(reads) if reads else None
        piped, piped_n = tr.pipeline()
        orig, orig_n = tr.original()
        counts["original"] += orig is not None
        counts["original_fmt"] += orig is not None and orig.format != UNFORMATTED
        counts["original_reads"] += orig_n
        counts["pipeline_reads"] += piped_n
        counts["boxed"] += any(s.boxes for s in tr.frames)
        for name, read in (("middle", tr.single("middle")), ("largest", tr.single("largest"))):
            counts[name] += read is not None
            counts[f"{name}_fmt"] += formatted(read)
        counts["fused"] += fused is not None
        counts["fused_fmt"] += fused is not None and fused.format != UNFORMATTED
        counts["pipeline"] += piped is not None
        counts["pipeline_fmt"] += piped is not None and piped.format != UNFORMATTED
        rows.append(
            {
                "track": tid,
                "frames": len(tr.frames),
                "with_plate_box": sum(s.boxes > 0 for s in tr.frames),
                "reads": len(reads),
                "formatted_reads": sum(formatted(r) for r in reads),
                "equal_to_fused": sum(fused is not None and r.normalised == fused.normalised
                                      for r in reads),
                "fused": None if fused is None else fused.as_dict(),
            }
        )  # fmt: skip
    out.update(counts)
    out["per_track"] = rows
    out["ms"] = ms
    print(
        f"\n== {path.name} ({size[0]}x{size[1]}): {frames} frames analysed (every {every}), "
        f"{n} vehicle tracks"
    )
    print(f"  tracks with a plate box in any frame: {pct(counts['boxed'], n)}")
    for label, key in (
        ("single frame, middle of the track", "middle"),
        ("single frame, largest vehicle box", "largest"),
        ("fused, all frames", "fused"),
        ("fused, first schedule (6 tries 0.3 s apart)", "original"),
        ("fused, pipeline schedule (ReadSchedule)", "pipeline"),
    ):
        note = f", {counts[key + '_reads']} frames read" if key + "_reads" in counts else ""
        print(
            f"  {label}: any read {pct(counts[key], n)}, formatted "
            f"{pct(counts[key + '_fmt'], n)}{note}"
        )
    if ms:
        print(f"  plate reading per vehicle box: {ms_stats(ms)}")
    for r in rows:
        f = r["fused"]
        if isinstance(f, dict):
            print(
                f"    track {r['track']}: {r['frames']} frames, {r['with_plate_box']} with a plate "
                f"box, {r['reads']} reads ({r['formatted_reads']} formatted, {r['equal_to_fused']} "
                f"= fused) -> {f['text']!r} {f['format']} conf {f['confidence']:.2f}"
            )
    return out


# 2. labelled passages ----------------------------------------------------------------------
def labels(limit: int | None) -> list[tuple[Path, str]]:
    items = []
    for txt in sorted(OPENALPR.glob("*.txt")):
        parts = txt.read_text().split()
        if len(parts) == 6:
            items.append((OPENALPR / parts[0], parts[5].upper()))
    return items[:limit] if limit else items


def passage_frames(photo: Image, n: int, size: tuple[int, int] = (1280, 720)) -> list[Image]:
    """The photo as a car driving up (see the module doc), through H.264 and back."""
    w, h = size
    fitted = min(w / photo.shape[1], h / photo.shape[0])
    frames = []
    for i in range(n):
        k = i / max(1, n - 1)
        s = (0.3 + 0.6 * k) * fitted
        pw, ph = (
            max(2, round(photo.shape[1] * s)) // 2 * 2,
            max(2, round(photo.shape[0] * s)) // 2 * 2,
        )
        canvas = np.full((h, w, 3), 110, np.uint8)
        x = int((w - pw) / 2 + (0.5 - k) * 0.2 * (w - pw))
        y = (h - ph) // 2
        canvas[y : y + ph, x : x + pw] = resize(photo, pw, ph)
        frames.append(canvas)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream(
            "libx264", rate=10, options={"crf": "28", "preset": "veryfast", "bf": "0"}
        )
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as src:
        decoded = [np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in src.decode(video=0)]
    return decoded


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def bench_passages(reader: PlateReader, limit: int | None, n_frames: int) -> dict[str, Any]:
    items = labels(limit)
    keys = ("middle", "largest", "fused", "original", "pipeline")
    frames_read = {"original": 0, "pipeline": 0}
    exact = dict.fromkeys(keys, 0)
    one_off = dict.fromkeys(keys, 0)
    any_read = dict.fromkeys(keys, 0)
    per_frame_exact = [0] * n_frames
    ms: list[float] = []
    for path, plate in items:
        frames = passage_frames(load_image(path), n_frames)
        tr = TrackReads()
        for i, image in enumerate(frames):
            t0 = time.perf_counter()
            reads = reader.read(image)
            ms.append((time.perf_counter() - t0) * 1e3)
            best = reads[0] if reads else None
            # area: the photo's scale squared, as a vehicle box would grow
            tr.frames.append(
                Seen(i * 0.2, (0.3 + 0.6 * i / (n_frames - 1)) ** 2, reader.last_found, best)
            )
            per_frame_exact[i] += best is not None and best.normalised == plate
        (orig, orig_n), (piped, piped_n) = tr.original(), tr.pipeline()
        frames_read["original"] += orig_n
        frames_read["pipeline"] += piped_n
        got = {
            "middle": tr.single("middle"),
            "largest": tr.single("largest"),
            "fused": fuse([s.read for s in tr.frames if s.read is not None]),
            "original": orig,
            "pipeline": piped,
        }
        for key, read in got.items():
            text = None if read is None else read.normalised
            any_read[key] += text is not None
            exact[key] += text == plate
            one_off[key] += text is not None and edit_distance(text, plate) <= 1
    n = len(items)
    print(f"\n== labelled passages: {n} openalpr-us photos x {n_frames} frames (synthetic motion)")
    for key, label in (
        ("middle", "single frame, middle of the passage"),
        ("largest", "single frame, largest (last) frame"),
        ("fused", "fused, all frames"),
        ("original", "fused, first schedule (6 tries 0.3 s apart)"),
        ("pipeline", "fused, pipeline schedule (ReadSchedule)"),
    ):
        note = f"; {frames_read[key] / max(1, n):.1f} frames read" if key in frames_read else ""
        print(
            f"  {label}: any read {pct(any_read[key], n)}, exact {pct(exact[key], n)}, "
            f"<= 1 wrong {pct(one_off[key], n)}{note}"
        )
    print(
        "  exact per frame (small -> large): "
        + ", ".join(pct(v, n).split()[0] for v in per_frame_exact)
    )
    if ms:
        print(f"  time per 1280x720 frame: {ms_stats(ms)}")
    return {
        "n": n,
        "frames": n_frames,
        "any": any_read,
        "exact": exact,
        "one_off": one_off,
        "frames_read": frames_read,
        "per_frame_exact": per_frame_exact,
        "ms": ms,
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", default=",".join(CLIPS), help="Clips in ../shared/data/video.")
    ap.add_argument("--every", type=int, default=2, help="Video: analyse every Nth frame.")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="Passages: first N photos.")
    ap.add_argument("--frames", type=int, default=10, help="Passages: frames per car.")
    ap.add_argument("--no-video", action="store_true")
    ap.add_argument("--no-passages", action="store_true")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.every < 1 or args.frames < 2:
        sys.exit("--every must be >= 1 and --frames >= 2")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    reader = PlateReader()
    results: dict[str, Any] = {"clips": []}
    if not args.no_video:
        for name in [c.strip() for c in args.clips.split(",") if c.strip()]:
            path = VIDEO / name
            if not path.is_file():
                print(f"\n== {name}: not found in {VIDEO}, skipped")
                continue
            results["clips"].append(bench_clip(reader, path, args.every, args.max_frames))
    if not args.no_passages:
        if not OPENALPR.is_dir():
            sys.exit(f"no plate data at {OPENALPR}")
        results["passages"] = bench_passages(PlateReader(["US"]), args.limit, args.frames)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
