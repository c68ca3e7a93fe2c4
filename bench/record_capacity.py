"""Recording capacity: CPU per recorded 1080p stream, CityWatch vs ffmpeg-per-camera.

N cameras are simulated by the real GStreamer RTSP test server on loopback, each serving
a 1080p25 H.264 clip (~4 Mbit/s, GOP 50, no B-frames). In the same run:

* side A: one CityWatch recorder process (a child of this script) runs N CameraWorker
  threads, each with a SegmentWriter (10 s fMP4 segments, indexed in SQLite) and a LiveFeed;
* side B: one Debian ``ffmpeg -c copy -f segment`` process per camera.

After all streams are flowing and a warm-up, a window of D seconds is measured: CPU-seconds
of each process (from /proc/<pid>/stat), packets received (expected: D*25 per stream),
RSS; then everything is stopped and the segments written are counted and probed.

    .venv/bin/python -m bench.record_capacity --streams 16 32 --duration 60
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from bench.common import (
    FFMPEG,
    OUT,
    REPO,
    WindowMeter,
    bench_clip,
    emit,
    machine,
    probe_clip,
    proc_cpu_s,
    proc_cpu_split,
    proc_pss_mb,
    proc_rss_mb,
    proc_threads,
)

FPS = 25


# side A: the CityWatch recorder (child process) ---------------------------------------------
class _PlainHealth:
    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.state = "starting"
        self.reconnects = 0
        self.timestamp_jumps = 0
        self.last_error = ""


class PlainWorker:
    """A reference recorder without CityWatch's logic, for the breakdown: PyAV demux only
    (``pyav-demux``), or demux plus a bare remux into fMP4 segments cut at the first
    keyframe after ``segment_s`` (``pyav-remux``). One thread per camera, like CameraWorker."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        root: Path,
        remux: bool,
        segment_s: float,
        on_segment: Any,
        interrupt: bool = True,
    ) -> None:
        self.interrupt = interrupt
        self.camera_id = camera_id
        self.url = url
        self.root = root / camera_id
        self.remux = remux
        self.segment_s = segment_s
        self.on_segment = on_segment
        self.health = _PlainHealth()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"plain-{camera_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        import av

        from citywatch.recording.segmenter import FMP4_FLAGS, SegmentInfo

        self.root.mkdir(parents=True, exist_ok=True)
        opts = {"rtsp_transport": "tcp", "timeout": "10000000", "max_delay": "500000"}
        try:
            # CameraWorker passes PyAV a timeout, which installs an interrupt callback that
            # takes the GIL on every call; "-nointerrupt" leaves it out (socket timeout only).
            if self.interrupt:
                src = av.open(self.url, options=opts, timeout=(10.0, 10.0))
            else:
                src = av.open(self.url, options=opts)
        except Exception as exc:
            self.health.state, self.health.last_error = "error", str(exc)
            return
        v = src.streams.video[0]
        assert v.time_base is not None
        tb = float(v.time_base)
        limit = int((self.segment_s - 0.25) / tb)
        out: Any = None
        ostream: Any = None
        seg_first = last = n_seg = 0
        path = self.root

        def finish() -> None:
            out.close()
            info = SegmentInfo(self.camera_id, path, 0.0, (last - seg_first) * tb, 0, "h264", 0, 0)
            self.on_segment(info)

        h = self.health
        try:
            for p in src.demux(v):
                if self._stop.is_set():
                    break
                if not p.size:
                    continue
                h.packets += 1
                h.bytes += p.size
                h.state = "online"
                if not self.remux or p.dts is None:
                    continue
                if out is None or (p.is_keyframe and p.dts - seg_first >= limit):
                    if out is None and not p.is_keyframe:
                        continue
                    if out is not None:
                        finish()
                    path = self.root / f"seg{n_seg:05d}.mp4"
                    n_seg += 1
                    out = av.open(str(path), "w", format="mp4", options={"movflags": FMP4_FLAGS})
                    ostream = out.add_stream_from_template(v)
                    seg_first = p.dts
                last = p.dts
                pts = p.pts if p.pts is not None else p.dts
                p.dts -= seg_first
                p.pts = max(pts - seg_first, p.dts)
                p.stream = ostream
                out.mux(p)
        except Exception as exc:
            h.state, h.last_error = "error", str(exc)
        finally:
            if out is not None:
                finish()
            src.close()


