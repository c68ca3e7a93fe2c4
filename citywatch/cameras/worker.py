"""One thread per camera: connect, copy packets to the recorder and the live feed,
reconnect with exponential backoff and jitter, and keep the camera's health current.

PyAV releases the GIL while it reads and writes, so many camera threads share one process
without serialising; nothing here decodes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from citywatch.cameras.live import LiveFeed, decode_keyframe
from citywatch.cameras.source import PacketSource, SourceError
from citywatch.config import StreamConfig
from citywatch.recording.segmenter import SegmentWriter

log = logging.getLogger(__name__)

MAX_BAD_KEYFRAMES = 3

State = Literal["starting", "online", "offline", "error", "disabled"]


@dataclass
class CameraHealth:
    """What an operator sees about a camera's connection."""

    state: State = "starting"
    last_frame_ts: float | None = None
    fps: float = 0.0
    bitrate_kbps: float = 0.0
    reconnects: int = 0
    last_error: str = ""
    connected_since: float | None = None
    packets: int = 0
    bytes: int = 0
    recording: bool = False
    timestamp_jumps: int = 0
    codec: str = ""
    width: int = 0
    height: int = 0
    _window: deque[tuple[float, int]] = field(default_factory=deque)
    _win_bytes: int = 0

    def note_packet(self, now: float, size: int, media_t: float | None) -> None:
        """Count a packet. Rates use the camera's own timestamps (media time), so the
        burst a client receives right after connecting does not inflate them. Runs for
        every packet: constant work, running sums."""
        self.last_frame_ts = now
        self.packets += 1
        self.bytes += size
        if media_t is None:
            return
        win = self._window
        if win and media_t < win[-1][0]:
            win.clear()  # the camera's clock went back: start over
            self._win_bytes = 0
        win.append((media_t, size))
        self._win_bytes += size
        while len(win) > 2 and media_t - win[0][0] > 5.0:
            self._win_bytes -= win.popleft()[1]
        span = media_t - win[0][0]
        if span > 0.5:
            self.fps = (len(win) - 1) / span
            self.bitrate_kbps = (self._win_bytes - win[0][1]) * 8 / span / 1000

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.3

    def delay(self, attempt: int) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


class CameraWorker:
    """Owns one camera's connection thread."""

    def __init__(
        self,
        camera_id: str,
        stream: StreamConfig,
        writer: SegmentWriter,
        live: LiveFeed,
        backoff: Backoff | None = None,
        open_timeout_s: float = 10.0,
        on_state: Callable[[str, State, str], None] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.stream = stream
        self.writer = writer
        self.live = live
        self.backoff = backoff or Backoff()
        self.open_timeout_s = open_timeout_s
        self.on_state = on_state
        self.health = CameraHealth()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: PacketSource | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"camera-{self.camera_id}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("camera %s: worker did not stop in %.0f s", self.camera_id, timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _set_state(self, state: State, error: str = "") -> None:
        changed = state != self.health.state
        self.health.state = state
        if error:
            self.health.last_error = error
        if changed and self.on_state is not None:
            try:
                self.on_state(self.camera_id, state, error)
            except Exception:
                log.exception("camera %s: state callback failed", self.camera_id)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._session()
                attempt = 0
            except SourceError as exc:
                attempt += 1
                was_online = self.health.state == "online"
                self._set_state("offline" if was_online or attempt > 1 else "error", str(exc))
                log.warning("camera %s: %s", self.camera_id, exc)
            except Exception as exc:  # a bug or an unexpected library error: keep going
                attempt += 1
                self._set_state("error", f"{type(exc).__name__}: {exc}")
                log.exception("camera %s: worker error", self.camera_id)
            finally:
                self._teardown()
            if self._stop.is_set():
                break
            self.health.reconnects += 1
            self._stop.wait(self.backoff.delay(attempt))
        self._set_state("disabled")

    def _teardown(self) -> None:
        try:
            self.writer.close()
        except Exception:
            log.exception("camera %s: closing segment failed", self.camera_id)
        self.health.recording = False
        self.live.end_stream()
        if self._source is not None:
            self._source.close()
            self._source = None

    def _session(self) -> None:
        source = PacketSource(self.stream, self.open_timeout_s, self._stop.is_set)
        self._source = source
        video = source.open()
        ctx = video.codec_context
        self.health.codec = str(ctx.name)
        self.health.width, self.health.height = int(ctx.width or 0), int(ctx.height or 0)
        self.writer.start_stream(video)
        self.live.start_stream(video)
        self.health.connected_since = time.time()
        verified = False  # nothing is recorded before a keyframe of this connection decodes
        bad_keyframes = 0
        for packet in source.packets():
            now = time.time()
            if not verified:
                if not packet.is_keyframe:
                    continue
                if decode_keyframe(str(ctx.name), ctx.extradata, bytes(packet)) is None:
                    bad_keyframes += 1
                    if bad_keyframes >= MAX_BAD_KEYFRAMES:
                        raise SourceError(
                            f"{self.stream.safe_url()}: stream does not decode "
                            f"({bad_keyframes} keyframes in a row failed)"
                        )
                    continue
                verified = True
            if self.health.state != "online":
                self._set_state("online")
            ts = packet.dts if packet.dts is not None else packet.pts
            media_t = float(ts * packet.time_base) if ts is not None else None
            self.health.note_packet(now, packet.size, media_t)
            self.live.feed(packet, now)
            self.writer.write(packet)
            self.health.recording = self.writer.recording
            self.health.timestamp_jumps = self.writer.discontinuities
