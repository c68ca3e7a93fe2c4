"""An HTTP MJPEG camera is recorded by packet copy, like an RTSP one."""

from __future__ import annotations

from pathlib import Path

import av

from tests.conftest import MakeCW, camera, wait_for
from tests.support.mjpeg import MjpegServer, jpeg_frames


def test_http_mjpeg_camera_is_recorded(media: dict[str, Path], make_cw: MakeCW) -> None:
    with MjpegServer(jpeg_frames(media["a_mp4"])) as server:
        cw = make_cw([camera("mjpeg", server.url)], segment_seconds=2)
        cw.start()
        segs = wait_for(lambda: cw.index.range("mjpeg", 0, 2e9)[:2], 20, "2 MJPEG segments")
        h = cw.cameras.health("mjpeg")
        assert h.state == "online" and h.codec == "mjpeg" and h.width == 320
        for s in segs:
            assert s.codec == "mjpeg"
            with av.open(str(cw.index.abs(s))) as c:
                frames = list(c.decode(video=0))
            assert len(frames) >= 10 and frames[0].width == 320
        shot = cw.cameras.feed("mjpeg").snapshot_jpeg()
        assert shot is not None and shot[0][:2] == b"\xff\xd8"
        cw.stop()
