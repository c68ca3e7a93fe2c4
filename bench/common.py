"""Shared benchmark helpers: machine facts, CPU accounting from /proc, media, results.

CPU is measured in CPU-seconds (utime + stime from ``/proc/<pid>/stat``), not wall time,
because other work may share the machine; the machine-wide busy share over the same window
is recorded next to every figure so contention is visible.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
MEDIA = OUT / "media"
FFMPEG = "/usr/bin/ffmpeg"
FFPROBE = "/usr/bin/ffprobe"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# machine --------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, kernel, date and load: what BENCHMARKS.md quotes."""
    model = ""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    ff = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ffmpeg": (ff.stdout.splitlines() or ["?"])[0],
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg": loadavg(),
        **code_version(),
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and any uncommitted change to citywatch/ (the code under test)."""

    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return res.stdout.rstrip("\n")

    import citywatch

    where = str(Path(citywatch.__file__).resolve().parent)
    snap = REPO / ".snapshot-commit"
    if snap.exists():  # bench/snapshot.sh: a clean copy of one commit
        sha = snap.read_text().strip()
        return {"git_head": sha, "snapshot": True, "citywatch_uncommitted": [], "code": where}
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "citywatch").splitlines()]
    return {
        "git_head": git("rev-parse", "--short", "HEAD"),
        "snapshot": False,
        "citywatch_uncommitted": dirty,
        "code": where,
    }


def loadavg() -> list[float]:
    with open("/proc/loadavg", encoding="ascii") as f:
        return [float(x) for x in f.read().split()[:3]]


# CPU accounting ---------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process (all its threads) in seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_cpu_split(pid: int) -> tuple[float, float, int, int]:
    """(user s, system s, voluntary, involuntary context switches summed over threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    vol = invol = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tasks = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except OSError:
            continue
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK, vol, invol


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


def proc_pss_mb(pid: int) -> float:
    """Proportional set size (shared pages divided among their users) in MiB; 0 if unknown."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def proc_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat, in seconds."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])  # guest time is already part of user
    return (total - idle) / CLK_TCK, total / CLK_TCK


@dataclass
class Window:
    """Machine-wide CPU use over a measurement window."""

    wall_s: float
    busy_cpu_s: float
    capacity_cpu_s: float
    load_start: list[float]
    load_end: list[float]

    @property
    def busy_share(self) -> float:
        return self.busy_cpu_s / self.capacity_cpu_s if self.capacity_cpu_s else 0.0

    def as_dict(self, ours_cpu_s: float | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "wall_s": round(self.wall_s, 3),
            "machine_busy_cpu_s": round(self.busy_cpu_s, 2),
            "machine_capacity_cpu_s": round(self.capacity_cpu_s, 2),
            "machine_busy_share": round(self.busy_share, 3),
            "loadavg_start": self.load_start,
            "loadavg_end": self.load_end,
        }
        if ours_cpu_s is not None:
            d["benchmark_cpu_s"] = round(ours_cpu_s, 2)
            d["other_processes_cpu_s"] = round(max(0.0, self.busy_cpu_s - ours_cpu_s), 2)
        return d


class WindowMeter:
    """Start/stop a machine-wide CPU window."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._busy0, self._total0 = system_cpu()
        self._load0 = loadavg()

    def stop(self) -> Window:
        busy, total = system_cpu()
        return Window(
            wall_s=time.monotonic() - self._t0,
            busy_cpu_s=busy - self._busy0,
            capacity_cpu_s=total - self._total0,
            load_start=self._load0,
            load_end=loadavg(),
        )


# statistics -------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def summary_ms(values: Iterable[float]) -> dict[str, float]:
    """p50/p95/max/mean of durations given in seconds, in milliseconds."""
    v = [x * 1000 for x in values]
    if not v:
        return {}
    return {
        "n": len(v),
        "p50_ms": round(percentile(v, 50), 1),
        "p95_ms": round(percentile(v, 95), 1),
        "max_ms": round(max(v), 1),
        "min_ms": round(min(v), 1),
        "mean_ms": round(statistics.fmean(v), 1),
    }


# media ------------------------------------------------------------------------------------
def bench_clip(
    seconds: int = 60,
    size: str = "1920x1080",
    fps: int = 25,
    gop: int = 50,
    bitrate: str = "4M",
    noise: int = 12,
) -> Path:
    """A realistic camera stream as MPEG-TS: testsrc2 plus temporal noise (so x264 spends
    the whole bit budget, like a real street scene), H.264 main, no B-frames, fixed GOP.
    Cached in bench/out/media."""
    name = f"testsrc2-{size}-{fps}fps-g{gop}-{bitrate}-n{noise}-{seconds}s.ts"
    dst = MEDIA / name
    if dst.exists():
        return dst
    MEDIA.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name("." + dst.name + ".tmp")
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
        "-t", str(seconds),
        "-vf", f"noise=alls={noise}:allf=t",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "0",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", _double(bitrate),
        "-pix_fmt", "yuv420p", "-f", "mpegts", str(tmp),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=900)
    tmp.replace(dst)
    return dst


def _double(bitrate: str) -> str:
    unit = bitrate[-1] if bitrate[-1].isalpha() else ""
    num = float(bitrate[:-1] if unit else bitrate)
    return f"{num * 2:g}{unit}"


def probe_clip(path: Path) -> dict[str, Any]:
    """Width, height, frame count, duration and average bitrate of a clip (ffprobe)."""
    res = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=width,height,nb_read_packets,codec_name,profile",
            "-show_entries",
            "format=duration,size",
            "-of",
            "json",
            str(path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(res.stdout)
    st, fm = data["streams"][0], data["format"]
    dur = float(fm["duration"])
    return {
        "file": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
        "codec": st.get("codec_name"),
        "profile": st.get("profile"),
        "width": st.get("width"),
        "height": st.get("height"),
        "packets": int(st.get("nb_read_packets", 0)),
        "duration_s": round(dur, 2),
        "avg_mbit_s": round(int(fm["size"]) * 8 / dur / 1e6, 2),
    }


# results ----------------------------------------------------------------------------------
def emit(name: str, result: dict[str, Any], summary: list[str]) -> Path:
    """Print the JSON line and the human summary; write bench/out/<name>-<stamp>.json."""
    OUT.mkdir(parents=True, exist_ok=True)
    end = code_version()
    result["code_at_end"] = end
    start = result.get("machine", {})
    if (
        start.get("git_head") not in (None, end["git_head"])
        or start.get("citywatch_uncommitted") != end["citywatch_uncommitted"]
    ):
        summary.append(
            f"WARNING: the code changed during the run ({start.get('git_head')} -> "
            f"{end['git_head']}, uncommitted: {end['citywatch_uncommitted']}); "
            "rerun (bench/snapshot.sh) for a clean figure"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = OUT / f"{name}-{stamp}.json"
    line = json.dumps(result, sort_keys=False, default=str)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(line, flush=True)
    print()
    for s in summary:
        print(s)
    note = " (clean snapshot)" if end.get("snapshot") else ""
    if end["citywatch_uncommitted"]:
        note = f" + uncommitted changes to {', '.join(end['citywatch_uncommitted'])}"
    print(f"code: {end['git_head']}{note}, imported from {end['code']}")
    print(f"\n(result written to {path.relative_to(REPO)})", flush=True)
    return path
