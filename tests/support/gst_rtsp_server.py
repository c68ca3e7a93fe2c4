#!/usr/bin/python3
"""Loopback RTSP server that simulates IP cameras for the test-suite.

Run with Debian's interpreter (python3-gi is not available in the venv)::

    /usr/bin/python3 tests/support/gst_rtsp_server.py --port 8554 \
        --mount cam1=/tmp/a.ts --mount cam2=/tmp/b.ts [--garbage-mount junk]

Each MPEG-TS/H.264 file is played in a loop, paced to real time, by its own
"player" pipeline; its access units are fanned out into the live ``appsrc`` of
every currently prepared RTSP media (one per client) of that mount, so all
clients see the same live stream at ``rtsp://127.0.0.1:PORT/NAME``. Each client
starts at the next keyframe. A garbage mount streams random bytes framed as H.264 NAL units.

Prints ``READY <port>`` on stdout once listening; exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

_H264_CAPS = "video/x-h264,stream-format=byte-stream,alignment=au"
_SRC_NAME = "camsrc"
_APPSRC = (
    f"appsrc name={_SRC_NAME} is-live=true do-timestamp=true format=time "
    f'caps="{_H264_CAPS}" max-bytes=4000000 leaky-type=downstream'
)
_MEDIA_LAUNCH = f"( {_APPSRC} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
# No h264parse for garbage: it would swallow the junk and the media would never preroll.
_GARBAGE_LAUNCH = f"( {_APPSRC} ! rtph264pay name=pay0 pt=96 )"
_PLAYER_LAUNCH = (
    "multifilesrc name=file loop=true ! tsdemux ! h264parse config-interval=-1 ! "
    f"{_H264_CAPS} ! appsink name=sink sync=true emit-signals=true max-buffers=50 drop=false"
)


def _log(msg: str) -> None:
    print(f"gst_rtsp_server: {msg}", file=sys.stderr, flush=True)


class _FanOut:
    """Thread-safe set of live appsrcs that receive the same access units."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._srcs: list[Gst.Element] = []
        self._need_key: set[int] = set()

    def add(self, src: Gst.Element) -> None:
        with self._lock:
            self._srcs.append(src)
            self._need_key.add(id(src))

    def remove(self, src: Gst.Element) -> None:
        with self._lock:
            self._srcs = [s for s in self._srcs if s is not src]
            self._need_key.discard(id(src))

    def push(self, buf: Gst.Buffer, keyframe: bool) -> None:
        with self._lock:
            targets = []
            for src in self._srcs:
                if id(src) in self._need_key:
                    if not keyframe:
                        continue
                    self._need_key.discard(id(src))
                targets.append(src)
        for src in targets:
            out = buf.copy()  # shares memory; fresh metadata per consumer
            out.pts = Gst.CLOCK_TIME_NONE  # let do-timestamp stamp live running time
            out.dts = Gst.CLOCK_TIME_NONE
            src.emit("push-buffer", out)

    def attach(self, factory: GstRtspServer.RTSPMediaFactory) -> None:
        factory.connect("media-configure", self._on_media_configure)

    def _on_media_configure(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        src = media.get_element().get_by_name(_SRC_NAME)
        if src is None:
            _log(f"{self.name}: media without {_SRC_NAME}")
            return
        self.add(src)
        media.connect("unprepared", lambda _m: self.remove(src))


class FileCamera(_FanOut):
    """Loops an MPEG-TS file at real-time pace and feeds every client media."""

    def __init__(self, name: str, location: Path) -> None:
        super().__init__(name)
        self.location = location
        self.pipeline: Gst.Pipeline = Gst.parse_launch(_PLAYER_LAUNCH)
        self.pipeline.get_by_name("file").set_property("location", str(location))
        self.pipeline.get_by_name("sink").connect("new-sample", self._on_sample)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_error)
        bus.connect("message::eos", self._on_eos)

    def start(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)

    def stop(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        buf = sample.get_buffer()
        self.push(buf, keyframe=not buf.has_flags(Gst.BufferFlags.DELTA_UNIT))
        return Gst.FlowReturn.OK

    def _restart(self) -> bool:
        self.pipeline.set_state(Gst.State.NULL)
        self.pipeline.set_state(Gst.State.PLAYING)
        return False

    def _on_error(self, _bus: Gst.Bus, msg: Gst.Message) -> None:
        err, dbg = msg.parse_error()
        _log(f"{self.name}: player error: {err.message} ({dbg}); restarting")
        GLib.timeout_add(500, self._restart)

    def _on_eos(self, _bus: Gst.Bus, _msg: Gst.Message) -> None:
        _log(f"{self.name}: unexpected EOS; restarting")
        GLib.idle_add(self._restart)


class GarbageCamera(_FanOut):
    """Pushes random bytes framed as H.264 NAL units at 25 fps."""

    def __init__(self, name: str, fps: int = 25) -> None:
        super().__init__(name)
        self._rng = random.Random(0xC0FFEE)
        self._fps = fps
        self._timer = 0

    def start(self) -> None:
        self._timer = GLib.timeout_add(1000 // self._fps, self._tick)

    def stop(self) -> None:
        if self._timer:
            GLib.source_remove(self._timer)
            self._timer = 0

    def _tick(self) -> bool:
        nal_type = self._rng.choice((1, 1, 1, 5, 7, 8))
        payload = self._rng.randbytes(self._rng.randint(200, 4000))
        data = b"\x00\x00\x00\x01" + bytes([0x60 | nal_type]) + payload
        self.push(Gst.Buffer.new_wrapped(data), keyframe=True)
        return True


def _parse_mount(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {spec!r}")
    p = Path(path)
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {p}")
    return name.strip("/"), p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    ap.add_argument("--mount", action="append", default=[], type=_parse_mount, metavar="N=P")
    ap.add_argument("--garbage-mount", action="append", default=[], metavar="NAME")
    args = ap.parse_args(argv)
    if not args.mount and not args.garbage_mount:
        ap.error("at least one --mount or --garbage-mount is required")

    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_thread_pool().set_max_threads(64)
    mounts = server.get_mount_points()

    cameras: list[Any] = []
    for name, path in args.mount:
        cameras.append(FileCamera(name, path))
    for name in args.garbage_mount:
        cameras.append(GarbageCamera(name.strip("/")))
    for cam in cameras:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(_GARBAGE_LAUNCH if isinstance(cam, GarbageCamera) else _MEDIA_LAUNCH)
        # Not shared: a shared media that is still unpreparing after a TEARDOWN is
        # handed to the next client and answers 503 ("can not reuse media"), which
        # breaks immediate reconnects. Per-client media are cheap (parse + pay) and
        # each client starts cleanly at a keyframe.
        factory.set_shared(False)
        cam.attach(factory)
        mounts.add_factory(f"/{cam.name}", factory)

    if server.attach(None) == 0:
        _log(f"cannot listen on 127.0.0.1:{args.port}")
        return 2
    for cam in cameras:
        cam.start()

    def quit_loop() -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, quit_loop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, quit_loop)
    parent = os.getppid()

    def watch_parent() -> bool:  # do not outlive a killed test run
        if os.getppid() != parent:
            loop.quit()
            return GLib.SOURCE_REMOVE
        return GLib.SOURCE_CONTINUE

    GLib.timeout_add(1000, watch_parent)

    print(f"READY {server.get_bound_port()}", flush=True)
    try:
        loop.run()
    finally:
        for cam in cameras:
            cam.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
