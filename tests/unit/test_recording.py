"""Segment writing, index, playback and live fMP4 on real H.264 (generated clips)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from citywatch.cameras.live import LiveFeed, h264_codec_string, split_boxes
from citywatch.recording.playback import hls_playlist, keyframe_at_or_before, stream_mp4
from citywatch.recording.segmenter import SegmentInfo, SegmentWriter, parse_segment_name


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def packets(path: Path, loops: int = 1) -> Iterator[tuple[Any, Any]]:
    """Packets of a clip; with loops > 1 the same connection seeks back to the start, so
    timestamps jump back to 0 as when a camera reboots."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        for i in range(loops):
            if i:
                c.seek(0, stream=v)
            for p in c.demux(v):
                if p.size:
                    yield v, p


def record(path: Path, root: Path, seconds: float = 2.0, loops: int = 1) -> list[SegmentInfo]:
    out: list[SegmentInfo] = []
    clock = Clock(1_800_000_100.0)  # 2027-01-15 08:01:40 UTC
    w = SegmentWriter("cam", root, out.append, seconds, clock=clock)
    started = False
    for stream, p in packets(path, loops):
        if not started:
            w.start_stream(stream)
            started = True
        w.write(p)
        clock.t += 0.04
    w.close()
    return out


def decode_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_segments_are_contiguous_cut_at_keyframes_and_decode(
    media: dict[str, Path], tmp_path: Path
) -> None:
    segs = record(media["a_mp4"], tmp_path, seconds=2.0)  # 8 s clip, keyframe every 1 s
    assert len(segs) == 4
    for a, b in zip(segs, segs[1:], strict=False):
        assert b.start_ts == pytest.approx(a.end_ts, abs=1e-6)
    assert sum(s.duration for s in segs) == pytest.approx(8.0, abs=0.05)
    total = 0
    for s in segs:
        assert s.path.exists() and not s.path.with_name(s.path.name + ".part").exists()
        assert s.keyframes[0] == 0.0 and s.keyframes == pytest.approx([0.0, 1.0])
        assert parse_segment_name(s.path) == pytest.approx(s.start_ts, abs=1e-3)
        assert s.path.parent.name == "08"  # hour directory (UTC)
        total += decode_count(s.path)
    assert total == 200  # every frame of the clip, none lost, none duplicated


def test_timestamp_jump_is_rebased_not_a_wrong_time(media: dict[str, Path], tmp_path: Path) -> None:
    # The same clip twice in one connection: timestamps jump back to 0 at the join.
    segs = record(media["a_mp4"], tmp_path, seconds=2.0, loops=2)
    assert sum(s.duration for s in segs) == pytest.approx(16.0, abs=0.1)
    for a, b in zip(segs, segs[1:], strict=False):
        assert b.start_ts == pytest.approx(a.end_ts, abs=1e-6)
    assert sum(decode_count(s.path) for s in segs) == 400


def test_playback_starts_at_keyframe_before_requested_time(
    media: dict[str, Path], tmp_path: Path
) -> None:
    segs = record(media["a_mp4"], tmp_path, seconds=2.0)
    t0 = segs[0].start_ts
    asked = t0 + 3.5  # inside segment 2 (2..4 s), keyframes at 2 and 3 s
    rows = [FakeRow(i, s) for i, s in enumerate(segs)]
    chosen = [r for r in rows if r.end_ts > asked]
    data = b"".join(stream_mp4(chosen, [s.path for s in segs[1:]], asked, t0 + 6.0))
    with av.open(io.BytesIO(data)) as c:
        frames = list(c.decode(video=0))
        duration = float(frames[-1].pts * c.streams.video[0].time_base) + 0.04
    # Starts at the keyframe at 3.0 s: within one GOP (1 s) before the asked time.
    assert 3.0 - 1e-6 <= 6.0 - duration <= 3.5
    assert len(frames) == 75
    assert frames[0].key_frame


def test_keyframe_lookup() -> None:
    row = FakeRow(1, SegmentInfo("c", Path("x"), 100.0, 110.0, 1, "h264", 1, 1, [0.0, 2.0, 4.0]))
    assert keyframe_at_or_before(row, 103.9) == 2.0
    assert keyframe_at_or_before(row, 104.0) == 4.0
    assert keyframe_at_or_before(row, 99.0) == 0.0


def test_hls_playlist_lists_each_segment_with_its_init_map() -> None:
    rows = [
        FakeRow(7, SegmentInfo("c", Path("x"), 100.0, 110.0, 1, "h264", 1, 1, [0.0])),
        FakeRow(8, SegmentInfo("c", Path("y"), 110.0, 119.5, 1, "h264", 1, 1, [0.0])),
        FakeRow(9, SegmentInfo("c", Path("z"), 200.0, 210.0, 1, "h264", 1, 1, [0.0])),
    ]
    text = hls_playlist(rows, "/api/v1/segments/{id}")
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "#EXT-X-ENDLIST"
    assert "#EXT-X-TARGETDURATION:10" in lines
    assert lines.count("#EXT-X-DISCONTINUITY") == 2
    assert '#EXT-X-MAP:URI="/api/v1/segments/8/init.mp4"' in lines
    assert "#EXTINF:9.500," in lines
    # A gap (119.5 -> 200) gets a new program date-time.
    assert sum(1 for x in lines if x.startswith("#EXT-X-PROGRAM-DATE-TIME")) == 2


def test_codec_string_from_avcc_and_annexb() -> None:
    assert h264_codec_string(bytes([1, 0x4D, 0x40, 0x1E, 0xFF])) == "avc1.4D401E"
    assert h264_codec_string(b"\x00\x00\x00\x01\x67\x64\x00\x28\xac") == "avc1.640028"


def test_live_feed_gives_init_then_per_frame_fragments_that_decode(
    media: dict[str, Path],
) -> None:
    feed = LiveFeed("cam")
    got: list[bytes] = []
    for n, (stream, p) in enumerate(packets(media["a_mp4"]), start=1):
        if n == 1:
            feed.start_stream(stream)
            feed.subscribe(got.append)
        feed.feed(p, 0.0)
        if n == 60:
            break
    assert [k for k, _ in split_boxes(got[0])] == ["ftyp", "moov"]
    assert all(split_boxes(f)[0][0] == "moof" for f in got[1:])
    assert len(got) - 1 == 59  # one fragment per frame, the last still open
    assert feed.codec == "avc1.42C01E"  # constrained baseline, level 3.0 (x264 ultrafast)
    with av.open(io.BytesIO(b"".join(got))) as c:
        assert sum(1 for _ in c.decode(video=0)) == 59
    # A late viewer starts at the last keyframe (frame 50), with the init segment first.
    late: list[bytes] = []
    feed.subscribe(late.append)
    assert split_boxes(late[0])[0][0] == "ftyp"
    assert len(late) - 1 == 9
    with av.open(io.BytesIO(b"".join(late))) as c:
        frames = list(c.decode(video=0))
        assert len(frames) == 9 and frames[0].key_frame
    shot = feed.snapshot_jpeg(max_width=320)
    assert shot is not None and shot[0][:2] == b"\xff\xd8"


class FakeRow:
    """An index row as playback sees it (id + the segment's times)."""

    def __init__(self, seg_id: int, info: SegmentInfo) -> None:
        self.id = seg_id
        self.start_ts = info.start_ts
        self.end_ts = info.end_ts
        self.duration = info.duration
        self.keyframes = info.keyframes
