"""End-to-end analysis cost per camera (decode + motion + detection + tracking) on real
clips, with and without motion gating, side by side with a naive baseline that runs the
detector on every decoded frame.

    .venv/bin/python -m bench.analytics_throughput [--seconds 30] [--fps 5]

Single process, one inference thread; CPU-seconds from the process's own clock, so other
load on the machine does not inflate them. "cameras per core" = seconds of video analysed
per CPU-second. The 1080p clip is the shared street clip scaled to 1920x1080 (real
content, re-encoded once with ffmpeg, cached in bench/out/media).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path
from typing import Any

import av

from bench.common import FFMPEG, MEDIA, REPO, emit, machine
from citywatch.analytics.detector import load_detector
from citywatch.analytics.pipeline import CameraAnalyzer
from citywatch.config import AnalyticsConfig, LineConfig

SHARED = REPO.parent / "shared" / "data" / "video"


def _encoded(dst: Path, src: Path, video_args: list[str]) -> Path:
    """`src` re-encoded with libx264 (GOP 25 or as given, no B-frames) into `dst`, once."""
    if not dst.exists():
        MEDIA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                FFMPEG,
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(src),
                *video_args,
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-bf",
                "0",
                "-pix_fmt",
                "yuv420p",
                str(dst),
            ],  # fmt: skip
            check=True,
        )
    return dst


def clip_1080p(src: Path) -> Path:
    return _encoded(
        MEDIA / f"{src.stem}-1080p.mp4", src, ["-vf", "scale=1920:1080", "-b:v", "4M", "-g", "25"]
    )


def quiet_clip(src: Path) -> Path:
    """A quiet scene from real footage: the first 5 s of the people clip (an empty room,
    real sensor noise and compression), looped to 30 s."""
    loop = "trim=0:5,setpts=PTS-STARTPTS,loop=loop=5:size=50:start=0,setpts=N/10/TB"
    return _encoded(MEDIA / "empty-room-30s.mp4", src, ["-vf", loop, "-r", "10", "-g", "20"])


def run(
    clip: Path, mode: str, fps: float, seconds: float, detector: Any, width: int
) -> dict[str, Any]:
    """mode: gated (motion decides), ungated (detector on every analysed frame),
    naive (detector on every decoded frame, full resolution in, no motion)."""
    cfg = AnalyticsConfig(
        enabled=True,
        fps=fps,
        width=width,
        motion_gating=mode == "gated",
        lines=[LineConfig(name="across", a=(0.0, 0.5), b=(1.0, 0.5))],
    )
    analyzer = CameraAnalyzer("bench", cfg, detector)
    t_cpu = time.process_time()
    t_wall = time.perf_counter()
    analysed = decoded = runs = 0
    tracks = 0
    with av.open(str(clip)) as c:
        v = c.streams.video[0]
        v.codec_context.thread_type = "NONE"  # one core: the figure is per core
        rate = float(v.average_rate or 25)
        interval = 1.0 / fps
        due = 0.0
        for frame in c.decode(v):
            t = decoded / rate
            decoded += 1
            if t >= seconds:
                break
            if mode != "naive":
                if t + 1e-6 < due:
                    continue
                due += interval
            w = min(width, frame.width) if mode != "naive" else frame.width
            h = int(frame.height * w / frame.width) // 2 * 2
            img = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
            out = analyzer.process(img, t)
            analysed += 1
            runs += out.detector_ran
            tracks += sum(1 for m in out.messages if type(m).__name__ == "TrackStarted")
    cpu = time.process_time() - t_cpu
    video_s = min(seconds, decoded / rate)
    return {
        "clip": clip.name,
        "mode": mode,
        "video_s": round(video_s, 2),
        "decoded": decoded,
        "analysed": analysed,
        "detector_runs": runs,
        "tracks": tracks,
        "cpu_s": round(cpu, 2),
        "wall_s": round(time.perf_counter() - t_wall, 2),
        "cpu_share_per_camera": round(cpu / video_s, 3),
        "cameras_per_core": round(video_s / cpu, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--width", type=int, default=768, help="analysis width")
    args = ap.parse_args()
    detector = load_detector("nanodet", threads=1, threshold=0.15)
    street = SHARED / "car-detection.mp4"
    people = SHARED / "one-by-one-person-detection.mp4"
    clips = [street, people, clip_1080p(street), quiet_clip(people)]
    rows = []
    for clip in clips:
        for mode in ("gated", "ungated", "naive"):
            rows.append(run(clip, mode, args.fps, args.seconds, detector, args.width))
            print(rows[-1], flush=True)
    summary = [f"analysis at {args.fps:g} fps, analysis width {args.width}, 1 thread:"]
    for r in rows:
        summary.append(
            f"  {r['clip']:<42} {r['mode']:<8} {r['cpu_share_per_camera'] * 100:6.1f} % of a "
            f"core per camera = {r['cameras_per_core']:5.2f} cameras/core "
            f"(detector on {r['detector_runs']}/{r['analysed']} frames, {r['tracks']} tracks)"
        )
    by = {(r["clip"], r["mode"]): r for r in rows}
    for clip in clips:
        g, n = by[(clip.name, "gated")], by[(clip.name, "naive")]
        summary.append(
            f"  {clip.name}: pipeline vs naive detector-on-every-frame: "
            f"{n['cpu_s'] / max(g['cpu_s'], 1e-9):.1f}x less CPU"
        )
    emit(
        "analytics_throughput",
        {"machine": machine(), "args": vars(args), "rows": rows},
        summary,
    )


if __name__ == "__main__":
    main()