def recorder_child(
    urls: list[str], root: Path, use_index: bool, segment_s: float, variant: str = "citywatch"
) -> int:
    """Run N camera workers in this process; answer ``status``/``stop`` lines on stdin."""
    import av

    from citywatch.cameras.live import LiveFeed
    from citywatch.cameras.worker import Backoff, CameraWorker
    from citywatch.config import StreamConfig
    from citywatch.recording.index import SegmentIndex
    from citywatch.recording.segmenter import SegmentInfo, SegmentWriter
    from citywatch.store.db import Database

    root.mkdir(parents=True, exist_ok=True)
    rec_root = root / "recordings"
    rec_root.mkdir(exist_ok=True)
    index: SegmentIndex | None = None
    db: Database | None = None
    if use_index:
        db = Database(f"sqlite:///{root / 'citywatch.db'}")
        db.upgrade()
        index = SegmentIndex(db, rec_root)
    lock = threading.Lock()
    segments: dict[str, list[SegmentInfo]] = {}

    def on_segment(info: SegmentInfo) -> None:
        if index is not None and variant.startswith("citywatch"):
            index.add(info)
        with lock:
            segments.setdefault(info.camera_id, []).append(info)

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    rss, _ = proc_rss_mb(os.getpid())
    import citywatch

    say(
        {
            "event": "ready",
            "rss_mb": rss,
            "pss_mb": proc_pss_mb(os.getpid()),
            "av": av.__version__,
            "code": str(Path(citywatch.__file__).parent),
        }
    )

    if variant == "citywatch-nointerrupt":
        # Diagnostic only: CityWatch's own worker, with the one difference that PacketSource's
        # av.open gets no PyAV timeout (so no GIL-taking interrupt callback; the RTSP socket
        # timeout in its options still applies). citywatch/ itself is not modified.
        import types

        import citywatch.cameras.source as source_mod

        def open_no_timeout(*a: Any, **kw: Any) -> Any:
            kw.pop("timeout", None)
            return av.open(*a, **kw)

        proxy = types.SimpleNamespace(**{k: getattr(av, k) for k in dir(av) if k[0] != "_"})
        proxy.open = open_no_timeout
        vars(source_mod)["av"] = proxy

    workers: list[Any] = []
    for i, url in enumerate(urls):
        cam = f"cam{i:02d}"
        if not variant.startswith("citywatch"):
            remux = variant.startswith("pyav-remux")
            interrupt = not variant.endswith("-nointerrupt")
            workers.append(PlainWorker(cam, url, rec_root, remux, segment_s, on_segment, interrupt))
            continue
        writer = SegmentWriter(cam, rec_root, on_segment, segment_s)
        workers.append(
            CameraWorker(
                cam,
                StreamConfig(url=url),
                writer,
                LiveFeed(cam),
                backoff=Backoff(1.0, 5.0, 2.0, 0.2),
                open_timeout_s=10.0,
            )
        )
    for w in workers:
        w.start()
    say({"event": "started", "workers": len(workers)})

    def status() -> dict[str, Any]:
        with lock:
            segs = [len(segments.get(w.camera_id, [])) for w in workers]
        return {
            "t": time.time(),
            "packets": [w.health.packets for w in workers],
            "bytes": [w.health.bytes for w in workers],
            "states": [w.health.state for w in workers],
            "reconnects": [w.health.reconnects for w in workers],
            "jumps": [w.health.timestamp_jumps for w in workers],
            "errors": [w.health.last_error for w in workers],
            "segments": segs,
            "threads": threading.active_count(),
        }

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "status":
            say({"event": "status", **status()})
        elif cmd == "stop":
            for w in workers:
                w.request_stop()
            for w in workers:
                w.stop()
            st = status()
            with lock:
                st["durations"] = [
                    [round(s.duration, 3) for s in segments.get(w.camera_id, [])] for w in workers
                ]
                st["files"] = [
                    [str(s.path) for s in segments.get(w.camera_id, [])] for w in workers
                ]
            say({"event": "stopped", **st})
            break
    if db is not None:
        db.dispose()
    return 0


