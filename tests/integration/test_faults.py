"""Fault injection with real parts: dead and silent cameras, a camera that drops and comes
back, corrupt streams, a server killed mid-segment, and a disk at its quota.

Nothing is mocked: cameras are the loopback GStreamer RTSP server (or a raw TCP socket that
never answers), recordings are real fMP4 files on disk, the index is a real SQLite database,
and the server of the crash test is the real `citywatch serve` process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from types import TracebackType

import av
import pytest
import yaml

from citywatch.cameras.registry import WorkerOptions
from citywatch.cameras.worker import Backoff
from citywatch.config import RetentionConfig, load_settings
from citywatch.recording.playback import stream_mp4
from citywatch.recording.retention import GB, RetentionSweeper
from citywatch.runtime import CityWatch
from citywatch.store.models import Segment
from tests.conftest import REPO, MakeCW, camera, wait_for
from tests.support.rtsp import RtspServer, free_port

SECRET = "Pa55-word!never-shown"  # the cameras' password: must appear nowhere
FPS = 25  # the generated clips' frame rate
# Fast retries and a short open timeout keep the failure paths quick.
FAULT_OPTIONS = WorkerOptions(
    segment_seconds=2.0, open_timeout_s=3.0, backoff=Backoff(0.3, 2.0, 2.0, 0.1)
)


# helpers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decoded:
    frames: int
    span_s: float  # first frame's pts to the end of the last frame


def decode_all(path: Path) -> Decoded:
    """Decode every frame of a file's video stream; raise on any decoding error."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        assert tb is not None
        pts = [int(frame.pts) for frame in container.decode(stream) if frame.pts is not None]
    assert pts, f"{path}: no frame decodes"
    pts.sort()
    step = 1 / FPS if len(pts) < 2 else float(min(b - a for a, b in pairwise(pts)) * tb)
    return Decoded(len(pts), float((pts[-1] - pts[0]) * tb) + step)


def assert_segment_decodes(cw: CityWatch, seg: Segment, tolerance_s: float = 0.2) -> Decoded:
    """The indexed file exists, every frame decodes, and it lasts what the index says."""
    path = cw.index.abs(seg)
    assert path.is_file(), f"indexed segment {seg.path} has no file"
    assert path.stat().st_size == seg.bytes, f"{seg.path}: size differs from the index"
    dec = decode_all(path)
    assert abs(dec.span_s - seg.duration) <= tolerance_s, (
        f"{seg.path}: decodes to {dec.span_s:.3f} s, index says {seg.duration:.3f} s"
    )
    assert seg.end_ts - seg.start_ts == pytest.approx(seg.duration, abs=1e-3)
    return dec


def assert_plays(cw: CityWatch, seg: Segment) -> None:
    """The playback path (remux to one MP4) serves the segment, and the result decodes."""
    data = b"".join(stream_mp4([seg], [cw.index.abs(seg)], seg.start_ts, seg.end_ts))
    assert data, f"{seg.path}: playback produced nothing"
    with av.open(io.BytesIO(data), "r") as container:
        frames = len(list(container.decode(video=0)))
    assert frames > 0, f"{seg.path}: played back MP4 has no frames"


def segments(cw: CityWatch, cam: str) -> list[Segment]:
    return cw.index.all_ordered(cam)


def worker_alive(cam: str) -> bool:
    return any(t.name == f"camera-{cam}" and t.is_alive() for t in threading.enumerate())


def audit_text(cw: CityWatch) -> str:
    rows, _ = cw.audit.page(limit=10_000)
    return json.dumps(
        [[r.actor, r.action, r.target, r.outcome, r.client, r.details] for r in rows],
        ensure_ascii=False,
    )


class SilentCamera:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-camera", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read from nor written to

    def __enter__(self) -> SilentCamera:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        for conn in self.accepted:
            conn.close()


