"""Continuous recording by packet copy into fragmented MP4 segments.

The recorder never decodes: it copies compressed packets into `~segment_seconds` fMP4 files
cut at keyframes. A file is written under a `.part` name and renamed when it is closed, so
a crash leaves either a finished segment or a `.part` file that `repair` salvages; the
index only ever names finished files.

Time: the first keyframe of a connection is anchored to the wall clock; later packets are
placed by their media timestamps, so segments of one connection are contiguous and their
durations add up. A timestamp that jumps (camera reboot, 33-bit wrap, clock step) does not
create a wrong time: the writer re-bases it onto the previous packet and notes it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from citywatch.recording.mux import mux_copy

log = logging.getLogger(__name__)

FMP4_FLAGS = "frag_keyframe+empty_moov+default_base_moof"
# A timestamp step larger than this (or backwards) is a discontinuity, not elapsed time.
MAX_STEP_S = 5.0
# Camera clocks drift from ours; past this, the next segment is re-anchored to the wall clock.
MAX_DRIFT_S = 2.0


@dataclass(frozen=True)
class SegmentInfo:
    """A finished segment, as the index stores it."""

    camera_id: str
    path: Path
    start_ts: float
    end_ts: float
    bytes: int
    codec: str
    width: int
    height: int
    keyframes: list[float] = field(default_factory=list)  # seconds from segment start

    @property
    def duration(self) -> float:
        return self.end_ts - self.start_ts


def segment_path(root: Path, camera_id: str, start_ts: float) -> Path:
    """`<root>/<camera>/<YYYY-MM-DD>/<HH>/<YYYYmmddTHHMMSS.fffZ>.mp4`, all in UTC."""
    t = datetime.fromtimestamp(start_ts, UTC)
    name = t.strftime("%Y%m%dT%H%M%S") + f".{t.microsecond // 1000:03d}Z.mp4"
    return root / camera_id / t.strftime("%Y-%m-%d") / t.strftime("%H") / name


def parse_segment_name(path: Path) -> float | None:
    """Start time encoded in a segment file name, or None if the name is not ours."""
    stem = path.name.split(".mp4")[0]
    try:
        t = datetime.strptime(stem, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return t.timestamp()


class SegmentWriter:
    """Writes packets of one video stream into rotating fMP4 segments.

    Not thread-safe: one camera worker owns it. `on_segment` is called with each finished
    segment (the file is already in place under its final name).
    """

    def __init__(
        self,
        camera_id: str,
        root: Path,
        on_segment: Callable[[SegmentInfo], None],
        segment_seconds: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.camera_id = camera_id
        self.root = root
        self.on_segment = on_segment
        self.segment_seconds = segment_seconds
        self.clock = clock or time.time
        self.discontinuities = 0
        self._template: Any = None
        self._tb: Fraction | None = None
        self._reset_connection()
        self._out: Any = None
        self._ostream: Any = None
        # the open segment
        self._seg_media_first = 0.0
        self._lag_min = math.inf
        self._seg_first = 0
        self._seg_last_end = 0
        self._seg_bytes_in = 0
        self._keyframes: list[float] = []
        self._part = Path()

    # connection lifetime -------------------------------------------------------------
    def _reset_connection(self) -> None:
        self._held: Any = None  # a first packet waiting for a timestamp
        self._anchor_wall: float | None = None  # wall time of media time 0
        self._last_in: int | None = None  # last input dts/pts seen
        self._offset = 0  # added to input timestamps to keep output monotonic
        self._last_out: int | None = None
        self._last_dur = 0
        self._prev_end: float | None = None

    def start_stream(self, stream: Any) -> None:
        """Begin a new connection with this input stream; any open segment is closed first
        (the time between is a gap in the index)."""
        self.close()
        self._template = stream
        self._tb = stream.time_base
        self._reset_connection()

    # packets ---------------------------------------------------------------------------
    def _timestamp(self, packet: Any) -> int | None:
        ts = packet.dts if packet.dts is not None else packet.pts
        return int(ts) if ts is not None else None

    def write(self, packet: Any) -> None:
        """Copy one packet of the current stream. Packets before the first keyframe are
        skipped (they cannot be decoded)."""
        if self._tb is None or packet.size == 0:
            return
        ts_in = self._timestamp(packet)
        if ts_in is None:
            if self._last_in is None:
                # FFmpeg's RTSP client gives the first packet (a keyframe) no timestamps:
                # hold it and place it one frame before the packet that follows.
                if packet.is_keyframe:
                    self._held = packet
                return
            ts_in = self._last_in + max(self._last_dur, 1)
        elif self._held is not None:
            held, self._held = self._held, None
            self._write(held, ts_in - self._frame_ticks(packet))
        self._write(packet, ts_in)

    def _frame_ticks(self, packet: Any) -> int:
        """One frame's duration in time-base ticks (the packet's, or the stream's rate)."""
        assert self._tb is not None
        if packet.duration:
            return int(packet.duration)
        rate = getattr(self._template, "average_rate", None) or getattr(
            self._template, "guessed_rate", None
        )
        fps = float(rate) if rate else 25.0
        return max(1, round(1 / (fps * self._tb)))

    def _write(self, packet: Any, ts_in: int) -> None:
        assert self._tb is not None
        tb = self._tb
        if self._last_in is not None and self._last_out is not None:
            step = ts_in + self._offset - self._last_out
            if step <= 0 or step * tb > MAX_STEP_S:
                # Discontinuity: continue one frame after the previous packet.
                self.discontinuities += 1
                log.warning(
                    "camera %s: timestamp jump of %.3f s re-based",
                    self.camera_id,
                    float((ts_in - self._last_in) * tb),
                )
                self._offset = self._last_out + max(self._last_dur, 1) - ts_in
        self._last_in = ts_in
        ts = ts_in + self._offset

        if self._out is None:
            if not packet.is_keyframe:
                return
            self._open(ts)
        elif packet.is_keyframe and self._seg_elapsed(ts) >= self.segment_seconds - 0.25:
            self._finish()
            self._open(ts)

        assert self._out is not None
        # wall minus media time; its minimum is the packet that waited least on the way
        self._lag_min = min(self._lag_min, self.clock() - float(ts * tb))
        dur = int(packet.duration or 0) or self._guess_duration(ts)
        dts = ts - self._seg_first
        pts = dts if packet.pts is None else max(dts, packet.pts + self._offset - self._seg_first)
        if packet.is_keyframe:
            self._keyframes.append(float(dts * tb))
        mux_copy(self._out, self._ostream, packet, pts, dts, tb)
        self._seg_bytes_in += packet.size
        self._last_out = ts
        self._last_dur = dur
        self._seg_last_end = ts + dur

    def _guess_duration(self, ts: int) -> int:
        if self._last_out is not None and ts > self._last_out:
            return ts - self._last_out
        return self._last_dur or 1

    def _seg_elapsed(self, ts: int) -> float:
        assert self._tb is not None
        return float((ts - self._seg_first) * self._tb)

    # segment lifetime ----------------------------------------------------------------
    def _open(self, ts: int) -> None:
        assert self._tb is not None
        media_t = float(ts * self._tb)
        self._seg_media_first = media_t
        self._seg_first = ts
        self._seg_last_end = ts
        self._seg_bytes_in = 0
        self._keyframes = []
        self._lag_min = math.inf
        # The final name is given when the segment closes and its start time is known;
        # the .part name carries a provisional start for repair after a crash.
        guess = self.clock() if self._anchor_wall is None else self._anchor_wall + media_t
        final = segment_path(self.root, self.camera_id, guess)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._part = final.with_name(final.name + ".part")
        self._out = av.open(str(self._part), "w", format="mp4", options={"movflags": FMP4_FLAGS})
        self._ostream = self._out.add_stream_from_template(self._template)

    def _place(self) -> float:
        """Wall-clock start of the closing segment.

        The connection's anchor (wall time of media time 0) is the least lag seen between
        arrival and media time, so the burst a client gets on connecting does not push
        times into the future. Once set it stays, so a connection's segments are
        contiguous, unless the camera clock drifts more than MAX_DRIFT_S from ours."""
        lag = self._lag_min
        if self._anchor_wall is None or abs(lag - self._anchor_wall) > MAX_DRIFT_S:
            self._anchor_wall = lag
        start = self._anchor_wall + self._seg_media_first
        if self._prev_end is not None and start < self._prev_end:
            start = self._prev_end  # never overlap the previous segment
            self._anchor_wall = start - self._seg_media_first
        return start

    def _finish(self) -> None:
        out, self._out = self._out, None
        if out is None:
            return
        try:
            out.close()
        except (av.FFmpegError, OSError) as exc:
            log.error("camera %s: closing segment %s failed: %s", self.camera_id, self._part, exc)
            return  # the .part file is left for repair
        assert self._tb is not None
        duration = float((self._seg_last_end - self._seg_first) * self._tb)
        if duration <= 0:
            self._part.unlink(missing_ok=True)
            return
        start = self._place()
        final = segment_path(self.root, self.camera_id, start)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._part, final)
        self._fsync_dir(final.parent)
        ctx = self._template.codec_context
        info = SegmentInfo(
            camera_id=self.camera_id,
            path=final,
            start_ts=start,
            end_ts=start + duration,
            bytes=final.stat().st_size,
            codec=str(ctx.name),
            width=int(ctx.width or 0),
            height=int(ctx.height or 0),
            keyframes=self._keyframes,
        )
        self._prev_end = info.end_ts
        try:
            self.on_segment(info)
        except Exception:
            # The file is in place; start-up repair indexes it if this failed.
            log.exception("camera %s: indexing %s failed", self.camera_id, final)

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Finish the open segment, if any."""
        self._finish()

    @property
    def recording(self) -> bool:
        return self._out is not None
