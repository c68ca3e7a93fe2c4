"""A hotlisted plate seen by an RTSP camera becomes an alert on the command centre's
WebSocket, with the crop, the read stored and searchable; a dedicated LPR camera stores
one read per passing plate.

The cameras stream real car photos from ../shared/data/plates/openalpr-us: as a slideshow
(4 s each), and for the LPR camera one car "driving up" (the photo zoomed in over 4 s).
Plates verified by reading them with the project's reader: 6HP995, SL7C6S, UF2V5S (the
labels in the data set agree).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from citywatch.analytics.models import load_spec
from citywatch.config import AnalyticsConfig, DetectorConfig
from citywatch.store.models import PlateRead
from tests.conftest import (
    MEDIA_CACHE,
    SHARED_DATA,
    add_user,
    alerts_on_websocket,
    camera,
    login,
    wait_for,
)
from tests.support.rtsp import RtspServer, _ffmpeg, slideshow_ts

PHOTOS = [
    "37170dd1-2802-4e38-b982-c5d07c64ff67.jpg",  # 6HP995
    "22e54a62-57a8-4a0a-88c1-4b9758f67651.jpg",  # SL7C6S
    "4be2025c-09f7-4bb0-b1bd-8e8633e6dec1.jpg",  # UF2V5S
]


def _ready() -> list[Path]:
    folder = SHARED_DATA / "plates" / "openalpr-us"
    if not folder.is_dir():
        pytest.skip(f"shared data not present: {folder}")
    try:
        if not Path(load_spec("nanodet").path).is_file():
            pytest.skip("detector model not built; run scripts/build_models.sh")
    except Exception as exc:
        pytest.skip(f"detector model not built ({exc}); run scripts/build_models.sh")
    return [folder / p for p in PHOTOS]


def test_hotlist_hit_from_rtsp_camera_to_websocket_alert(app_client: Any) -> None:
    photos = _ready()
    clip = slideshow_ts(photos, MEDIA_CACHE / "plates-slideshow.ts")
    analytics = AnalyticsConfig(enabled=True, fps=5, motion_gating=False, plates=True)
    with RtspServer({"lpr": clip}) as server:
        cw, client = app_client(
            [camera("lpr", server.url("lpr"), analytics=analytics)],
            detector=DetectorConfig(workers=1),
        )
        add_user(cw, "inv", "investigator")
        add_user(cw, "op", "operator")
        inv = login(client, "inv")
        hl = client.post(
            "/api/v1/hotlists",
            json={
                "name": "stolen",
                "reason": "reported stolen",
                "legal_basis": "Police Act 7",
                "priority": "critical",
            },  # fmt: skip
            headers=inv,
        )
        assert hl.status_code in (200, 201), hl.text
        list_id = hl.json()["id"]
        for plate in ("6HP995", "SL7C65"):  # the second one is a 5/S confusion away
            r = client.post(
                f"/api/v1/hotlists/{list_id}/entries", json={"plate": plate}, headers=inv
            )
            assert r.status_code in (200, 201), r.text
        op = login(client, "op")
        alerts = alerts_on_websocket(client, cw, op, 2, 60, "two hotlist alerts on the ws")

    by_entry = {a["entry"]: a for a in alerts}
    assert set(by_entry) == {"6HP995", "SL7C65"}
    exact, near = by_entry["6HP995"], by_entry["SL7C65"]
    assert exact["kind"] == "hotlist" and exact["priority"] == "critical"
    assert exact["plate"].replace(" ", "") == "6HP995" and exact["confusions"] == 0
    assert near["matched_as"] == "SL7C65" and near["confusions"] == 1
    for a in alerts:
        assert a["raised_at"] - a["ts"] < 5.0  # the read is fused when the vehicle leaves
        crop = client.get(a["crop"], headers=inv)
        assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
        assert a["playback"].startswith("/api/v1/cameras/lpr/playback.mp4?start=")
    found = client.get(
        "/api/v1/plates/search?q=6HP995&mode=exact&purpose=stolen+car+report", headers=inv
    ).json()
    assert found["items"] and found["items"][0]["camera_id"] == "lpr"
    assert cw.audit.page(action="hotlist.entry.add")[1] >= 2 or cw.audit.page()[1] > 0


def approach_ts(photo: Path, dst: Path, before_s: float = 2.0, after_s: float = 14.0) -> Path:
    """A car driving up to an LPR camera: grey for ``before_s``, then the photo zoomed in
    from 1x to 1.5x over 4 s (the plate grows and moves), then grey for ``after_s``; 1280x720,
    10 fps, H.264 in MPEG-TS. Cached."""
    if dst.exists():
        return dst
    grey = "color=c=gray:s=1280x720:r=10"
    car = (
        "[0:v]scale=1280:720,zoompan=z='1+0.0125*on':x='iw/2-(iw/zoom/2)':"
        "y='ih/2-(ih/zoom/2)':d=40:s=1280x720:fps=10,setsar=1,format=yuv420p[car];"
    )
    args = [
        "-i", str(photo),
        "-f", "lavfi", "-i", f"{grey}:d={before_s}",
        "-f", "lavfi", "-i", f"{grey}:d={after_s}",
        "-filter_complex",
        car + "[1:v]setsar=1,format=yuv420p[pre];[2:v]setsar=1,format=yuv420p[post];"
        "[pre][car][post]concat=n=3:v=1:a=0[out]",
        "-map", "[out]",
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-bf", "0",
        "-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
        "-f", "mpegts",
    ]  # fmt: skip
    return _ffmpeg(args, dst)


def test_lpr_camera_gives_one_read_per_passing_car(app_client: Any) -> None:
    """A dedicated LPR camera (no vehicle detection) reads the plate on every frame the car
    is in view (about 20 frames at 5 fps) and stores exactly one fused read per passage,
    with its direction. The clip loops every 20 s: one car per loop. The camera may join
    in the middle of a car, so the second read (a whole passage) is the one checked."""
    photo = _ready()[0]  # 6HP995
    clip = approach_ts(photo, MEDIA_CACHE / "lpr-approach.ts")
    analytics = AnalyticsConfig(
        enabled=True, fps=5, plates=True, plate_mode="lpr", plate_countries=["US"]
    )
    with RtspServer({"gate": clip}) as server:
        cw, client = app_client(
            [camera("gate", server.url("gate"), analytics=analytics)],
            detector=DetectorConfig(workers=1),
        )

        def reads() -> list[PlateRead]:
            with cw.db.session() as s:
                rows = s.scalars(select(PlateRead).where(PlateRead.camera_id == "gate"))
                return sorted(rows, key=lambda r: r.ts)

        def two() -> list[PlateRead] | None:
            got = reads()
            assert len(got) <= 2, [(r.text, r.ts) for r in got]  # never two per car
            return got if len(got) == 2 else None

        first, second = wait_for(two, 100, "the LPR camera's reads of two passing cars")
        # one read per loop of the clip (per car), not one per frame
        assert 15 < second.ts - first.ts < 25, (first.ts, second.ts)
        until = time.monotonic() + 8  # the next car comes about 20 s after this one
        while time.monotonic() < until:
            assert len(reads()) == 2
            time.sleep(0.5)
        add_user(cw, "inv", "investigator")
        inv = login(client, "inv")
        found = client.get(
            "/api/v1/plates/search?q=6HP995&mode=exact&purpose=lpr+test", headers=inv
        ).json()
    assert second.normalised == "6HP995" and second.format == "US"
    assert second.direction == "approaching"  # the plate grew as the car came closer
    assert second.event_id is None  # no vehicle track on an LPR camera
    assert second.crop and (cw.settings.data_dir / second.crop).is_file()
    assert second.snapshot and (cw.settings.data_dir / second.snapshot).is_file()
    assert {item["camera_id"] for item in found["items"]} == {"gate"}
