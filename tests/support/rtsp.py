"""Test helpers: synthetic H.264 clips and a real loopback RTSP camera server.

The server itself (``gst_rtsp_server.py``) needs GStreamer's Python bindings, which
only Debian's ``/usr/bin/python3`` has; this module just spawns it, so it imports
nothing from ``gi`` and works from the project venv.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

SYSTEM_PYTHON = "/usr/bin/python3"
FFMPEG = "/usr/bin/ffmpeg"
SERVER_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
READY_TIMEOUT_S = 20.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gst_rtsp_available() -> str | None:
    """Return ``None`` if the RTSP server can run here, else the reason it cannot."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "assert Gst.ElementFactory.find('rtph264pay') and Gst.ElementFactory.find('tsdemux')"
    )
    try:
        res = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} unusable: {exc}"
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return f"GStreamer RTSP server bindings unavailable for {SYSTEM_PYTHON}: {last}"
    return None


def _ffmpeg(args: list[str], dst: Path) -> Path:
    """Run ffmpeg writing to a temp file next to ``dst``, then rename atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.stem}-", suffix=dst.suffix, dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        res = subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args, str(tmp)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if res.returncode != 0:
            raise RuntimeError(f"ffmpeg failed for {dst}: {res.stderr.strip()}")
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def make_test_clip(
    path: Path,
    seconds: float = 10,
    fps: int = 25,
    gop: int = 25,
    size: str = "640x360",
    text: str = "CAM",
) -> Path:
    """Encode a testsrc2 H.264 clip (.ts → MPEG-TS, else MP4); reuse it if it exists.

    ``text`` cannot be drawn (fonts may be missing), so it tints the picture with a
    hue derived from it: clips of different cameras differ visibly and in bytes.
    """
    path = Path(path)
    if path.exists():
        return path
    hue = int(hashlib.sha1(text.encode()).hexdigest()[:4], 16) % 360
    args = [
        "-f", "lavfi",
        "-i", f"testsrc2=size={size}:rate={fps}",
        "-t", f"{seconds}",
        "-vf", f"hue=h={hue}",
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-bf", "0",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    if path.suffix.lower() == ".ts":
        args += ["-f", "mpegts"]
    else:
        args += ["-movflags", "+faststart", "-f", "mp4"]
    return _ffmpeg(args, path)


def to_ts(src: Path, dst: Path, *, gop: int | None = None, seconds: float | None = None) -> Path:
    """Remux an H.264 file (e.g. MP4) to MPEG-TS without re-encoding; cached.

    Clients can only start at a keyframe, so a clip with a long GOP (car-detection.mp4:
    4.8 s) makes RTSP opens slow; pass ``gop`` (frames) to re-encode with libx264.
    """
    dst = Path(dst)
    if dst.exists():
        return dst
    args = ["-i", str(src), "-map", "0:v:0"]
    if seconds is not None:
        args += ["-t", f"{seconds}"]
    if gop is None:
        args += ["-c", "copy", "-bsf:v", "h264_mp4toannexb"]
    else:
        args += [
            "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-bf", "0",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-pix_fmt", "yuv420p",
        ]  # fmt: skip
    return _ffmpeg([*args, "-f", "mpegts"], dst)


class RtspServer:
    """A loopback RTSP server serving each MPEG-TS file as a looping live camera.

    ``mounts`` maps mount name → .ts file; ``garbage`` names extra mounts that stream
    random bytes as H.264. The port is fixed at construction so that ``restart()``
    (a camera dropping and coming back) reuses it.
    """

    def __init__(
        self,
        mounts: Mapping[str, Path],
        port: int | None = None,
        garbage: tuple[str, ...] = (),
    ) -> None:
        self.mounts = {name.strip("/"): Path(p) for name, p in mounts.items()}
        self.garbage = tuple(garbage)
        self.port = port if port is not None else free_port()
        self.host = "127.0.0.1"
        self.returncode: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def url(self, name: str) -> str:
        """RTSP URL of a mount."""
        return f"rtsp://{self.host}:{self.port}/{name.strip('/')}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _stderr_text(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def start(self, timeout: float = READY_TIMEOUT_S) -> RtspServer:
        """Spawn the server and wait until it listens; raise with its stderr if not."""
        if self.running:
            raise RuntimeError("RTSP server already running")
        self.stop()  # reap a crashed process, close its log
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        for name in self.garbage:
            cmd += ["--garbage-mount", name]
        # Lives as long as the process; closed by stop().
        self._log = tempfile.TemporaryFile("w+", prefix="gst-rtsp-", suffix=".log")  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    err = self._stderr_text()
                    self.stop()
                    raise RuntimeError(f"RTSP server not ready after {timeout}s; stderr:\n{err}")
                if not sel.select(left):
                    continue
                line = self._proc.stdout.readline()
                if not line:  # EOF: the process died
                    self._proc.wait(5)
                    rc = self._proc.returncode
                    err = self._stderr_text()
                    self.stop()
                    raise RuntimeError(f"RTSP server exited (rc={rc}) before READY:\n{err}")
                if line.startswith("READY"):
                    return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the server, then SIGKILL it if it does not exit in ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            self.returncode = proc.returncode
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> RtspServer:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def slideshow_ts(
    images: list[Path],
    dst: Path,
    seconds_each: float = 4.0,
    gap_s: float = 3.0,
    fps: int = 10,
    gop: int = 10,
) -> Path:
    """Still photos shown one after another as a 1280x720 H.264 camera stream, with an
    empty grey picture for `gap_s` after each (so each photo is a vehicle that comes and
    goes). Cached."""
    dst = Path(dst)
    if dst.exists():
        return dst
    args: list[str] = []
    for img in images:
        args += ["-loop", "1", "-t", f"{seconds_each}", "-framerate", str(fps), "-i", str(img)]
    args += ["-f", "lavfi", "-i", f"color=c=gray:s=1280x720:r={fps}:d={gap_s * len(images)}"]
    n = len(images)
    scale = "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:-1:-1,setsar=1"
    chains = "".join(f"[{i}:v]{scale},fps={fps}[v{i}];" for i in range(n))
    chains += f"[{n}:v]split={n}" + "".join(f"[g{i}]" for i in range(n)) + ";"
    chains += "".join(f"[g{i}]trim=0:{gap_s},setpts=PTS-STARTPTS[h{i}];" for i in range(n))
    joined = "".join(f"[v{i}][h{i}]" for i in range(n))
    args += [
        "-filter_complex", f"{chains}{joined}concat=n={2 * n}:v=1:a=0[out]",
        "-map", "[out]",
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-bf", "0",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-pix_fmt", "yuv420p", "-f", "mpegts",
    ]  # fmt: skip
    return _ffmpeg(args, dst)
