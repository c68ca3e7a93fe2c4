"""Events, alerts and their delivery on real parts: database, MQTT broker, HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from citywatch.analytics.messages import Snapshot, TrackEnded, TrackStarted, ZoneHit
from citywatch.analytics.zones import ZoneEvent
from citywatch.config import AlertRule, MqttConfig, WebhookConfig
from citywatch.events.hub import EventHub
from citywatch.events.outbound import MqttPublisher, WebhookDispatcher, sign
from citywatch.events.rules import Happening, in_window, matching
from citywatch.events.service import EventService
from citywatch.imaging import encode_jpeg_array
from citywatch.store.db import Database
from tests.conftest import wait_for
from tests.support.mosquitto import Mosquitto, mosquitto_available


def test_rules_match_kind_camera_class_zone_direction_and_window() -> None:
    rules = [
        AlertRule(name="any person", classes=["person"]),
        AlertRule(name="northbound", on="cross", zone="street", direction="A->B"),
        AlertRule(name="night loiter", on="dwell", between=("22:00", "06:00"), priority="high"),
    ]
    noon = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 12 * 3600
    h = Happening("object", "cam1", "person", noon)
    assert [r.name for r in matching(rules, h)] == ["any person"]
    assert matching(rules, Happening("object", "cam1", "car", noon)) == []
    cross = Happening("cross", "cam1", "car", noon, "street", "A->B")
    assert [r.name for r in matching(rules, cross)] == ["northbound"]
    assert matching(rules, Happening("cross", "cam1", "car", noon, "street", "B->A")) == []
    assert matching(rules, Happening("dwell", "cam1", "person", noon, "door")) == []
    assert matching(rules, Happening("dwell", "cam1", "person", noon + 11 * 3600, "door"))
    assert in_window(noon - 12 * 3600 + 3 * 3600, ("22:00", "06:00"))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[EventService, EventHub, list[dict[str, Any]]]]:
    db = Database(f"sqlite:///{tmp_path / 'cw.db'}")
    db.upgrade()
    hub = EventHub()
    seen: list[dict[str, Any]] = []
    hub.subscribe(seen.append)
    rules = [AlertRule(name="crossing", on="cross", zone="street", priority="high")]
    yield EventService(db, tmp_path / "snapshots", lambda: rules, hub), hub, seen
    db.dispose()


def test_one_event_per_track_with_snapshot_zones_and_counts(service: Any) -> None:
    svc, _, seen = service
    t0 = 1_800_000_000.0
    svc.handle(TrackStarted("cam1", 7, "car", t0, (0.1, 0.1, 0.3, 0.3), 0.8))
    svc.handle(ZoneHit("cam1", ZoneEvent("enter", "lot", 7, "car", t0 + 1)))
    svc.handle(ZoneHit("cam1", ZoneEvent("cross", "street", 7, "car", t0 + 2, "A->B")))
    jpeg = encode_jpeg_array(np.full((40, 60, 3), 128, np.uint8))
    svc.handle(Snapshot("cam1", 7, t0 + 2, (0.1, 0.1, 0.3, 0.3), 0.5, jpeg, jpeg))
    svc.handle(TrackEnded("cam1", 7, "car", t0, t0 + 5, 0.9, False, [(t0, 0.2, 0.3)]))
    kinds = [m["type"] for m in seen]
    assert kinds == ["event.start", "zone", "zone", "alert", "event.end"]
    end = seen[-1]
    assert end["zones"] == ["lot"] and end["crossings"][0]["direction"] == "A->B"
    assert end["end_ts"] == t0 + 5 and end["max_confidence"] == 0.9 and end["has_snapshot"]
    alert = seen[3]
    assert alert["rule"] == "crossing" and alert["priority"] == "high"
    assert alert["event_id"] == end["id"] and alert["ts"] == t0 + 2
    from sqlalchemy import select

    from citywatch.store.models import Event, ZoneCount

    with svc.db.session() as s:
        (event,) = s.scalars(select(Event))
        counts = {(c.name, c.kind): c.count for c in s.scalars(select(ZoneCount))}
    assert (svc.snapshots / event.snapshot).read_bytes()[:2] == b"\xff\xd8"
    assert counts == {("lot", "enter"): 1, ("street", "A->B"): 1}
    assert svc.expire({}, 3600, t0 + 10) == 0
    assert svc.expire({"cam1": 1}, 3600, t0 + 10) == 1
    assert not (svc.snapshots / event.snapshot).exists()


def test_parked_object_revived_continues_its_event(service: Any) -> None:
    svc, _, seen = service
    svc.handle(TrackStarted("cam1", 3, "car", 100.0, (0, 0, 0.1, 0.1), 0.9))
    svc.handle(TrackEnded("cam1", 3, "car", 100.0, 200.0, 0.9, True))
    svc.handle(TrackStarted("cam1", 3, "car", 300.0, (0, 0, 0.1, 0.1), 0.9, revived=True))
    svc.handle(TrackEnded("cam1", 3, "car", 300.0, 400.0, 0.9, True))
    starts = [m for m in seen if m["type"] == "event.start"]
    ends = [m for m in seen if m["type"] == "event.end"]
    assert len(starts) == 1 and len(ends) == 2 and ends[0]["id"] == ends[1]["id"]
    assert ends[1]["start_ts"] == 100.0 and ends[1]["end_ts"] == 400.0


def test_mqtt_publisher_reaches_a_real_broker() -> None:
    if reason := mosquitto_available():
        pytest.fail(reason)
    with Mosquitto() as broker:
        got: list[tuple[str, dict[str, Any]]] = []
        sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("citywatch/#", qos=1)
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        pub = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker.port))
        pub.start()
        try:
            time.sleep(0.5)
            pub.publish({"type": "alert", "camera_id": "gate", "rule": "r", "id": 1})
            wait_for(lambda: got, 10, "the alert on the subscriber")
        finally:
            pub.stop()
            sub.loop_stop()
        assert got == [("citywatch/alert/gate", {"type": "alert", "camera_id": "gate",
                                                  "rule": "r", "id": 1})]  # fmt: skip


class Receiver:
    """A real HTTP endpoint that fails the first `fail` requests, or hangs."""

    def __init__(self, fail: int = 0, hang: bool = False) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                if hang:
                    time.sleep(3)
                code = 500 if len(receiver.requests) <= fail else 204
                self.send_response(code)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhook_is_signed_and_retried_with_backoff() -> None:
    rx = Receiver(fail=2)
    secret = "s3cret-s3cret-s3cret"
    hook = WebhookConfig(url=rx.url, secret=secret, max_attempts=4)
    wd = WebhookDispatcher([hook], backoff_s=0.2)
    wd.start()
    try:
        wd.publish({"type": "alert", "camera_id": "c", "id": 5})
        wd.publish({"type": "event.start", "camera_id": "c", "id": 6})  # not subscribed
        wait_for(lambda: wd.stats.delivered == 1, 10, "delivery after two failures")
    finally:
        wd.stop()
        rx.close()
    assert len(rx.requests) == 3 and wd.stats.attempts == 3
    headers, body = rx.requests[-1]
    assert json.loads(body)["id"] == 5
    assert headers["X-CityWatch-Attempt"] == "3"
    ts = headers["X-CityWatch-Timestamp"]
    assert headers["X-CityWatch-Signature"] == sign(secret, ts, body)


def test_hanging_webhook_never_blocks_the_publisher_and_gives_up() -> None:
    rx = Receiver(hang=True)
    hook = WebhookConfig(url=rx.url, secret="x" * 16, timeout_s=0.5, max_attempts=2)
    wd = WebhookDispatcher([hook], max_queue=5, backoff_s=0.1)
    wd.start()
    try:
        t = time.perf_counter()
        for i in range(50):
            wd.publish({"type": "alert", "camera_id": "c", "id": i})
        assert time.perf_counter() - t < 0.1  # publishing is a queue put, never a request
        assert wd.stats.dropped >= 40  # bounded queue: the rest is dropped and counted
        wait_for(lambda: wd.stats.failed >= 1, 10, "giving up on the hanging endpoint")
    finally:
        wd.stop()
        rx.close()