class Recorder:
    """Parent-side handle of the recorder child process."""

    def __init__(
        self,
        urls: list[str],
        root: Path,
        use_index: bool,
        segment_s: float,
        variant: str = "citywatch",
    ) -> None:
        cmd = [
            sys.executable, "-m", "bench.record_capacity", "--child",
            "--child-root", str(root), "--segment-seconds", str(segment_s),
            "--recorder", variant,
            *(["--no-index"] if not use_index else []),
            *[a for u in urls for a in ("--child-url", u)],
        ]  # fmt: skip
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.ready = self.read("ready", 120)
        self.started = self.read("started", 60)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)  # EOF

    def read(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise RuntimeError(
                    f"recorder: no {event!r} in {timeout}s\n{self.stderr()}"
                ) from None
            if line is None:
                raise RuntimeError(f"recorder exited before {event!r}:\n{self.stderr()}")
            msg: dict[str, Any] = json.loads(line)
            if msg.get("event") == event:
                return msg

    def ask(self, cmd: str, event: str, timeout: float = 60) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.read(event, timeout)

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


# side B: ffmpeg per camera -----------------------------------------------------------------
class FfmpegRecorder:
    """One ``ffmpeg -c copy -f segment`` process recording one camera."""

    def __init__(self, url: str, outdir: Path, segment_s: float) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        self.outdir = outdir
        self.progress = outdir / "progress.txt"
        cmd = [
            FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
            "-progress", str(self.progress), "-stats_period", "0.2",
            "-rtsp_transport", "tcp", "-i", url,
            "-c", "copy", "-f", "segment", "-segment_time", f"{segment_s:g}",
            "-segment_format", "mp4",
            "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
            "-reset_timestamps", "1", str(outdir / "out%05d.mp4"),
        ]  # fmt: skip
        self.cmd = cmd
        self.err: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=self.err)

    def frames(self) -> int:
        """Packets copied so far (last ``frame=`` of the progress file); -1 if none yet."""
        try:
            text = self.progress.read_text(encoding="ascii", errors="replace")
        except OSError:
            return -1
        last = -1
        for line in text.splitlines():
            if line.startswith("frame="):
                with contextlib.suppress(ValueError):
                    last = int(line[6:])
        return last

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.err.seek(0)
        text = self.err.read()[-2000:]
        self.err.close()
        return self.proc.returncode, text


# checks on what was written ---------------------------------------------------------------------
def probe_segment(path: Path) -> dict[str, Any]:
    """Packets, keyframe-first, duration and whether the first frame decodes."""
    import av

    out: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size}
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            n = 0
            first_key = None
            ts: list[int] = []
            for p in c.demux(v):
                if p.size == 0:
                    continue
                if first_key is None:
                    first_key = bool(p.is_keyframe)
                n += 1
                if p.dts is not None:
                    ts.append(int(p.dts))
            out["packets"] = n
            out["starts_with_keyframe"] = first_key
            if len(ts) > 1 and v.time_base is not None:
                out["duration_s"] = round(float((ts[-1] - ts[0]) * v.time_base) + 1 / FPS, 3)
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            out["decodes"] = True
            out["frame"] = f"{frame.width}x{frame.height}"
    except Exception as exc:  # report, do not crash the benchmark
        out["decodes"] = False
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def count_packets(paths: list[Path]) -> int:
    import av

    n = 0
    for p in paths:
        try:
            with av.open(str(p)) as c:
                n += sum(1 for pk in c.demux(c.streams.video[0]) if pk.size)
        except Exception:
            pass
    return n


