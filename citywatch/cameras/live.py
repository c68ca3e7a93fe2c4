"""Live view: fMP4 fragments for Media Source Extensions, and JPEG snapshots.

The camera worker feeds every packet to its `LiveFeed`. While somebody watches, the feed
packet-copies into an in-memory fragmented MP4 (one fragment per frame, so latency stays
about one frame) and hands each fragment to the subscribers. A new viewer gets the init
segment and the fragments since the last keyframe, so it can start decoding at once.

Snapshots decode only the latest keyframe, and only when asked.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from citywatch.imaging import encode_jpeg_frame
from citywatch.recording.mux import mux_copy

log = logging.getLogger(__name__)

LIVE_FLAGS = "frag_keyframe+empty_moov+default_base_moof+frag_every_frame"


def h264_codec_string(extradata: bytes | None) -> str:
    """RFC 6381 codec string (avc1.PPCCLL) from avcC or Annex-B extradata."""
    if extradata:
        if extradata[0] == 1 and len(extradata) >= 4:  # avcC
            return "avc1." + extradata[1:4].hex().upper()
        # Annex B: find the SPS NAL (type 7) after a start code.
        i = extradata.find(b"\x00\x00\x01")
        while i != -1 and i + 6 < len(extradata):
            nal = extradata[i + 3]
            if nal & 0x1F == 7:
                return "avc1." + extradata[i + 4 : i + 7].hex().upper()
            i = extradata.find(b"\x00\x00\x01", i + 3)
    return "avc1.42E01E"


class _Sink:
    """A write-only file object that collects what the muxer writes."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, data: bytes) -> int:
        self.buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


def split_boxes(data: bytes) -> list[tuple[str, bytes]]:
    """Split complete top-level ISO-BMFF boxes (type, bytes)."""
    boxes = []
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8].decode("latin-1")
        if size == 1 and i + 16 <= len(data):
            size = int.from_bytes(data[i + 8 : i + 16], "big")
        if size < 8 or i + size > len(data):
            break
        boxes.append((kind, data[i : i + size]))
        i += size
    return boxes


Subscriber = Callable[[bytes], None]


@dataclass
class _LiveMuxer:
    template: Any
    codec: str
    sink: _Sink = field(default_factory=_Sink)
    init: bytes = b""
    gop: list[bytes] = field(default_factory=list)
    out: Any = None
    stream: Any = None
    prev_key: bool = False
    first_ts: int | None = None

    def open(self) -> None:
        self.out = av.open(
            self.sink,
            "w",
            format="mp4",
            options={"movflags": LIVE_FLAGS, "flush_packets": "1"},
        )
        self.stream = self.out.add_stream_from_template(self.template)

    def feed(self, packet: Any, tb: Fraction) -> list[bytes]:
        """Mux one packet; return what to send: the init segment when it is first written,
        then the media fragments completed by this packet."""
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is None:
            return []
        if self.first_ts is None:
            if not packet.is_keyframe:
                return []
            self.first_ts = ts
        pts = packet.pts if packet.pts is not None else ts
        dts = ts - self.first_ts
        key_before = self.prev_key
        self.prev_key = bool(packet.is_keyframe)
        mux_copy(self.out, self.stream, packet, max(pts - self.first_ts, dts), dts, tb)
        fragments: list[bytes] = []
        pending = b""
        fresh_init = b""
        for kind, box in split_boxes(self.sink.take()):
            if kind in ("ftyp", "moov"):
                fresh_init += box
            elif kind == "moof":
                pending = box
            elif kind == "mdat" and pending:
                fragments.append(pending + box)
                pending = b""
        for frag in fragments:
            # A fragment muxed now holds the previous packet (written when this one came).
            if key_before:
                self.gop = []
            self.gop.append(frag)
        if fresh_init:
            self.init = fresh_init
            return [fresh_init, *fragments]
        return fragments

    def close(self) -> None:
        if self.out is not None:
            with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                self.out.close()
            self.out = None


