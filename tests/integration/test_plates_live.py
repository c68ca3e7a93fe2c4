"""A hotlisted plate seen by an RTSP camera becomes an alert on the command centre's
WebSocket, with the crop, the read stored and searchable.

The camera streams real car photos from ../shared/data/plates/openalpr-us as a slideshow
(4 s each). Plates verified by reading them with the project's reader: 6HP995, SL7C6S,
UF2V5S (the labels in the data set agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from citywatch.analytics.models import load_spec
from citywatch.config import AnalyticsConfig, DetectorConfig
from tests.conftest import MEDIA_CACHE, SHARED_DATA, add_user, alerts_on_websocket, camera, login
from tests.support.rtsp import RtspServer, slideshow_ts

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