# one run ----------------------------------------------------------------------------------------
def wait_until(pred: Any, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - t0


def run_one(args: argparse.Namespace, n: int, clip: Path, workdir: Path) -> dict[str, Any]:
    from tests.support.rtsp import RtspServer

    key = args.recorder  # result key of side A
    sides = (
        {key, "ffmpeg"} if args.sides == "both" else {key if args.sides == "recorder" else "ffmpeg"}
    )
    if args.mounts == "shared":
        mounts = {"cam": clip}
        names = ["cam"] * n
    else:
        names = [f"cam{i:02d}" for i in range(n)]
        mounts = {name: clip for name in names}
    run_dir = workdir / f"n{n}"
    result: dict[str, Any] = {"streams": n, "sides": sorted(sides), "mounts": args.mounts}
    server = RtspServer(mounts or {"idle": clip})
    server.start(timeout=60)
    assert server._proc is not None
    server_pid = server._proc.pid
    rec: Recorder | None = None
    ffs: list[FfmpegRecorder] = []
    try:
        urls = [server.url(nm) for nm in names]
        if key in sides:
            rec = Recorder(urls, run_dir / "recorder", not args.no_index, args.segment_seconds, key)
        if "ffmpeg" in sides:
            ffs = [
                FfmpegRecorder(u, run_dir / "ffmpeg" / f"cam{i:02d}", args.segment_seconds)
                for i, u in enumerate(urls)
            ]

        def all_flowing() -> bool:
            ok = True
            if rec is not None:
                st = rec.ask("status", "status")
                ok = ok and all(p > 0 for p in st["packets"])
            if ffs:
                ok = ok and all(f.frames() > 0 for f in ffs)
                dead = [f for f in ffs if f.proc.poll() is not None]
                if dead:
                    rc, err = dead[0].stop()
                    raise RuntimeError(f"ffmpeg exited rc={rc}: {err}")
            return ok

        result["connect_s"] = round(wait_until(all_flowing, 90, "all streams flowing"), 2)
        time.sleep(args.warmup)

        # measured window ---------------------------------------------------------------
        def sample() -> dict[str, Any]:
            s: dict[str, Any] = {"t": time.monotonic(), "server_cpu": proc_cpu_s(server_pid)}
            if rec is not None:
                s["rec_cpu"] = proc_cpu_s(rec.pid)
                s["rec_split"] = proc_cpu_split(rec.pid)
                s["rec"] = rec.ask("status", "status")
            if ffs:
                s["ff_cpu"] = [proc_cpu_s(f.proc.pid) for f in ffs]
                s["ff_split"] = [proc_cpu_split(f.proc.pid) for f in ffs]
                s["ff_frames"] = [f.frames() for f in ffs]
            return s

        meter = WindowMeter()
        s0 = sample()
        time.sleep(args.duration)
        s1 = sample()
        win = meter.stop()
        wall = s1["t"] - s0["t"]
        expected = wall * FPS
        ours = (s1["server_cpu"] or 0) - (s0["server_cpu"] or 0)
        server_cpu = ours
        result["window_s"] = round(wall, 2)
        result["expected_packets_per_stream"] = round(expected, 1)
        result["rtsp_server"] = {
            "cpu_s": round(server_cpu, 2),
            "pct_of_one_core": round(server_cpu / wall * 100, 1),
            "clients": n * len(sides),
            "rss_mb": round(proc_rss_mb(server_pid)[0], 1),
        }

        if rec is not None:
            cpu = s1["rec_cpu"] - s0["rec_cpu"]
            ours += cpu
            got = [b - a for a, b in zip(s0["rec"]["packets"], s1["rec"]["packets"], strict=True)]
            rbytes = [b - a for a, b in zip(s0["rec"]["bytes"], s1["rec"]["bytes"], strict=True)]
            rss, hwm = proc_rss_mb(rec.pid)
            per = cpu / wall / n * 100
            result[key] = {
                "variant": key,
                "code": rec.ready.get("code"),
                "cpu_s": round(cpu, 2),
                "pct_of_one_core_total": round(cpu / wall * 100, 1),
                "pct_of_one_core_per_stream": round(per, 3),
                "streams_per_core": round(100 / per, 1) if per else None,
                "packets_received": sum(got),
                "packets_expected": round(expected * n),
                "packets_short": round(expected * n - sum(got)),
                "min_packets_one_stream": min(got),
                "mbit_s_per_stream": round(sum(rbytes) * 8 / wall / n / 1e6, 2),
                "rss_mb_baseline": round(rec.ready["rss_mb"], 1),
                "rss_mb": round(rss, 1),
                "rss_hwm_mb": round(hwm, 1),
                "rss_mb_per_camera": round((rss - rec.ready["rss_mb"]) / n, 2),
                "pss_mb_baseline": round(rec.ready["pss_mb"], 1),
                "pss_mb": round(proc_pss_mb(rec.pid), 1),
                "threads": proc_threads(rec.pid),
                "user_s": round(s1["rec_split"][0] - s0["rec_split"][0], 2),
                "system_s": round(s1["rec_split"][1] - s0["rec_split"][1], 2),
                "ctx_switches_per_packet": round(
                    (
                        s1["rec_split"][2]
                        + s1["rec_split"][3]
                        - s0["rec_split"][2]
                        - s0["rec_split"][3]
                    )
                    / max(1, sum(got)),
                    2,
                ),
                "reconnects_in_window": sum(s1["rec"]["reconnects"]) - sum(s0["rec"]["reconnects"]),
            }
        if ffs:
            c0 = [c or 0.0 for c in s0["ff_cpu"]]
            c1 = [c or 0.0 for c in s1["ff_cpu"]]
            cpu = sum(c1) - sum(c0)
            ours += cpu
            got = [b - a for a, b in zip(s0["ff_frames"], s1["ff_frames"], strict=True)]
            rss_total = sum(proc_rss_mb(f.proc.pid)[0] for f in ffs)
            pss_total = sum(proc_pss_mb(f.proc.pid) for f in ffs)
            per = cpu / wall / n * 100
            result["ffmpeg"] = {
                "cpu_s": round(cpu, 2),
                "pct_of_one_core_total": round(cpu / wall * 100, 1),
                "pct_of_one_core_per_stream": round(per, 3),
                "streams_per_core": round(100 / per, 1) if per else None,
                "packets_received": sum(got),
                "packets_expected": round(expected * n),
                "packets_short": round(expected * n - sum(got)),
                "min_packets_one_stream": min(got),
                "note_packets": "from ffmpeg -progress frame= (0.2 s granularity)",
                "user_s": round(
                    sum(b[0] - a[0] for a, b in zip(s0["ff_split"], s1["ff_split"], strict=True)), 2
                ),
                "system_s": round(
                    sum(b[1] - a[1] for a, b in zip(s0["ff_split"], s1["ff_split"], strict=True)), 2
                ),
                "ctx_switches_per_packet": round(
                    sum(
                        b[2] + b[3] - a[2] - a[3]
                        for a, b in zip(s0["ff_split"], s1["ff_split"], strict=True)
                    )
                    / max(1, sum(got)),
                    2,
                ),
                "rss_mb_total": round(rss_total, 1),
                "rss_mb_per_camera": round(rss_total / n, 2),
                "pss_mb_total": round(pss_total, 1),
                "pss_mb_per_camera": round(pss_total / n, 2),
            }
        result["machine_window"] = win.as_dict(ours)
        if key in result and "ffmpeg" in result:
            a, b = result[key], result["ffmpeg"]
            result["cpu_ratio_recorder_over_ffmpeg"] = round(a["cpu_s"] / b["cpu_s"], 3)

        # stop and check what was written ----------------------------------------------------
        if rec is not None:
            st = rec.ask("stop", "stopped", timeout=120)
            files = [Path(f) for cam in st["files"] for f in cam]
            durs = [d for cam in st["durations"] for d in cam]
            on_disk = list((run_dir / "recorder" / "recordings").rglob("*.mp4"))
            part = list((run_dir / "recorder" / "recordings").rglob("*.part"))
            sample_files = [files[0], files[-1]] if files else []
            result[key]["segments"] = {
                "indexed": len(files),
                "per_camera": st["segments"],
                "files_on_disk": len(on_disk),
                "part_files_left": len(part),
                "duration_min_s": min(durs) if durs else None,
                "duration_max_s": max(durs) if durs else None,
                "timestamp_jumps": sum(st["jumps"]),
                "reconnects_total": sum(st["reconnects"]),
                "total_packets_received": sum(st["packets"]),
                "total_packets_in_segments": count_packets(files) if args.count else None,
                "probe": [probe_segment(p) for p in sample_files],
            }
            if any(st["errors"]):
                result[key]["errors"] = sorted({e for e in st["errors"] if e})
        if ffs:
            rcs = []
            for f in ffs:
                rc, err = f.stop()
                rcs.append(rc)
                if err.strip():
                    result.setdefault("ffmpeg_stderr", []).append(err.strip()[-300:])
            final = [f.frames() for f in ffs]
            files = sorted((run_dir / "ffmpeg").rglob("out*.mp4"))
            result["ffmpeg"]["segments"] = {
                "files": len(files),
                "per_camera": [len(list(f.outdir.glob("out*.mp4"))) for f in ffs],
                "exit_codes": sorted(set(rcs)),
                "total_packets_progress": sum(final),
                "total_packets_in_segments": count_packets(files) if args.count else None,
                "probe": [probe_segment(p) for p in (files[:1] + files[-1:])],
            }
    finally:
        if rec is not None:
            rec.close()
        for f in ffs:
            if f.proc.poll() is None:
                f.stop()
        server.stop()
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return result


def summarize(res: dict[str, Any]) -> list[str]:
    out = [f"N={res['streams']} streams, window {res.get('window_s')} s, mounts={res['mounts']}"]
    sides = ("citywatch", "citywatch-nointerrupt", "pyav-remux", "pyav-demux")
    for side in (*sides, "pyav-remux-nointerrupt", "ffmpeg"):
        r = res.get(side)
        if not r:
            continue
        out.append(
            f"  {side:9s}: {r['cpu_s']:7.2f} CPU-s = {r['pct_of_one_core_per_stream']:.3f} % of "
            f"a core per stream -> {r['streams_per_core']} streams/core; packets "
            f"{r['packets_received']}/{r['packets_expected']} (short {r['packets_short']})"
        )
        if side != "ffmpeg":
            out.append(
                f"             memory: RSS {r['rss_mb_baseline']} MB (N=0) -> {r['rss_mb']} MB "
                f"= {r['rss_mb_per_camera']} MB/camera (peak {r['rss_hwm_mb']} MB)"
            )
        else:
            out.append(
                f"             memory: PSS {r['pss_mb_per_camera']} MB/camera "
                f"(RSS {r['rss_mb_per_camera']} MB/camera incl. shared libraries)"
            )
    if "cpu_ratio_recorder_over_ffmpeg" in res:
        out.append(f"  CPU ratio recorder/ffmpeg = {res['cpu_ratio_recorder_over_ffmpeg']}")
    s = res.get("rtsp_server", {})
    m = res.get("machine_window", {})
    out.append(
        f"  RTSP server: {s.get('pct_of_one_core')} % of a core for {s.get('clients')} clients;"
        f" machine busy {m.get('machine_busy_share')} of capacity, other processes "
        f"{m.get('other_processes_cpu_s')} CPU-s, load {m.get('loadavg_start')}"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--streams", type=int, nargs="+", default=[16], help="N values, in order")
    ap.add_argument("--duration", type=float, default=60.0, help="measured window, s")
    ap.add_argument("--warmup", type=float, default=5.0, help="s after all streams flow")
    ap.add_argument("--sides", choices=["both", "recorder", "ffmpeg"], default="both")
    ap.add_argument(
        "--recorder",
        choices=[
            "citywatch",
            "pyav-remux",
            "pyav-demux",
            "pyav-remux-nointerrupt",
            "citywatch-nointerrupt",
        ],
        default="citywatch",
        help="side A: CityWatch's CameraWorker+SegmentWriter+LiveFeed (default), or a "
        "reference: bare PyAV remux into segments, PyAV demux only, or the bare remux "
        "without PyAV's timeout (no GIL-taking interrupt callback); citywatch-nointerrupt "
        "is a diagnostic: CityWatch's worker with PyAV's timeout left out",
    )
    ap.add_argument(
        "--mounts",
        choices=["per-stream", "shared"],
        default="per-stream",
        help="one RTSP mount per stream (same file), or all clients on one mount",
    )
    ap.add_argument("--clip-seconds", type=int, default=60)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--bitrate", default="4M")
    ap.add_argument("--gop", type=int, default=50)
    ap.add_argument("--segment-seconds", type=float, default=10.0)
    ap.add_argument("--no-index", action="store_true", help="do not index segments in SQLite")
    ap.add_argument("--count", action="store_true", help="count packets in every segment")
    ap.add_argument("--keep", action="store_true", help="keep recordings in bench/out/work")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-url", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--child-root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        assert args.child_root is not None
        return recorder_child(
            args.child_url, args.child_root, not args.no_index, args.segment_seconds, args.recorder
        )

    from tests.support.rtsp import gst_rtsp_available

    reason = gst_rtsp_available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    mach = machine()
    clip = bench_clip(args.clip_seconds, args.size, FPS, args.gop, args.bitrate)
    result: dict[str, Any] = {
        "benchmark": "record_capacity",
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": mach,
        "clip": probe_clip(clip),
        "runs": [],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="record-", dir=OUT))
    summary: list[str] = [
        f"machine: {mach['nproc']} x {mach['cpu_model']}, {mach['ram_gib']} GiB",
        f"clip: {result['clip']}",
    ]
    try:
        for n in args.streams:
            if n == 0:  # just the recorder's memory after imports
                rec = Recorder(
                    [], workdir / "n0", not args.no_index, args.segment_seconds, args.recorder
                )
                time.sleep(1)
                rss, _ = proc_rss_mb(rec.pid)
                rec.ask("stop", "stopped")
                rec.close()
                run = {"streams": 0, args.recorder: {"rss_mb_baseline": round(rss, 1)}}
                summary.append(f"N=0: recorder RSS after imports {rss:.1f} MB")
            else:
                run = run_one(args, n, clip, workdir)
                summary += summarize(run)
            result["runs"].append(run)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    emit("record_capacity", result, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
