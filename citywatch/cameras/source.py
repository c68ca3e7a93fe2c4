"""Video sources: RTSP over TCP, HTTP(S) MJPEG and local files looped at real-time pace.

A source yields compressed video packets of one stream. It never decodes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import av

from citywatch.config import StreamConfig

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """The camera could not be opened or stopped sending. The message is safe to show:
    it never contains credentials."""


def _file_path(url: str) -> Path:
    parts = urlsplit(url)
    return Path(unquote(parts.netloc + parts.path))


def open_options(stream: StreamConfig, timeout_s: float) -> dict[str, str]:
    us = str(int(timeout_s * 1_000_000))
    if stream.kind == "rtsp":
        return {"rtsp_transport": "tcp", "timeout": us, "max_delay": "500000"}
    if stream.kind == "http":
        return {"timeout": us}
    return {}


class PacketSource:
    """An open connection to one camera stream.

    `packets()` yields video packets until the stream ends or fails. File sources loop for
    ever at real-time pace, with timestamps that keep increasing across loops, like a camera.
    """

    def __init__(
        self,
        stream: StreamConfig,
        timeout_s: float = 10.0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = stream
        self.timeout_s = timeout_s
        self.should_stop = should_stop
        self.container: Any = None
        self.video: Any = None

    def open(self) -> Any:
        """Connect and return the video stream (PyAV stream object)."""
        cfg = self.config
        target = str(_file_path(cfg.url)) if cfg.kind == "file" else cfg.connect_url()
        if cfg.kind == "file" and not Path(target).is_file():
            raise SourceError(f"file not found: {target}")
        started = time.monotonic()
        try:
            self.container = av.open(
                target,
                options=open_options(cfg, self.timeout_s),
                timeout=(self.timeout_s, self.timeout_s),
            )
        except (av.FFmpegError, OSError) as exc:
            reason = _describe(exc)
            if time.monotonic() - started >= self.timeout_s * 0.95:
                # FFmpeg words a timeout as whatever the half-read reply looked like
                # ("Invalid data found..."); say what happened.
                reason = f"timed out after {self.timeout_s:g} s ({reason})"
            raise SourceError(f"cannot open {cfg.safe_url()}: {reason}") from None
        if not self.container.streams.video:
            self.close()
            raise SourceError(f"{cfg.safe_url()} has no video stream")
        self.video = self.container.streams.video[0]
        return self.video

    def packets(self) -> Iterator[Any]:
        if self.container is None:
            self.open()
        if self.config.kind == "file":
            yield from self._paced_file_packets()
            return
        try:
            for packet in self.container.demux(self.video):
                if self.should_stop():
                    return
                if packet.size:
                    yield packet
        except (av.FFmpegError, OSError) as exc:
            if self.should_stop():
                return
            raise SourceError(
                f"{self.config.safe_url()}: stream failed: {_describe(exc)}"
            ) from None
        if not self.should_stop():
            raise SourceError(f"{self.config.safe_url()}: stream ended")

    def _paced_file_packets(self) -> Iterator[Any]:
        tb = self.video.time_base
        offset = 0  # added to timestamps so they keep rising across loops
        start_wall = time.monotonic()
        first: int | None = None
        while True:
            last_end = 0
            try:
                for packet in self.container.demux(self.video):
                    if self.should_stop():
                        return
                    if not packet.size:
                        continue
                    ts = packet.dts if packet.dts is not None else packet.pts
                    if ts is None:
                        continue
                    if first is None:
                        first = ts
                    due = start_wall + float((ts + offset - first) * tb)
                    delay = due - time.monotonic()
                    while delay > 0:
                        if self.should_stop():
                            return
                        time.sleep(min(delay, 0.2))
                        delay = due - time.monotonic()
                    end = ts + int(packet.duration or 0)
                    last_end = max(last_end, end)
                    if packet.pts is not None:
                        packet.pts += offset
                    if packet.dts is not None:
                        packet.dts += offset
                    yield packet
            except (av.FFmpegError, OSError) as exc:
                raise SourceError(
                    f"{self.config.safe_url()}: file unreadable: {_describe(exc)}"
                ) from None
            if last_end == 0:
                raise SourceError(f"{self.config.safe_url()}: file has no video packets")
            offset += last_end - (first or 0)
            self.container.seek(0, stream=self.video)

    def close(self) -> None:
        if self.container is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self.container.close()
            self.container = None


def _describe(exc: BaseException) -> str:
    """An FFmpeg error in words, without any URL (which could carry a password)."""
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