class LiveFeed:
    """Per-camera live state. Thread-safe: the worker thread feeds, API handlers subscribe."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._lock = threading.Lock()
        self._subs: dict[int, Subscriber] = {}
        self._next_id = 0
        self._stream: Any = None
        self._tb: Fraction | None = None
        self._muxer: _LiveMuxer | None = None
        self._last_key: bytes | None = None
        self._last_key_time = 0.0
        self._snapshot: tuple[int, bytes] | None = None
        self._key_serial = 0
        self.codec = ""

    # worker side -----------------------------------------------------------------------
    def start_stream(self, stream: Any) -> None:
        with self._lock:
            self._stream = stream
            self._tb = stream.time_base
            ctx = stream.codec_context
            self.codec = h264_codec_string(ctx.extradata) if ctx.name == "h264" else str(ctx.name)
            self._restart_muxer()

    def _restart_muxer(self) -> None:
        if self._muxer is not None:
            self._muxer.close()
            self._muxer = None
        if self._subs and self._stream is not None and self._stream.codec_context.name == "h264":
            self._muxer = _LiveMuxer(self._stream, self.codec)
            self._muxer.open()

    def feed(self, packet: Any, wall_ts: float) -> None:
        if packet.is_keyframe:
            data = bytes(packet)
            with self._lock:
                self._last_key = data
                self._last_key_time = wall_ts
                self._key_serial += 1
        with self._lock:
            muxer = self._muxer
            if muxer is None or self._tb is None:
                return
            try:
                fragments = muxer.feed(packet, self._tb)
            except (av.FFmpegError, OSError, ValueError) as exc:
                log.warning("camera %s: live muxer failed: %s", self.camera_id, exc)
                self._restart_muxer()
                return
            subs = list(self._subs.values())
        for frag in fragments:
            for send in subs:
                send(frag)

    def end_stream(self) -> None:
        with self._lock:
            if self._muxer is not None:
                self._muxer.close()
                self._muxer = None
            self._stream = None

    # viewer side -----------------------------------------------------------------------
    def subscribe(self, send: Subscriber) -> tuple[int, str]:
        """Register a viewer. `send` is called from the worker thread with the init segment
        (first) and each fragment. Returns (subscription id, codec string)."""
        with self._lock:
            sid = self._next_id
            self._next_id += 1
            self._subs[sid] = send
            if self._muxer is None:
                self._restart_muxer()
            elif self._muxer.init:
                send(self._muxer.init)
                for frag in self._muxer.gop:
                    send(frag)
            codec = self.codec
        return sid, codec

    def unsubscribe(self, sid: int) -> None:
        with self._lock:
            self._subs.pop(sid, None)
            if not self._subs and self._muxer is not None:
                self._muxer.close()
                self._muxer = None

    @property
    def viewers(self) -> int:
        return len(self._subs)

    def snapshot_jpeg(self, max_width: int | None = None) -> tuple[bytes, float] | None:
        """The latest keyframe as a JPEG, with its wall time; None before the first one."""
        with self._lock:
            if self._last_key is None or self._stream is None:
                return None
            if self._snapshot is not None and self._snapshot[0] == self._key_serial:
                return self._snapshot[1], self._last_key_time
            data, when, serial = self._last_key, self._last_key_time, self._key_serial
            ctx = self._stream.codec_context
            name, extradata = str(ctx.name), ctx.extradata
        jpeg = encode_jpeg(name, extradata, data, max_width)
        if jpeg is None:
            return None
        with self._lock:
            self._snapshot = (serial, jpeg)
        return jpeg, when


def decode_keyframe(codec: str, extradata: bytes | None, keyframe: bytes) -> Any | None:
    """Decode one keyframe on its own; the frame, or None if it does not decode."""
    try:
        dec: Any = av.CodecContext.create(codec, "r")
        if extradata:
            dec.extradata = extradata
        frames = list(dec.decode(av.Packet(keyframe)))
        frames += list(dec.decode(None))
    except (av.FFmpegError, ValueError) as exc:
        log.debug("keyframe does not decode: %s", exc)
        return None
    return frames[0] if frames else None


def encode_jpeg(
    codec: str, extradata: bytes | None, keyframe: bytes, max_width: int | None = None
) -> bytes | None:
    """Decode one keyframe and encode it as JPEG (PyAV's mjpeg encoder, no Pillow)."""
    if codec == "mjpeg" and max_width is None:
        return keyframe
    frame = decode_keyframe(codec, extradata, keyframe)
    if frame is None:
        return None
    return encode_jpeg_frame(frame, max_width) or None
