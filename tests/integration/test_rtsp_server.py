"""The loopback RTSP camera simulator used by the integration tests works."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest

from tests.support.rtsp import FFMPEG, RtspServer, gst_rtsp_available, make_test_clip

_UNAVAILABLE = gst_rtsp_available() or (None if shutil.which(FFMPEG) else f"{FFMPEG} missing")
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))

RTSP_OPTIONS = {"rtsp_transport": "tcp", "timeout": "5000000"}


@dataclass
class Capture:
    """What one client saw: open latency and per-packet (wall, pts seconds, key).

    FFmpeg's RTSP demuxer gives the very first packet no pts (no RTCP SR yet).
    """

    url: str
    open_s: float = 0.0
    codec: str = ""
    packets: list[tuple[float, float | None, bool]] = field(default_factory=list)

    @property
    def keyframes(self) -> int:
        return sum(1 for _, _, key in self.packets if key)

    @property
    def timed(self) -> list[tuple[float, float]]:
        return [(wall, pts) for wall, pts, _ in self.packets if pts is not None]


def capture(url: str, seconds: float = 3.0) -> Capture:
    """Open ``url`` with PyAV and demux video packets for ``seconds`` of wall time."""
    cap = Capture(url)
    t0 = time.monotonic()
    with av.open(url, options=RTSP_OPTIONS) as container:
        cap.open_s = time.monotonic() - t0
        stream = container.streams.video[0]
        cap.codec = stream.codec_context.name
        assert stream.time_base is not None
        tb = float(stream.time_base)
        end = time.monotonic() + seconds
        for pkt in container.demux(stream):
            if pkt.size == 0:  # demux() ends with an empty flush packet
                continue
            pts = None if pkt.pts is None else pkt.pts * tb
            cap.packets.append((time.monotonic(), pts, pkt.is_keyframe))
            if time.monotonic() >= end:
                break
    return cap


def assert_live_h264(cap: Capture) -> None:
    """H.264, starts on a keyframe, keyframes keep coming, paced at real time."""
    assert cap.codec == "h264", cap
    assert len(cap.packets) >= 60, f"{cap.url}: only {len(cap.packets)} packets"
    assert cap.packets[0][2], f"{cap.url}: first packet is not a keyframe"
    assert cap.keyframes >= 2, f"{cap.url}: {cap.keyframes} keyframes in ~3 s (GOP 1 s)"
    # The last 50 packets (25 fps) arrive after probing, so at the live rate: ~2 s.
    timed = cap.timed
    (w0, p0), (w1, p1) = timed[-50], timed[-1]
    assert 1.5 <= w1 - w0 <= 3.5, f"{cap.url}: 50 packets in {w1 - w0:.2f}s wall"
    assert 1.5 <= p1 - p0 <= 2.5, f"{cap.url}: 50 packets span {p1 - p0:.2f}s of pts"
    pts = [p for _, p in timed]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), "pts not increasing"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rtsp-clips")
    return {
        name: make_test_clip(d / f"{name}.ts", seconds=4, gop=25, size="640x360", text=name)
        for name in ("cam1", "cam2")
    }


@pytest.fixture
def server(clips: dict[str, Path]) -> Iterator[RtspServer]:
    with RtspServer(clips, garbage=("junk",)) as srv:
        yield srv


def test_clip_cache(clips: dict[str, Path]) -> None:
    path = clips["cam1"]
    mtime = path.stat().st_mtime_ns
    assert make_test_clip(path, seconds=4, text="cam1") == path
    assert path.stat().st_mtime_ns == mtime
    assert clips["cam1"].read_bytes() != clips["cam2"].read_bytes()


def test_concurrent_cameras_are_live_h264(server: RtspServer) -> None:
    urls = [server.url("cam1"), server.url("cam2"), server.url("cam1")]  # cam1 shared twice
    with ThreadPoolExecutor(len(urls)) as pool:
        caps = list(pool.map(capture, urls))
    for cap in caps:
        assert_live_h264(cap)
        assert cap.open_s < 5.0, f"{cap.url}: open took {cap.open_s:.2f}s"


def test_stop_then_restart_on_same_port(server: RtspServer) -> None:
    port = server.port
    assert capture(server.url("cam1"), seconds=0.5).packets
    server.stop()
    assert not server.running
    assert server.returncode == 0  # clean exit on SIGTERM
    with pytest.raises(av.error.FFmpegError):
        av.open(server.url("cam1"), options=RTSP_OPTIONS)
    server.start()
    assert server.port == port
    assert_live_h264(capture(server.url("cam2")))


def test_garbage_mount_streams_undecodable_h264(server: RtspServer) -> None:
    # Tiny probe: junk never yields stream parameters, default probing takes ~5 s.
    opts = {**RTSP_OPTIONS, "probesize": "32", "analyzeduration": "0"}
    level = av.logging.get_level()
    av.logging.set_level(av.logging.PANIC)  # the decoder complains loudly
    try:
        with av.open(server.url("junk"), options=opts) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            packets = errors = 0
            for pkt in container.demux(stream):
                packets += 1
                try:
                    pkt.decode()
                except av.error.FFmpegError:
                    errors += 1
                if packets >= 15:
                    break
    finally:
        av.logging.set_level(level)
    assert packets >= 15
    assert errors >= 1
    assert_live_h264(capture(server.url("cam1"), seconds=2.5))  # server unharmed