# 1. cameras that never answer ---------------------------------------------------------------
def test_unreachable_cameras_back_off_without_leaking_the_password(
    rtsp: RtspServer, make_cw: MakeCW, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead_port = free_port()  # nothing listens here
    with SilentCamera() as silent:
        cw = make_cw(
            [
                camera("good", rtsp.url("cam1")),
                camera(
                    "dead",
                    f"rtsp://127.0.0.1:{dead_port}/stream",
                    username="admin",
                    password=SECRET,
                ),
                camera(
                    "silent",
                    f"rtsp://127.0.0.1:{silent.port}/stream",
                    username="admin",
                    password=SECRET,
                ),
            ],
            options=FAULT_OPTIONS,
        )
        cw.start()
        health = cw.cameras.health
        # The silent camera costs the open timeout (3 s) per try: two tries take ~6.5 s.
        wait_for(lambda: health("silent").reconnects >= 2, 20, "two retries of the silent camera")
        wait_for(lambda: len(segments(cw, "good")) >= 2, 15, "the good camera to record")
        accepted = len(silent.accepted)
        dead, quiet, good = health("dead"), health("silent"), health("good")

        # (a) nothing listens: refused at once, retried with growing delays
        assert dead.state in ("error", "offline")
        assert "cannot open rtsp://127.0.0.1" in dead.last_error
        assert "refused" in dead.last_error.lower(), dead.last_error
        assert dead.reconnects >= 4
        assert dead.packets == 0 and not dead.recording
        failures = [
            r.created
            for r in caplog.records
            if r.name == "citywatch.cameras.worker" and r.getMessage().startswith("camera dead:")
        ]
        assert len(failures) >= 4, failures
        gaps = [b - a for a, b in pairwise(failures)]
        # Backoff(0.3 s, x2, max 2 s, ±10 %): 0.3, 0.6, 1.2, 2.0, 2.0, ...
        assert min(gaps) >= 0.2, f"no backoff between retries: {gaps}"
        assert gaps[2] >= 0.9 and gaps[2] > 2 * gaps[0], f"delays do not grow: {gaps}"
        assert max(gaps) <= 2.0 * 1.1 + 0.6, f"delay above the 2 s cap: {gaps}"

        # (b) accepts and never answers: each try ends at the open timeout, clearly worded
        assert quiet.state == "offline"  # offline once it failed more than once
        assert f"cannot open rtsp://127.0.0.1:{silent.port}/stream" in quiet.last_error
        assert "timed out" in quiet.last_error, quiet.last_error
        assert quiet.packets == 0 and not quiet.recording
        assert accepted >= 2, "the silent camera was not retried"

        # the other camera of the runtime is unaffected
        assert good.state == "online" and good.reconnects == 0 and good.recording
        n = len(segments(cw, "good"))
        wait_for(lambda: len(segments(cw, "good")) > n, 10, "the good camera to keep recording")
        assert_segment_decodes(cw, segments(cw, "good")[-1])
        assert segments(cw, "dead") == [] and segments(cw, "silent") == []
        cw.stop()

    # The password reaches the demuxer only: not health, the log or the audit log.
    for h in (dead, quiet, good):
        assert SECRET not in repr(h.as_dict())
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in audit_text(cw)


# 2. a camera that drops mid-stream and comes back -------------------------------------------
def test_camera_drop_and_return_leaves_a_gap_of_the_outage(
    own_rtsp: RtspServer, make_cw: MakeCW
) -> None:
    cw = make_cw([camera("cam", own_rtsp.url("cam"))], options=FAULT_OPTIONS)
    cw.start()
    wait_for(lambda: len(segments(cw, "cam")) >= 2, 15, "two segments before the outage")

    t_down = time.time()
    own_rtsp.stop()
    wait_for(lambda: cw.cameras.health("cam").state == "offline", 4, "the camera to go offline")
    time.sleep(max(0.0, t_down + 4.0 - time.time()))
    own_rtsp.start()
    t_up = time.time()
    outage = t_up - t_down

    wait_for(
        lambda: len([s for s in segments(cw, "cam") if s.start_ts >= t_up - 0.5]) >= 2,
        20,
        "two segments after the camera came back",
    )
    health = cw.cameras.health("cam")
    assert health.state == "online"
    assert health.reconnects > 0
    cw.stop()

    segs = segments(cw, "cam")
    before = [s for s in segs if s.end_ts <= t_down + 2.0]
    after = [s for s in segs if s.start_ts >= t_up - 0.5]
    assert len(before) >= 2 and len(after) >= 2
    assert len(before) + len(after) == len(segs), "a segment straddles the outage"

    gaps = cw.index.gaps("cam", segs[0].start_ts, segs[-1].end_ts)
    assert len(gaps) == 1, f"expected exactly the outage as a gap: {gaps}"
    gap = gaps[0]
    length = gap.end_ts - gap.start_ts
    # Lost at most ~1 s more than the outage before it (last packets in flight) and at
    # most one capped backoff (2 s + jitter), a reconnect and a keyframe after it.
    assert outage - 1.5 <= length <= outage + 6.0, f"gap {length:.1f} s, outage {outage:.1f} s"
    assert gap.start_ts <= t_up and gap.end_ts >= t_up - 0.5
    assert abs(gap.start_ts - t_down) <= 2.5, "the gap does not start at the outage"

    for seg in segs:
        dec = assert_segment_decodes(cw, seg)
        assert dec.frames >= 0.6 * seg.duration * FPS, f"{seg.path}: {dec.frames} frames"


# 3. corrupt and truncated streams ------------------------------------------------------------
def corrupt_copy(src: Path, dst: Path, seed: int = 20260101) -> Path:
    """A copy cut at 60 % of its bytes, with 25 %-35 % overwritten by random bytes."""
    data = bytearray(src.read_bytes())
    cut = data[: int(len(data) * 0.6)]
    lo, hi = int(len(data) * 0.25), int(len(data) * 0.35)
    cut[lo:hi] = random.Random(seed).randbytes(hi - lo)
    dst.write_bytes(bytes(cut))
    return dst


def test_corrupt_truncated_file_source_records_what_decodes(
    media: dict[str, Path], make_cw: MakeCW, tmp_path: Path
) -> None:
    bad = corrupt_copy(media["a_ts"], tmp_path / "corrupt.ts")
    cw = make_cw([camera("bad", f"file://{bad}")], options=FAULT_OPTIONS)
    cw.start()
    # The playable part is ~4 s (4.8 s cut, ~0.8 s of it garbage): three 2 s segments
    # mean the source went through the garbage, hit the cut end and looped.
    wait_for(lambda: len(segments(cw, "bad")) >= 3, 20, "three segments from the corrupt file")
    assert cw.started and worker_alive("bad")
    health = cw.cameras.health("bad")
    assert health.state == "online", health.last_error
    cw.stop()

    segs = segments(cw, "bad")
    assert sum(s.duration for s in segs) >= 5.0
    total_frames = 0
    for seg in segs:
        total_frames += assert_segment_decodes(cw, seg).frames
    assert total_frames >= 3 * FPS, f"only {total_frames} frames recorded"
    # the garbage cost frames (the recorder copies, it does not make up video)
    assert total_frames <= sum(s.duration for s in segs) * FPS - 10
    gaps = cw.index.gaps("bad", segs[0].start_ts, segs[-1].end_ts)
    assert gaps == [], f"a looping file should record without gaps: {gaps}"


def test_garbage_rtsp_stream_never_breaks_the_runtime(
    rtsp: RtspServer, make_cw: MakeCW, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with RtspServer({}, garbage=("junk",)) as junk_server:
        cw = make_cw(
            [camera("junk", junk_server.url("junk")), camera("good", rtsp.url("cam2"))],
            options=FAULT_OPTIONS,
        )
        cw.start()
        wait_for(lambda: len(segments(cw, "good")) >= 3, 20, "the good camera to record")
        junk = replace(cw.cameras.health("junk"))  # a copy: stop() changes the live one
        good = cw.cameras.health("good")
        assert cw.started and worker_alive("junk") and worker_alive("good")
        assert good.state == "online" and good.reconnects == 0
        cw.stop()

    # Random bytes never become video: no keyframe of the junk stream decodes, so the
    # camera is refused with a reason and nothing of it is indexed.
    assert junk.state in ("error", "offline") and junk.reconnects > 0
    assert "does not" in junk.last_error or "cannot open" in junk.last_error, junk.last_error
    assert segments(cw, "junk") == []

    for seg in segments(cw, "good"):
        assert_segment_decodes(cw, seg)
    assert not [r for r in caplog.records if r.name == "citywatch.runtime" and "failed" in r.msg]


# 4. the server killed mid-segment, then restarted ---------------------------------------------
def write_config(tmp_path: Path, rtsp: RtspServer) -> Path:
    cfg = {
        "data_dir": str(tmp_path / "data"),
        "recording": {
            "segment_seconds": 4,
            "retention": {"free_reserve_gb": 0, "sweep_interval_s": 3600},
        },
        "cameras": [
            {
                "id": "cam1",
                "name": "Junction north",
                "main_stream": {"url": rtsp.url("cam1")},
                "purpose": "Traffic safety at the test junction",
                "legal_basis": "Test: municipal decision 1/2026",
            }
        ],
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def serve_process(
    tmp_path: Path, rtsp: RtspServer
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    cfg = write_config(tmp_path, rtsp)
    exe = Path(sys.executable).with_name("citywatch")
    if not exe.exists():
        exe = REPO / ".venv" / "bin" / "citywatch"
    with (tmp_path / "serve.log").open("wb") as log_file:
        proc = subprocess.Popen(
            [str(exe), "serve", "--config", str(cfg), "--port", str(free_port())],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield proc, cfg
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def test_killed_mid_segment_then_restart_repairs_the_index(
    serve_process: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    proc, cfg = serve_process
    recordings = tmp_path / "data" / "recordings"

    def ready() -> bool:
        if proc.poll() is not None:
            log = (tmp_path / "serve.log").read_text(errors="replace")
            raise AssertionError(f"citywatch serve exited with {proc.returncode}:\n{log}")
        parts = list(recordings.rglob("*.mp4.part"))
        # Fragments (one per 1 s GOP, ~230 KiB) are written whole; > 300 KiB means at least
        # one whole fragment is in the .part file, and the tail is a cut-off one.
        return len(list(recordings.rglob("*.mp4"))) >= 2 and any(
            p.stat().st_size > 300 * 1024 for p in parts
        )

    wait_for(ready, 40, "two finished segments and a .part file being written")
    time.sleep(random.Random().uniform(0.0, 0.5))  # somewhere inside a fragment
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    parts_before = {p.relative_to(recordings) for p in recordings.rglob("*.mp4.part")}
    assert parts_before

    cw = CityWatch(load_settings(cfg))
    try:
        report = cw.prepare()
        assert not list(recordings.rglob("*.part")), "a .part file survived the repair"
        for part in parts_before:
            # it held a whole fragment: salvaged into a finished segment, not quarantined
            final = str(part)[: -len(".part")]
            assert final in report.salvaged, report
            assert (recordings / final).is_file()
        assert report.quarantined == []
        indexed = cw.index.all_ordered()
        assert len(indexed) >= 3, "the finished segments and the salvaged one"
        indexed_paths = {s.path for s in indexed}
        for name in report.salvaged:
            assert name in indexed_paths, f"salvaged {name} is not indexed"
        on_disk = {str(p.relative_to(recordings)) for p in recordings.rglob("*.mp4")}
        assert on_disk == indexed_paths, "every playable file is indexed and nothing else"
        for seg in indexed:
            assert_segment_decodes(cw, seg)
            assert_plays(cw, seg)
        repairs, _ = cw.audit.page(action="recording.repair")
        assert repairs and repairs[0].actor == "system:startup"

        # A finished segment cut in half whose index row is lost, and a row whose file
        # was deleted.
        victim, gone = indexed[0], indexed[-1]
        victim_path = cw.index.abs(victim)
        size = victim_path.stat().st_size
        with victim_path.open("r+b") as f:
            f.truncate(size // 2)
        cw.index.remove([victim.id])
        cw.index.abs(gone).unlink()

        report2 = cw.prepare()
        assert report2.dropped_rows == 1
        assert gone.path not in {s.path for s in cw.index.all_ordered()}
        assert victim.path in report2.indexed or f"{victim.path}.corrupt" in report2.quarantined
        if victim.path in report2.indexed:
            (row,) = [s for s in cw.index.all_ordered() if s.path == victim.path]
            assert row.duration < victim.duration
        else:
            assert not victim_path.exists()
            assert (recordings / f"{victim.path}.corrupt").is_file()
        # Whatever it chose, nothing indexed fails to decode or to play.
        remaining = cw.index.all_ordered()
        assert remaining and {s.path for s in remaining} <= {s.path for s in indexed}
        for seg in remaining:
            assert_segment_decodes(cw, seg)
            assert_plays(cw, seg)
        assert cw.prepare().changed is False, "a second repair finds nothing to do"
    finally:
        cw.stop()


# 5. disk at quota --------------------------------------------------------------------------
def test_quota_and_free_space_delete_oldest_first(
    rtsp: RtspServer, media: dict[str, Path], make_cw: MakeCW
) -> None:
    # ~6 s of the camera's video (its bitrate is the clip's): ten seconds of recording
    # (five 2 s segments) must shed some.
    clip = media["b_ts"]
    quota = clip.stat().st_size / 8 * 6
    retention = RetentionConfig(quota_gb=quota / GB, free_reserve_gb=0, sweep_interval_s=3600)
    cw = make_cw([camera("cam", rtsp.url("cam2"))], retention=retention, options=FAULT_OPTIONS)
    cw.start()
    wait_for(lambda: len(segments(cw, "cam")) >= 5, 25, "five segments")
    cw.stop()  # freeze the index: the sweeps below see what is asserted

    segs = segments(cw, "cam")
    total = sum(s.bytes for s in segs)
    assert total > quota
    assert sum(cw.index.abs(s).stat().st_size for s in segs) == total

    deleted = cw.sweeper.sweep()
    assert deleted and {d.reason for d in deleted} == {"quota"}
    doomed = {d.segment_id for d in deleted}
    kept = segments(cw, "cam")
    # oldest first: the deleted ones are a prefix of the time-ordered segments
    assert [s.id for s in segs if s.id in doomed] == [s.id for s in segs[: len(doomed)]]
    assert [s.id for s in kept] == [s.id for s in segs[len(doomed) :]]
    assert kept[-1].id == segs[-1].id, "the newest segment must be kept"
    for seg in segs:
        assert cw.index.abs(seg).exists() == (seg.id not in doomed)
    kept_bytes = sum(s.bytes for s in kept)
    assert kept_bytes <= quota or len(kept) == 1, f"{kept_bytes} bytes kept, quota {quota:.0f}"
    # and no more than needed: keeping the youngest deleted one would exceed the quota
    youngest_deleted = segs[len(doomed) - 1]
    assert kept_bytes + youngest_deleted.bytes > quota

    entries, _ = cw.audit.page(action="retention.delete")
    assert len(entries) == 1
    details = entries[0].details
    assert entries[0].actor == "system:retention" and entries[0].target == "cam"
    assert details["segments"] == len(deleted)
    assert details["bytes"] == sum(d.bytes for d in deleted) == total - kept_bytes
    assert details["reasons"] == ["quota"]
    assert details["by_camera_reason"] == {
        "cam:quota": {"segments": len(deleted), "bytes": details["bytes"]}
    }
    assert details["from_ts"] == pytest.approx(segs[0].start_ts)
    assert details["to_ts"] == pytest.approx(youngest_deleted.end_ts)
    assert cw.sweeper.sweep() == [], "a second sweep finds the quota met"

    # The free-space reserve: the disk reports 256 MiB free, the reserve is 1 GB, so all
    # but the protected newest segment go, oldest first, as "free_space".
    assert len(kept) >= 2
    cw.settings.recording.retention.free_reserve_gb = 1.0
    asked: list[Path] = []

    def low_disk(path: Path) -> int:
        asked.append(path)
        return 256 * 1024**2

    sweeper = RetentionSweeper(cw.index, cw.audit, cw.retention_policy, 3600, free_bytes=low_disk)
    freed = sweeper.sweep()
    assert asked == [cw.index.root]
    assert [d.segment_id for d in freed] == [s.id for s in kept[:-1]]
    assert {d.reason for d in freed} == {"free_space"}
    assert [s.id for s in segments(cw, "cam")] == [kept[-1].id]
    assert cw.index.abs(kept[-1]).is_file()
    assert all(not cw.index.abs(s).exists() for s in kept[:-1])
    entries, _ = cw.audit.page(action="retention.delete")
    assert len(entries) == 2
    latest = entries[0].details  # newest first
    assert latest["reasons"] == ["free_space"]
    assert latest["segments"] == len(freed)
    assert latest["bytes"] == sum(s.bytes for s in kept[:-1])
    assert cw.audit.verify().ok
