"""Playback start latency: request → first byte → first decodable frame, a week back.

Builds a SQLite index of C cameras x H hours of 10 s segments (by default 16 x 24 h =
138,240 rows, added one by one through ``SegmentIndex.add``), placed so that the middle
of the recorded day is 7 days before now. The rows point at hard links to a few real
1080p fMP4 segments that CityWatch's own SegmentWriter cut from the benchmark clip. The
real FastAPI app (``create_app(cw, manage_runtime=False)``) runs under uvicorn in a child
process on loopback; an investigator logs in, and each request is

    GET /api/v1/cameras/{id}/playback.mp4?start=..&end=..&purpose=..

streamed with httpx. The body is fed, as it arrives, to a PyAV demuxer+decoder until the
first frame comes out. Side by side, the same range through Debian ffmpeg: the segment
files covering the range (from a plain sqlite3 query) are concatenated with the concat
demuxer, ``-ss`` into the first one, ``-c copy`` to a pipe, and read the same way.

    .venv/bin/python -m bench.playback_start --requests 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    FFMPEG,
    MEDIA,
    OUT,
    REPO,
    WindowMeter,
    bench_clip,
    emit,
    machine,
    proc_cpu_s,
    summary_ms,
)

USER = "investigator1"
PASSWORD = "bench password 123"
PURPOSE = "Benchmark: incident review"
DAY = 86400.0


# real segments ------------------------------------------------------------------------------
def recorded_segments(clip: Path, segment_s: float = 10.0) -> list[dict[str, Any]]:
    """Cut the clip into fMP4 segments with CityWatch's SegmentWriter (cached). Returns the
    complete ones (duration within 0.1 s of ``segment_s``) as dicts."""
    import av

    from citywatch.recording.segmenter import SegmentInfo, SegmentWriter

    root = MEDIA / f"segments-{clip.stem}"
    manifest = root / "manifest.json"
    if manifest.exists():
        data: list[dict[str, Any]] = json.loads(manifest.read_text())
        return data
    tmp = Path(tempfile.mkdtemp(prefix=".segments-", dir=MEDIA))
    infos: list[SegmentInfo] = []
    now = [1_700_000_000.0]
    writer = SegmentWriter("src", tmp, infos.append, segment_s, clock=lambda: now[0])
    with av.open(str(clip)) as c:
        v = c.streams.video[0]
        writer.start_stream(v)
        tb = v.time_base
        assert tb is not None
        for p in c.demux(v):
            if p.dts is not None:
                now[0] = 1_700_000_000.0 + float(p.dts * tb)
            writer.write(p)
        writer.close()
    keep: list[dict[str, Any]] = []
    root.mkdir(parents=True, exist_ok=True)
    for i, info in enumerate(infos):
        if abs(info.duration - segment_s) > 0.1:
            continue
        dst = root / f"seg{i:02d}.mp4"
        shutil.copyfile(info.path, dst)
        keep.append(
            {
                "file": dst.name,
                "duration": info.duration,
                "bytes": dst.stat().st_size,
                "codec": info.codec,
                "width": info.width,
                "height": info.height,
                "keyframes": info.keyframes,
            }
        )
    shutil.rmtree(tmp, ignore_errors=True)
    if not keep:
        raise RuntimeError("no complete segment could be cut from the clip")
    manifest.write_text(json.dumps(keep, indent=1))
    return keep


# the index ----------------------------------------------------------------------------------
@dataclass
class Layout:
    data_dir: Path
    t0: float  # start of the recorded day (all cameras)
    hours: float
    cameras: list[str]
    asked: str
    removed: str | None  # recorded but not in the registry any more
    rows: int
    build_s: float
    add_cpu_s: float


def build_index(
    data_dir: Path,
    segs: list[dict[str, Any]],
    n_cameras: int,
    hours: float,
    days_back: float,
    span_to_now: bool,
    removed_camera: bool,
    progress: Callable[[str], None],
) -> Layout:
    from citywatch.config import CameraConfig, Settings, StreamConfig
    from citywatch.recording.segmenter import SegmentInfo, segment_path
    from citywatch.runtime import CityWatch

    settings = Settings(data_dir=data_dir)
    cw = CityWatch(settings)
    cw.prepare()
    cams = [f"cam{i:02d}" for i in range(n_cameras)]
    removed = cams[-1] if removed_camera and n_cameras > 1 else None
    for cam in cams:
        if cam == removed:
            continue
        cw.cameras.upsert(
            CameraConfig(
                id=cam,
                name=f"Camera {cam}",
                main_stream=StreamConfig(url=f"rtsp://127.0.0.1:9/{cam}"),
                purpose="Traffic safety",
                legal_basis="Municipal decision 1/2026",
            ),
            restart=False,
        )
    cw.accounts.create_user(USER, PASSWORD, "investigator")

    seg_dur = float(segs[0]["duration"])
    now = time.time()
    t0 = round(now - days_back * DAY - hours * 3600 / 2)
    per_cam = int(hours * 3600 / seg_dur)
    rows = 0
    t_start = time.monotonic()
    cpu0 = time.process_time()
    rec_root = settings.recordings_dir
    for ci, cam in enumerate(cams):
        n = per_cam
        if span_to_now and cam == cams[0]:
            n = int((now - 60 - t0) / seg_dur)
        for k in range(n):
            seg = segs[(k + ci) % len(segs)]
            start = t0 + k * seg_dur
            path = segment_path(rec_root, cam, start)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(seg["src"], path)
            cw.index.add(
                SegmentInfo(
                    camera_id=cam,
                    path=path,
                    start_ts=start,
                    end_ts=start + seg_dur,
                    bytes=int(seg["bytes"]),
                    codec=str(seg["codec"]),
                    width=int(seg["width"]),
                    height=int(seg["height"]),
                    keyframes=list(seg["keyframes"]),
                )
            )
            rows += 1
            if rows % 20000 == 0:
                rate = rows / (time.monotonic() - t_start)
                progress(f"  index: {rows} rows ({rate:.0f} rows/s)")
    build_s = time.monotonic() - t_start
    add_cpu = time.process_time() - cpu0
    cw.db.dispose()
    return Layout(data_dir, t0, hours, cams, cams[0], removed, rows, build_s, add_cpu)


# the server (child process) -------------------------------------------------------------------
def serve(data_dir: Path, port: int) -> int:
    import uvicorn

    from citywatch.api.app import create_app
    from citywatch.config import Settings
    from citywatch.runtime import CityWatch

    cw = CityWatch(Settings(data_dir=data_dir))
    app = create_app(cw, manage_runtime=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# reading a stream until the first frame -----------------------------------------------------------
class StreamReader:
    """A read-only, non-seekable file object over an iterator of byte chunks, that notes
    when the first byte arrived and how many bytes were pulled."""

    def __init__(self, chunks: Iterator[bytes], t0: float) -> None:
        self._it = chunks
        self._buf = bytearray()
        self.t0 = t0
        self.first_byte_s: float | None = None
        self.last_chunk_s = 0.0  # arrival of the latest chunk pulled
        self.pulled = 0
        self.eof = False

    def _pull(self) -> bool:
        try:
            chunk = next(self._it)
        except StopIteration:
            self.eof = True
            return False
        now = time.perf_counter() - self.t0
        if chunk and self.first_byte_s is None:
            self.first_byte_s = now
        self.last_chunk_s = now
        self.pulled += len(chunk)
        self._buf += chunk
        return True

    def wait_first_byte(self) -> None:
        while self.first_byte_s is None and self._pull():
            pass

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and self._pull():
            pass
        if n < 0:
            n = len(self._buf)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def first_frame(reader: StreamReader) -> tuple[str, int, float]:
    """Demux and decode from the reader until one video frame comes out. Returns (WxH,
    bytes pulled, arrival time of the last chunk that was needed)."""
    import av

    with av.open(
        reader,
        mode="r",
        format="mp4",
        options={"probesize": "32768", "analyzeduration": "0"},
    ) as c:
        for frame in c.decode(video=0):
            return f"{frame.width}x{frame.height}", reader.pulled, reader.last_chunk_s
    raise RuntimeError("stream ended without a decodable frame")


@dataclass
class Sample:
    headers_s: float
    first_byte_s: float
    data_ready_s: float  # the bytes the first frame needed had arrived
    first_frame_s: float
    bytes_to_frame: int
    status: int
    frame: str


def via_api(client: Any, token: str, camera: str, start: float, end: float) -> Sample:
    params = {"start": f"{start:.3f}", "end": f"{end:.3f}", "purpose": PURPOSE}
    url = f"/api/v1/cameras/{camera}/playback.mp4"
    t0 = time.perf_counter()
    with client.stream(
        "GET", url, params=params, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        t_headers = time.perf_counter() - t0
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
        reader = StreamReader(r.iter_raw(), t0)
        reader.wait_first_byte()
        frame, nbytes, ready = first_frame(reader)
        t_frame = time.perf_counter() - t0
    assert reader.first_byte_s is not None
    return Sample(t_headers, reader.first_byte_s, ready, t_frame, nbytes, r.status_code, frame)


def via_ffmpeg(db_path: Path, rec_root: Path, camera: str, start: float, end: float) -> Sample:
    """The peer: a plain sqlite3 lookup, then ffmpeg concat + -ss + -c copy to a pipe."""
    t0 = time.perf_counter()
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute(
            "SELECT path, start_ts, end_ts FROM segments WHERE camera_id = ? AND end_ts > ? "
            "AND start_ts < ? ORDER BY start_ts",
            (camera, start, end),
        ).fetchall()
    finally:
        con.close()
    if not rows:
        raise RuntimeError("no segments")
    fd, list_name = tempfile.mkstemp(prefix="concat-", suffix=".ffconcat")
    with os.fdopen(fd, "w") as f:
        f.write("ffconcat version 1.0\n")
        for path, s, e in rows:
            f.write(f"file '{rec_root / path}'\nduration {e - s:.3f}\n")
    t_lookup = time.perf_counter() - t0
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin",
        "-ss", f"{start - rows[0][1]:.3f}", "-f", "concat", "-safe", "0", "-i", list_name,
        "-t", f"{end - start:.3f}", "-map", "0:v:0", "-c", "copy",
        "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()

    def chunks() -> Iterator[bytes]:
        while True:
            data = os.read(out_fd, 1 << 16)
            if not data:
                return
            yield data

    try:
        reader = StreamReader(chunks(), t0)
        reader.wait_first_byte()
        frame, nbytes, ready = first_frame(reader)
        t_frame = time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
        os.unlink(list_name)
    assert reader.first_byte_s is not None
    return Sample(t_lookup, reader.first_byte_s, ready, t_frame, nbytes, 0, frame)


def stats(samples: list[Sample]) -> dict[str, Any]:
    return {
        "first_byte": summary_ms(s.first_byte_s for s in samples),
        "first_frame": summary_ms(s.first_frame_s for s in samples),
        "first_frame_bytes_arrived": summary_ms(s.data_ready_s for s in samples),
        "client_open_and_decode": summary_ms(s.first_frame_s - s.data_ready_s for s in samples),
        "headers_or_lookup": summary_ms(s.headers_s for s in samples),
        "bytes_to_first_frame_median": sorted(s.bytes_to_frame for s in samples)[len(samples) // 2],
        "frame": samples[0].frame if samples else None,
    }


# main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=50, help="requests per side")
    ap.add_argument("--removed-requests", type=int, default=20, help="for the removed camera")
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--hours", type=float, default=24.0, help="recorded hours per camera")
    ap.add_argument("--days-back", type=float, default=7.0, help="middle of the recorded day")
    ap.add_argument(
        "--span-to-now",
        action="store_true",
        help="the asked camera's index runs on from the recorded day to now",
    )
    ap.add_argument("--range-s", type=float, default=300.0, help="length of each asked range")
    ap.add_argument("--pause-s", type=float, default=0.3, help="pause between requests")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the data dir in bench/out")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.port)

    import httpx

    mach = machine()
    clip = bench_clip()
    segs = recorded_segments(clip)
    seg_root = MEDIA / f"segments-{clip.stem}"
    for seg in segs:
        seg["src"] = str(seg_root / seg["file"])
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="playback-", dir=OUT))
    result: dict[str, Any] = {
        "benchmark": "playback_start",
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": mach,
        "segment_files": [
            {k: seg[k] for k in ("file", "duration", "bytes", "keyframes")} for seg in segs
        ],
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"building index in {work} ...", flush=True)
        lay = build_index(
            work / "data",
            segs,
            args.cameras,
            args.hours,
            args.days_back,
            args.span_to_now,
            args.removed_requests > 0,
            lambda m: print(m, flush=True),
        )
        result["index"] = {
            "rows": lay.rows,
            "cameras": len(lay.cameras),
            "hours_per_camera": lay.hours,
            "asked_camera": lay.asked,
            "asked_camera_spans_to_now": args.span_to_now,
            "removed_camera": lay.removed,
            "recorded_day_utc": [
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(lay.t0)),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(lay.t0 + lay.hours * 3600)),
            ],
            "build_s": round(lay.build_s, 1),
            "segment_index_add_per_s": round(lay.rows / lay.build_s, 1),
            "add_cpu_s": round(lay.add_cpu_s, 1),
            "db_mb": round((work / "data" / "citywatch.db").stat().st_size / 2**20, 1),
        }
        print(f"index: {result['index']}", flush=True)

        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.playback_start",
                "--serve",
                str(lay.data_dir),
                "--port",
                str(port),
            ],  # fmt: skip
            cwd=REPO,
        )
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("server did not come up")
            time.sleep(0.2)
        login = client.post("/api/v1/auth/login", json={"username": USER, "password": PASSWORD})
        login.raise_for_status()
        token = login.json()["token"]

        rng = random.Random(args.seed)
        lo = lay.t0 + 60
        hi = lay.t0 + lay.hours * 3600 - args.range_s - 60
        db_path = lay.data_dir / "citywatch.db"
        rec_root = lay.data_dir / "recordings"

        # warm-up (imports, first connections, page cache): not counted
        for _ in range(3):
            s = rng.uniform(lo, hi)
            via_api(client, token, lay.asked, s, s + args.range_s)
            via_ffmpeg(db_path, rec_root, lay.asked, s, s + args.range_s)

        api: list[Sample] = []
        peer: list[Sample] = []
        api_cpu = 0.0
        meter = WindowMeter()
        for i in range(args.requests):
            s = rng.uniform(lo, hi)
            order = ["api", "ffmpeg"] if rng.random() < 0.5 else ["ffmpeg", "api"]
            for side in order:
                if side == "api":
                    c0 = proc_cpu_s(server.pid) or 0.0
                    api.append(via_api(client, token, lay.asked, s, s + args.range_s))
                    time.sleep(args.pause_s)  # let the server notice the disconnect
                    api_cpu += (proc_cpu_s(server.pid) or 0.0) - c0
                else:
                    peer.append(via_ffmpeg(db_path, rec_root, lay.asked, s, s + args.range_s))
                    time.sleep(args.pause_s)
            if (i + 1) % 10 == 0:
                print(f"  {i + 1}/{args.requests} requests", flush=True)
        win = meter.stop()
        result["range_s"] = args.range_s
        result["citywatch_api"] = stats(api)
        result["citywatch_api"]["server_cpu_ms_per_request"] = round(api_cpu / len(api) * 1000, 1)
        result["ffmpeg_concat"] = stats(peer)
        result["machine_window"] = win.as_dict()

        removed: list[Sample] = []
        if lay.removed is not None:
            for _ in range(args.removed_requests):
                s = rng.uniform(lo, hi)
                removed.append(via_api(client, token, lay.removed, s, s + args.range_s))
                time.sleep(args.pause_s)
            result["citywatch_api_removed_camera"] = stats(removed)
        client.close()
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    a, b = result["citywatch_api"], result["ffmpeg_concat"]
    idx = result["index"]
    summary = [
        f"machine: {mach['nproc']} x {mach['cpu_model']}, {mach['ram_gib']} GiB, "
        f"load {mach['loadavg']}",
        f"index: {idx['rows']} rows ({idx['cameras']} cameras x {idx['hours_per_camera']} h), "
        f"built with SegmentIndex.add at {idx['segment_index_add_per_s']} rows/s",
        f"{args.requests} random {args.range_s:g} s ranges on {idx['recorded_day_utc'][0]} .. "
        f"{idx['recorded_day_utc'][1]} (about {args.days_back:g} days back):",
        "                                        p50      p95      max   (ms)",
    ]
    for label, side in (("CityWatch API", a), ("ffmpeg concat", b)):
        for what in ("first_byte", "first_frame_bytes_arrived", "first_frame"):
            st = side[what]
            summary.append(
                f"  {label:13s} {what:25s} {st['p50_ms']:7.1f}  {st['p95_ms']:7.1f}  "
                f"{st['max_ms']:7.1f}"
            )
    summary.append(
        f"  client-side open+decode of the first frame (both sides): p50 "
        f"{a['client_open_and_decode']['p50_ms']} / {b['client_open_and_decode']['p50_ms']} ms"
    )
    summary.append(f"  CityWatch server CPU per request: {a['server_cpu_ms_per_request']} ms")
    if "citywatch_api_removed_camera" in result:
        r = result["citywatch_api_removed_camera"]
        summary.append(
            f"  removed camera ({lay.removed}): first byte p50 {r['first_byte']['p50_ms']} "
            f"p95 {r['first_byte']['p95_ms']} ms; first frame p50 {r['first_frame']['p50_ms']} "
            f"p95 {r['first_frame']['p95_ms']} ms"
        )
    goal = a["first_frame"]["p95_ms"] < 200
    summary.append(f"  goal first frame < 200 ms at p95: {'met' if goal else 'MISSED'}")
    emit("playback_start", result, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
