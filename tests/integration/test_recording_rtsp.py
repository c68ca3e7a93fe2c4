"""Recording real RTSP cameras end to end: segments, index, health, playback."""

from __future__ import annotations

import io
import time
from pathlib import Path

import av

from citywatch.recording.playback import stream_mp4
from citywatch.runtime import CityWatch
from tests.conftest import MakeCW, camera, wait_for
from tests.support.rtsp import RtspServer


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_two_rtsp_cameras_record_contiguous_playable_segments(
    rtsp: RtspServer, make_cw: MakeCW
) -> None:
    cw: CityWatch = make_cw(
        [camera("cam1", rtsp.url("cam1")), camera("cam2", rtsp.url("cam2"))], segment_seconds=2
    )
    cw.start()
    # A live viewer on cam1 while it records: the two outputs must not disturb each other.
    fragments: list[bytes] = []
    cw.cameras.feed("cam1").subscribe(fragments.append)
    wait_for(lambda: len(cw.index.range("cam1", 0, 2e9)) >= 4, 30, "4 segments of cam1")
    wait_for(lambda: len(cw.index.range("cam2", 0, 2e9)) >= 4, 10, "4 segments of cam2")
    for cam_id in ("cam1", "cam2"):
        h = cw.cameras.health(cam_id)
        assert h.state == "online" and h.codec == "h264" and (h.width, h.height) == (640, 360)
        assert 20 < h.fps < 30 and h.bitrate_kbps > 10 and h.reconnects == 0
        assert h.timestamp_jumps == 0
        segs = cw.index.range(cam_id, 0, 2e9)
        for a, b in zip(segs, segs[1:], strict=False):
            assert abs(b.start_ts - a.end_ts) < 0.05, "segments of one connection are contiguous"
        span = segs[-1].end_ts - segs[0].start_ts
        assert abs(sum(s.duration for s in segs) - span) < 0.1
        for s in segs:
            assert 1.9 <= s.duration <= 3.1  # cut at the first keyframe after 2 s (GOP 1 s)
            path = cw.index.abs(s)
            assert path.name.endswith("Z.mp4") and path.parts[-4] == cam_id
            frames = decoded_frames(path)
            assert abs(frames - s.duration * 25) <= 1
        # Recording keeps up with real time, and no segment is placed in the future (the
        # burst a client gets on connecting must not push times ahead of the wall clock).
        assert 0 <= time.time() - segs[-1].end_ts < 5

    assert fragments[0][4:8] == b"ftyp" and len(fragments) > 150
    with av.open(io.BytesIO(b"".join(fragments))) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 150

    # Playback of a range starts within one GOP (1 s) before the asked time.
    segs = cw.index.range("cam1", 0, 2e9)
    asked = segs[1].start_ts + 1.3
    chosen = cw.index.range("cam1", asked, asked + 2)
    data = b"".join(stream_mp4(chosen, [cw.index.abs(s) for s in chosen], asked, asked + 2))
    with av.open(io.BytesIO(data)) as c:
        frames = list(c.decode(video=0))
        dur = float(frames[-1].pts * c.streams.video[0].time_base) + 0.04
    assert frames[0].key_frame
    start_of_file = asked + 2 - dur
    assert asked - 1.0 - 0.05 <= start_of_file <= asked + 1e-3


def test_real_street_clip_over_rtsp(car_ts: Path, make_cw: MakeCW) -> None:
    """The shared-data street scene (768x432) served as a camera records and plays."""
    with RtspServer({"street": car_ts}) as server:
        cw = make_cw([camera("street", server.url("street"))], segment_seconds=2)
        cw.start()
        segs = wait_for(lambda: cw.index.range("street", 0, 2e9)[:2], 30, "2 street segments")
        h = cw.cameras.health("street")
        assert (h.width, h.height) == (768, 432) and 10 < h.fps < 15
        for s in segs:
            assert decoded_frames(cw.index.abs(s)) >= 20
        cw.stop()


def test_camera_added_while_running_starts_recording(rtsp: RtspServer, make_cw: MakeCW) -> None:
    cw = make_cw([], segment_seconds=2)
    cw.start()
    cw.cameras.upsert(camera("late", rtsp.url("cam2")))
    wait_for(lambda: cw.index.range("late", 0, 2e9), 20, "a segment of the new camera")
    disabled = camera("late", rtsp.url("cam2"), enabled=False)
    cw.cameras.upsert(disabled)
    assert cw.cameras.health("late").state == "disabled"


def test_config_file_cameras_are_synced_and_audited(rtsp: RtspServer, make_cw: MakeCW) -> None:
    cams = [camera("cfg1", rtsp.url("cam1"), password="secret-in-yaml")]
    cw = make_cw(cams)
    cw.start()
    cw.stop()
    entries = cw.audit.page(action="camera.config_added")[0]
    assert [e.target for e in entries] == ["cfg1"]
    assert "secret-in-yaml" not in str(entries[0].details)
    again = make_cw(cams)  # same data dir, same config: nothing to record
    again.start()
    assert again.audit.page(action="camera.config_added")[1] == 1
    assert again.audit.page(action="camera.config_changed")[1] == 0


def test_every_received_packet_is_recorded(rtsp: RtspServer, make_cw: MakeCW) -> None:
    """Nothing is lost at the start of a connection (FFmpeg's first RTSP packet has no
    timestamps) nor at segment boundaries or at the stop."""
    cw = make_cw([camera("all", rtsp.url("cam1"))], segment_seconds=2)
    cw.start()
    wait_for(lambda: len(cw.index.range("all", 0, 2e9)) >= 2, 20, "two segments")
    health = cw.cameras.health("all")
    cw.stop()
    recorded = 0
    for seg in cw.index.range("all", 0, 2e9):
        with av.open(str(cw.index.abs(seg))) as c:
            recorded += sum(1 for p in c.demux(video=0) if p.size)
    assert recorded == health.packets and health.timestamp_jumps == 0
