"""Live analytics end to end on real clips streamed by the real RTSP server: people and
cars are tracked, a line across the street counts vehicles, and an alert rule reaches a
WebSocket client and an MQTT subscriber.

Expected counts were checked by looking at the clips (contact sheets of both):
- one-by-one-person-detection.mp4: six people walk in one at a time over 139 s; the first
  40 s used here hold two of them (from about 6 s and 23 s).
- car-detection.mp4 (30 s, top-down view of a road running up and down the picture):
  five cars pass (about 5 s, 14 s, two together at 16 s, 26 s); NanoDet finds three or
  four of them (one is often called a bus), so the test asks for 2 to 7 vehicle tracks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from citywatch.analytics.models import load_spec
from citywatch.config import (
    AlertRule,
    AnalyticsConfig,
    DetectorConfig,
    LineConfig,
    MqttConfig,
    ZoneConfig,
)
from citywatch.store.models import Event, ZoneCount
from tests.conftest import (
    MEDIA_CACHE,
    add_user,
    alerts_on_websocket,
    camera,
    login,
    shared_video,
    wait_for,
)
from tests.support.mosquitto import Mosquitto
from tests.support.rtsp import RtspServer, to_ts


def _model_or_skip() -> None:
    try:
        spec = load_spec("nanodet")
    except Exception as exc:  # the model is built by scripts/build_models.sh
        pytest.skip(f"detector model not built ({exc}); run scripts/build_models.sh")
    if not Path(spec.path).is_file():
        pytest.skip(f"{spec.path} missing; run scripts/build_models.sh")


def test_people_and_cars_tracked_line_counted_alert_delivered(app_client: Any) -> None:
    _model_or_skip()
    people = to_ts(shared_video("one-by-one-person-detection.mp4"),
                   MEDIA_CACHE / "people-40s.ts", gop=10, seconds=40)  # fmt: skip
    street = to_ts(shared_video("car-detection.mp4"), MEDIA_CACHE / "street-g12.ts", gop=12)
    analytics = AnalyticsConfig(
        enabled=True,
        fps=5,
        lines=[LineConfig(name="across", a=(0.0, 0.5), b=(1.0, 0.5))],
        zones=[ZoneConfig(name="table", polygon=[(0.3, 0.4), (0.8, 0.4), (0.8, 1.0), (0.3, 1.0)])],
    )
    rule = AlertRule(name="vehicle crossing", on="cross", zone="across",
                     classes=["car", "bus", "truck"], priority="high")  # fmt: skip
    with RtspServer({"people": people, "street": street}) as server, Mosquitto() as broker:
        got_mqtt: list[dict[str, Any]] = []
        sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        sub.on_message = lambda c, u, m: got_mqtt.append(json.loads(m.payload))
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("citywatch/alert/#", qos=1)
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        cw, client = app_client(
            [
                camera("people", server.url("people"), analytics=analytics),
                camera("street", server.url("street"), analytics=analytics),
            ],
            detector=DetectorConfig(workers=2),
            alerts=[rule],
            mqtt=MqttConfig(host="127.0.0.1", port=broker.port),
        )
        add_user(cw, "op", "operator")
        headers = login(client, "op")
        try:
            ws_alerts = alerts_on_websocket(
                client, cw, headers, 2, 60, "two vehicle-crossing alerts on the ws"
            )
            wait_for(lambda: _ended(cw, "people") >= 2, 30, "two people tracked to the end")
        finally:
            sub.loop_stop()
        status = client.get("/api/v1/cameras/street/analytics/status", headers=headers).json()

    assert status["state"] == "running" and status["analysed_fps"] > 3
    with cw.db.session() as s:
        events = list(s.scalars(select(Event).order_by(Event.id)))
        counts = list(s.scalars(select(ZoneCount)))
    people_events = [e for e in events if e.camera_id == "people"]
    cars = [e for e in events if e.camera_id == "street"]
    assert all(e.class_name == "person" for e in people_events)
    assert 2 <= len({e.track_id for e in people_events}) <= 4
    assert all(e.class_name in {"car", "bus", "truck"} for e in cars)
    assert 2 <= len(cars) <= 7
    done = [e for e in people_events if e.end_ts is not None]
    assert done and all(e.snapshot and e.frame for e in done)
    assert any("table" in e.zones for e in done)
    crossings = [c for e in cars for c in e.crossings]
    assert len(crossings) >= 2
    counted = sum(c.count for c in counts if c.camera_id == "street" and "->" in c.kind)
    assert counted == len(crossings)
    # Alerts reached the command centre's WebSocket and the MQTT broker, within a second.
    assert ws_alerts[0]["rule"] == "vehicle crossing" and ws_alerts[0]["priority"] == "high"
    assert {a["id"] for a in ws_alerts} <= {a["id"] for a in got_mqtt}
    for a in ws_alerts:
        assert a["raised_at"] - a["ts"] < 1.0, a
    # An event opens playback at its moment, and has its picture.
    inv_headers = headers
    r = client.get(f"/api/v1/events/{done[0].id}", headers=inv_headers).json()
    assert r["playback"].startswith("/api/v1/cameras/people/playback.mp4?start=")
    snap = client.get(f"/api/v1/events/{done[0].id}/snapshot.jpg", headers=inv_headers)
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"


def _ended(cw: Any, camera_id: str) -> int:
    with cw.db.session() as s:
        return len(
            list(
                s.scalars(
                    select(Event).where(Event.camera_id == camera_id, Event.end_ts.is_not(None))
                )
            )
        )


def test_missing_model_is_a_clear_error_and_recording_goes_on(
    app_client: Any, rtsp: RtspServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yaml"
    missing.write_text("name: nope\nfile: nope.onnx\nlayout: yolov8\ninput: [640, 640]\n")
    cw, client = app_client(
        [camera("cam", rtsp.url("cam1"), analytics=AnalyticsConfig(enabled=True))],
        detector=DetectorConfig(model=str(missing)),
    )
    add_user(cw, "op", "operator")
    headers = login(client, "op")
    wait_for(lambda: cw.index.range("cam", 0, 2e9), 20, "recording despite the broken model")
    status = wait_for(
        lambda: (s := cw.analytics.status.get("cam")) and s.state == "error" and s,
        30,
        "the analytics error",
    )
    assert "detector unavailable" in status.error and "nope" in status.error
    r = client.get("/api/v1/cameras/cam/analytics/status", headers=headers).json()
    assert r["state"] == "error"
    assert cw.cameras.health("cam").state == "online"
    time.sleep(0.1)


def test_garbage_camera_does_not_disturb_analysis_of_others(app_client: Any) -> None:
    """A camera sending random bytes: its analysis reports an error and retries; the
    worker process and the other camera's analysis run on."""
    _model_or_skip()
    people = to_ts(shared_video("one-by-one-person-detection.mp4"),
                   MEDIA_CACHE / "people-40s.ts", gop=10, seconds=40)  # fmt: skip
    on = AnalyticsConfig(enabled=True, fps=5)
    with RtspServer({"people": people}, garbage=("junk",)) as server:
        cw, client = app_client(
            [
                camera("junk", server.url("junk"), analytics=on),
                camera("people", server.url("people"), analytics=on),
            ],
            detector=DetectorConfig(workers=1),  # both cameras in the same worker process
        )
        wait_for(lambda: _ended(cw, "people") >= 1, 45, "a person tracked on the good camera")
        people_status = cw.analytics.status["people"]
        junk_status = cw.analytics.status.get("junk")
    assert people_status.state == "running" and people_status.analysed_fps > 3
    assert junk_status is not None and junk_status.analysed_fps == 0
    with cw.db.session() as s:
        assert not list(s.scalars(select(Event).where(Event.camera_id == "junk")))
