"""The HTTP API over a running CityWatch: access control, problems, purposes, audit."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citywatch.runtime import CityWatch
from tests.conftest import PASSWORD, add_user, camera, login, wait_for

SECRET = "Pa55-word-never-shown"


@pytest.fixture
def running(app_client, media: dict[str, Path]) -> tuple[CityWatch, TestClient]:  # type: ignore[no-untyped-def]
    """Two cameras played from real H.264 files (one with credentials), and five users."""
    url = f"file://{media['a_mp4']}"
    cw, client = app_client([camera("cam1", url), camera("cam2", url)])
    cw.cameras.upsert(
        camera("cam3", "rtsp://127.0.0.1:9/never", username="op", password=SECRET, enabled=False)
    )
    for name, role in [
        ("admin", "admin"),
        ("operator", "operator"),
        ("investigator", "investigator"),
        ("auditor", "auditor"),
        ("viewer", "viewer"),
    ]:
        add_user(cw, name, role)
    add_user(cw, "limited", "investigator", ["cam1"])
    return cw, client


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "cam1" if m.group(1) == "camera_id" else "1", path)


def test_every_endpoint_refuses_requests_without_a_session(running) -> None:  # type: ignore[no-untyped-def]
    cw, client = running
    schema = client.get("/api/v1/openapi.json").json()
    checked = 0
    for path, ops in schema["paths"].items():
        for method in ops:
            if path == "/api/v1/auth/login":
                continue
            r = client.request(method, _concrete(path))
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"
            checked += 1
    assert checked >= 20
    assert client.get("/healthz").status_code == 200
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/api/v1/cameras/cam1/live") as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 4401


def test_login_cookie_bearer_logout_and_rate_limit(running) -> None:  # type: ignore[no-untyped-def]
    cw, client = running
    r = client.post("/api/v1/auth/login", json={"username": "operator", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/v1/auth/me").json()["role"] == "operator"  # by cookie
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401
    headers = login(client, "viewer")
    assert client.get("/api/v1/auth/me", headers=headers).json()["username"] == "viewer"
    for _ in range(5):
        bad = client.post("/api/v1/auth/login", json={"username": "viewer", "password": "nope"})
        assert bad.status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    outcomes = [e.outcome for e in cw.audit.page(action="auth.login", limit=100)[0]]
    assert outcomes.count("denied") == 5 and "rate_limited" in outcomes


def test_roles_and_camera_limits(running) -> None:  # type: ignore[no-untyped-def]
    cw, client = running
    wait_for(lambda: cw.index.range("cam1", 0, 2e9) and cw.index.range("cam2", 0, 2e9), 20,
             "first segments")  # fmt: skip
    now = time.time()
    q = f"start={now - 60}&end={now + 5}&purpose=incident+review"
    viewer = login(client, "viewer")
    r = client.get(f"/api/v1/cameras/cam1/playback.mp4?{q}", headers=viewer)
    assert r.status_code == 403 and "playback" in r.json()["detail"]
    assert client.get("/api/v1/users", headers=viewer).status_code == 403
    assert client.get("/api/v1/audit", headers=viewer).status_code == 403
    assert client.get("/api/v1/cameras/cam1/snapshot.jpg", headers=viewer).status_code in (200, 503)

    limited = login(client, "limited")
    ids = [c["id"] for c in client.get("/api/v1/cameras", headers=limited).json()["items"]]
    assert ids == ["cam1"]
    for path in ("", "/health", "/snapshot.jpg", f"/playback.mp4?{q}", f"/segments?{q}"):
        assert client.get(f"/api/v1/cameras/cam2{path}", headers=limited).status_code == 404
    seg2 = cw.index.range("cam2", 0, 2e9)[0].id
    assert client.get(f"/api/v1/segments/{seg2}/init.mp4", headers=limited).status_code == 404
    assert client.get(f"/api/v1/cameras/cam1/playback.mp4?{q}", headers=limited).status_code == 200
    assert client.get(f"/api/v1/cameras/cam1/playback.mp4?{q}&download=true",
                      headers=login(client, "operator")).status_code == 403  # fmt: skip


def test_playback_needs_a_purpose_and_is_audited(running) -> None:  # type: ignore[no-untyped-def]
    cw, client = running
    segs = wait_for(lambda: cw.index.range("cam1", 0, 2e9), 20, "a segment")
    inv = login(client, "investigator")
    start, end = segs[0].start_ts + 0.5, segs[0].end_ts
    r = client.get(f"/api/v1/cameras/cam1/playback.mp4?start={start}&end={end}", headers=inv)
    assert r.status_code == 422 and "purpose" in r.json()["detail"]
    url = (f"/api/v1/cameras/cam1/playback.mp4?start={start}&end={end}"
           "&purpose=Theft+report+at+gate&case_ref=2026-KT-17&download=true")  # fmt: skip
    r = client.get(url, headers=inv)
    assert r.status_code == 200 and r.content[4:8] == b"ftyp"
    assert "attachment" in r.headers["content-disposition"]
    entry = cw.audit.page(action="recording.download")[0][0]
    assert entry.actor == "investigator" and entry.target == "cam1"
    assert entry.purpose == "Theft report at gate [case 2026-KT-17]"
    assert entry.client == "127.0.0.1"
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    hls = client.get(
        f"/api/v1/cameras/cam1/playback.m3u8?start={iso}&end={end}&purpose=review", headers=inv
    )
    assert hls.status_code == 200 and hls.text.startswith("#EXTM3U")
    seg_url = re.search(r"^(http\S+/media\.m4s)$", hls.text, re.M)
    assert seg_url is not None
    media = client.get(seg_url.group(1), headers=inv)
    assert media.status_code == 200 and media.content[4:8] == b"moof"
    r = client.get(f"/api/v1/cameras/cam1/playback.mp4?start={end}&end={start}&purpose=x1x",
                   headers=inv)  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"] == "end must be after start"
    r = client.get("/api/v1/cameras/cam1/playback.mp4?start=yesterday&end=1&purpose=abc",
                   headers=inv)  # fmt: skip
    assert r.status_code == 422 and "start" in r.json()["detail"]


def test_camera_admin_validation_and_secrets(running, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    cw, client = running
    admin = login(client, "admin")
    good = {
        "id": "gate-4",
        "name": "Gate 4",
        "main_stream": {"url": "rtsp://127.0.0.1:9/x", "username": "u", "password": SECRET},
        "purpose": "Access control at gate 4",
        "legal_basis": "Decision 4/2026",
        "enabled": False,
    }
    r = client.post("/api/v1/cameras", json=good, headers=admin)
    assert r.status_code == 201
    assert client.post("/api/v1/cameras", json=good, headers=admin).status_code == 409
    bad = dict(good, id="Gate 4!")
    r = client.post("/api/v1/cameras", json=bad, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = client.post("/api/v1/cameras", json=dict(good, id="g5", purpose=""), headers=admin)
    assert r.status_code == 422 and "purpose" in r.json()["detail"]
    r = client.post("/api/v1/cameras", json=dict(good, id="g6", colour="red"), headers=admin)
    assert r.status_code == 422
    r = client.post("/api/v1/cameras", content=b"{not json", headers=admin)
    assert r.status_code == 422
    # Update without the password keeps it; the API never returns it.
    upd = dict(good, name="Gate four", main_stream={"url": "rtsp://127.0.0.1:9/x", "username": "u"})
    r = client.put("/api/v1/cameras/gate-4", json=upd, headers=admin)
    assert r.status_code == 200 and r.json()["main_stream"]["has_password"] is True
    assert cw.cameras.get("gate-4").main_password == SECRET  # type: ignore[union-attr]
    everything = client.get("/api/v1/cameras", headers=admin).text
    everything += client.get("/api/v1/audit?limit=1000", headers=login(client, "auditor")).text
    everything += caplog.text
    assert SECRET not in everything
    assert client.delete("/api/v1/cameras/gate-4", headers=admin).status_code == 204
    assert client.get("/api/v1/cameras/gate-4", headers=admin).status_code == 404
    ops = login(client, "operator")
    assert client.post("/api/v1/cameras", json=dict(good, id="g7"), headers=ops).status_code == 403


def test_users_api_and_audit_reading_is_logged(running) -> None:  # type: ignore[no-untyped-def]
    cw, client = running
    admin = login(client, "admin")
    r = client.post("/api/v1/users", json={"username": "newbie", "password": "x" * 12,
                                           "role": "viewer"}, headers=admin)  # fmt: skip
    assert r.status_code == 201
    r = client.post("/api/v1/users", json={"username": "weak", "password": "short",
                                           "role": "viewer"}, headers=admin)  # fmt: skip
    assert r.status_code == 422
    change = {"role": "investigator", "camera_ids": ["cam2"]}
    r = client.patch("/api/v1/users/newbie", json=change, headers=admin)
    assert r.json()["role"] == "investigator" and r.json()["camera_ids"] == ["cam2"]
    assert client.delete("/api/v1/users/admin", headers=admin).status_code == 409
    auditor = login(client, "auditor")
    page = client.get("/api/v1/audit?limit=5", headers=auditor).json()
    assert page["limit"] == 5 and len(page["items"]) == 5 and page["total"] > 5
    assert page["items"][0]["action"] == "audit.read"  # newest first: this very read
    actions = {e.action for e in cw.audit.page(limit=1000)[0]}
    assert {"user.add", "user.update", "auth.login", "audit.read"} <= actions
    before = cw.audit.count()
    v = client.post("/api/v1/audit/verify", headers=auditor).json()
    assert v["ok"] is True and v["entries"] == before


def test_live_websocket_streams_fmp4(running) -> None:  # type: ignore[no-untyped-def]
    cw, client = running
    wait_for(lambda: cw.cameras.health("cam1").state == "online", 10, "cam1 online")
    ops = login(client, "operator")
    with client.websocket_connect("/api/v1/cameras/cam1/live", headers=ops) as ws:
        hello = ws.receive_json()
        assert hello["camera"] == "cam1" and hello["codec"].startswith("avc1.")
        init = ws.receive_bytes()
        assert init[4:8] == b"ftyp"
        frag = ws.receive_bytes()
        assert frag[4:8] == b"moof"
    entry = cw.audit.page(action="live.start")[0][0]
    assert entry.actor == "operator" and entry.details["transport"] == "websocket-fmp4"
    r = client.get("/api/v1/cameras/cam1/snapshot.jpg?width=320", headers=ops)
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"


def test_openapi_and_pagination(running) -> None:  # type: ignore[no-untyped-def]
    cw, client = running
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "CityWatch" and "/api/v1/cameras" in spec["paths"]
    admin = login(client, "admin")
    page = client.get("/api/v1/cameras?offset=1&limit=1", headers=admin).json()
    assert page["total"] == 3 and [c["id"] for c in page["items"]] == ["cam2"]
    r = client.get("/api/v1/cameras?limit=0", headers=admin)
    assert r.status_code == 422
