"""The analytics API over stored events, alerts and counts (seeded through the real event
service, as the analysis workers would)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from citywatch.analytics.messages import Snapshot, TrackEnded, TrackStarted, ZoneHit
from citywatch.analytics.zones import ZoneEvent
from citywatch.config import AlertRule
from citywatch.imaging import encode_jpeg_array
from tests.conftest import add_user, camera, login

T0 = 1_800_000_000.0


def seed(cw: Any) -> None:
    cw.settings.alerts = [AlertRule(name="crossing", on="cross", zone="street")]
    jpeg = encode_jpeg_array(np.full((40, 60, 3), 100, np.uint8))
    h = cw.events.handle
    for cam, track, cls, start, zone in [
        ("cam1", 1, "person", T0, "door"),
        ("cam1", 2, "car", T0 + 100, None),
        ("cam2", 1, "car", T0 + 200, None),
    ]:
        h(TrackStarted(cam, track, cls, start, (0.1, 0.1, 0.2, 0.3), 0.8))
        if zone:
            h(ZoneHit(cam, ZoneEvent("enter", zone, track, cls, start + 1)))
        h(ZoneHit(cam, ZoneEvent("cross", "street", track, cls, start + 2, "A->B")))
        h(Snapshot(cam, track, start + 1, (0.1, 0.1, 0.2, 0.3), 0.5, jpeg, jpeg))
        h(TrackEnded(cam, track, cls, start, start + 30, 0.9, False, [(start, 0.1, 0.3)]))


def test_events_alerts_counts_and_limits(app_client: Any, media: dict[str, Path]) -> None:
    url = f"file://{media['a_mp4']}"
    cw, client = app_client(
        [camera("cam1", url, enabled=False), camera("cam2", url, enabled=False)]
    )
    add_user(cw, "op", "operator")
    add_user(cw, "one", "viewer", ["cam1"])
    add_user(cw, "boss", "admin")
    seed(cw)
    op = login(client, "op")
    page = client.get("/api/v1/events?limit=2", headers=op).json()
    assert page["total"] == 3 and [e["camera_id"] for e in page["items"]] == ["cam2", "cam1"]
    assert page["items"][0]["class"] == "car" and page["items"][0]["has_snapshot"]
    door = client.get("/api/v1/events?zone=door", headers=op).json()
    assert [(e["camera_id"], e["track_id"]) for e in door["items"]] == [("cam1", 1)]
    street = client.get("/api/v1/events?zone=street&class=car", headers=op).json()
    assert street["total"] == 2
    # Overlap: an event that started before `start` and ends after it is included.
    ov = client.get(f"/api/v1/events?start={T0 + 20}&end={T0 + 50}", headers=op).json()
    assert [e["track_id"] for e in ov["items"]] == [1] and ov["items"][0]["camera_id"] == "cam1"
    detail = client.get(f"/api/v1/events/{door['items'][0]['id']}", headers=op).json()
    assert detail["path"] and detail["playback"].startswith("/api/v1/cameras/cam1/playback.mp4")
    snap = client.get(f"/api/v1/events/{detail['id']}/snapshot.jpg?full=true", headers=op)
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"

    alerts = client.get("/api/v1/alerts?unacknowledged=true", headers=op).json()
    assert alerts["total"] == 3
    first = alerts["items"][0]
    assert first["class"] == "car" and first["zone"] == "street" and first["direction"] == "A->B"
    acked = client.post(f"/api/v1/alerts/{first['id']}/ack", headers=op).json()
    assert acked["acknowledged_by"] == "op"
    assert client.get("/api/v1/alerts?unacknowledged=true", headers=op).json()["total"] == 2

    one = login(client, "one")
    mine = client.get("/api/v1/events", headers=one).json()
    assert {e["camera_id"] for e in mine["items"]} == {"cam1"}
    other = client.get("/api/v1/events?camera=cam2", headers=one)
    assert other.status_code == 404
    cam2_event = client.get("/api/v1/events?camera=cam2", headers=op).json()["items"][0]["id"]
    assert client.get(f"/api/v1/events/{cam2_event}", headers=one).status_code == 404
    assert client.get("/api/v1/alerts", headers=one).json()["total"] == 2

    counts = client.get(
        f"/api/v1/cameras/cam1/counts?start={T0 - 60}&end={T0 + 3600}", headers=op
    ).json()
    totals = {(x["name"], x["kind"]): x["total"] for x in counts["series"]}
    assert totals == {("door", "enter"): 1, ("street", "A->B"): 2}

    boss = login(client, "boss")
    bad = client.put(
        "/api/v1/cameras/cam1/zones",
        json={"zones": [{"name": "x", "polygon": [[0, 0], [2, 0], [1, 1]]}]},
        headers=boss,
    )
    assert bad.status_code == 422 and "0..1" in bad.json()["detail"]
    ok = client.put(
        "/api/v1/cameras/cam1/zones",
        json={"zones": [{"name": "gate", "polygon": [[0, 0], [1, 0], [1, 1]]}], "lines": []},
        headers=boss,
    )
    assert ok.status_code == 200
    got = client.get("/api/v1/cameras/cam1/analytics", headers=op).json()
    assert [z["name"] for z in got["zones"]] == ["gate"]
    assert client.put("/api/v1/cameras/cam1/zones", json={}, headers=op).status_code == 403
    assert cw.audit.page(action="camera.analytics")[1] == 1
