"""Per-packet CPU of the recorder's Python path, from a file (no network, one thread).

Breaks down what CameraWorker does for each packet: CameraHealth.note_packet,
LiveFeed.feed (no viewer), SegmentWriter.write, and the whole loop body, next to a bare
PyAV remux of the same packets into 10 s fMP4 segments. Packets are demuxed before the
clock starts, so only the per-packet work is timed (best of --reps).

    .venv/bin/python -m bench.packet_path
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import OUT, bench_clip, emit, machine

Step = Callable[[Any], None]


def packets(clip: Path) -> tuple[Any, Any, list[Any]]:
    import av

    c = av.open(str(clip))
    v = c.streams.video[0]
    return c, v, [p for p in c.demux(v) if p.size]


def media_time(p: Any) -> float | None:
    ts = p.dts if p.dts is not None else p.pts
    return float(ts * p.time_base) if ts is not None else None


def main(argv: list[str] | None = None) -> int:
    import av

    from citywatch.cameras.live import LiveFeed
    from citywatch.cameras.worker import CameraHealth
    from citywatch.recording.segmenter import FMP4_FLAGS, SegmentWriter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    mach = machine()
    clip = bench_clip()
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="packet-path-", dir=OUT))

    def nothing(v: Any) -> Step:
        return lambda p: None

    def health(v: Any) -> Step:
        h = CameraHealth()
        return lambda p: h.note_packet(time.time(), p.size, media_time(p))

    def live(v: Any) -> Step:
        f = LiveFeed("x")
        f.start_stream(v)
        return lambda p: f.feed(p, time.time())

    def writer(v: Any) -> Step:
        w = SegmentWriter("x", tmp / "w", lambda i: None, 10.0)
        w.start_stream(v)
        return w.write

    def plain(v: Any) -> Step:
        tb = float(v.time_base)
        limit = int(9.75 / tb)
        st: dict[str, Any] = {"out": None, "n": 0, "first": 0}

        def step(p: Any) -> None:
            if st["out"] is None or (p.is_keyframe and p.dts - st["first"] >= limit):
                if st["out"] is not None:
                    st["out"].close()
                st["out"] = av.open(
                    str(tmp / f"plain{st['n']}.mp4"),
                    "w",
                    format="mp4",
                    options={"movflags": FMP4_FLAGS},
                )
                st["n"] += 1
                st["os"] = st["out"].add_stream_from_template(v)
                st["first"] = p.dts
            p.dts -= st["first"]
            p.pts = max(p.pts - st["first"], p.dts)
            p.stream = st["os"]
            st["out"].mux(p)

        return step

    def loop_body(v: Any) -> Step:
        h = CameraHealth()
        f = LiveFeed("x")
        f.start_stream(v)
        w = SegmentWriter("x", tmp / "full", lambda i: None, 10.0)
        w.start_stream(v)

        def step(p: Any) -> None:  # CameraWorker._session's loop body at 67ea230
            now = time.time()
            h.note_packet(now, p.size, media_time(p))
            f.feed(p, now)
            w.write(p)
            h.recording = w.recording
            h.timestamp_jumps = w.discontinuities

        return step

    cases: list[tuple[str, Callable[[Any], Step]]] = [
        ("nothing (loop overhead)", nothing),
        ("CameraHealth.note_packet", health),
        ("LiveFeed.feed, no viewer", live),
        ("SegmentWriter.write", writer),
        ("worker loop body (all of the above)", loop_body),
        ("bare PyAV remux into segments", plain),
    ]
    res: dict[str, Any] = {"benchmark": "packet_path", "machine": mach, "us_per_packet": {}}
    try:
        for name, make in cases:
            best = float("inf")
            n = 0
            for _ in range(args.reps):
                c, v, pk = packets(clip)
                step = make(v)
                t0 = time.process_time()
                for p in pk:
                    step(p)
                best = min(best, (time.process_time() - t0) / len(pk))
                n = len(pk)
                c.close()
            res["us_per_packet"][name] = round(best * 1e6, 1)
        res["packets"] = n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = [f"CPU per packet (1080p 4 Mbit/s clip, {res['packets']} packets, best of "]
    summary[0] += f"{args.reps}):"
    for name, us in res["us_per_packet"].items():
        summary.append(f"  {name:40s} {us:7.1f} us  = {us * 25 / 1e4:.3f} % of a core at 25 fps")
    emit("packet_path", res, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
