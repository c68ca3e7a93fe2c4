"""The command centre's analytics in a real browser: Chromium (Playwright) against the real
server, with a camera streaming a real clip of people over RTSP and the real detector.

The clip (one-by-one-person-detection.mp4, first 40 s, looped by the RTSP server): a person
walks in from the bottom at about 6 s, stands at the table, and leaves to the right at about
19 s; a second one walks in at about 23 s. The camera has a zone round the table, a line on
the right the first person crosses on the way out, and two alert rules. A second camera (a
test pattern) has analytics off. The tests run in file order against one server: live
overlays and alerts first, while people arrive; then events, counts and, last, the editor,
which changes the zones.

Set CITYWATCH_SCREENSHOTS=DIR to keep the screenshots.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Position
from sqlalchemy import select

from citywatch.analytics.models import load_spec
from citywatch.config import (
    AlertRule,
    AnalyticsConfig,
    DetectorConfig,
    LineConfig,
    RecordingConfig,
    RetentionConfig,
    Settings,
    ZoneConfig,
)
from citywatch.runtime import CityWatch
from citywatch.store.models import Event
from tests.conftest import FAST, MEDIA_CACHE, add_user, camera, shared_video, wait_for
from tests.e2e.conftest import CHROMIUM, Site, open_as, poll, serve
from tests.support.rtsp import RtspServer, to_ts

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (scripts/setup.sh --test installs it)"
)

TABLE = ZoneConfig(name="table", polygon=[(0.3, 0.4), (0.8, 0.4), (0.8, 1.0), (0.3, 1.0)])
EXIT = LineConfig(name="exit", a=(0.75, 0.45), b=(0.75, 1.0))  # A: left, B: right
RULES = [
    AlertRule(name="person at the table", on="enter", zone="table", classes=["person"],
              priority="high"),
    AlertRule(name="person seen", on="object", classes=["person"], priority="low"),
]  # fmt: skip
# Failed requests the page makes on purpose: "who am I?" before login, a refused zone.
EXPECTED_HTTP_ERRORS = {("/api/v1/auth/me", 401), ("/api/v1/cameras/people/zones", 422)}


def _model_or_skip() -> None:
    try:
        spec = load_spec("nanodet")
    except Exception as exc:  # built by scripts/build_models.sh
        pytest.skip(f"detector model not built ({exc}); run scripts/build_models.sh")
    if not Path(spec.path).is_file():
        pytest.skip(f"detector model {spec.path} missing; run scripts/build_models.sh")


@pytest.fixture(scope="module")
def site(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """CityWatch analysing the people clip (and recording a plain test camera), on uvicorn."""
    _model_or_skip()
    people = to_ts(shared_video("one-by-one-person-detection.mp4"),
                   MEDIA_CACHE / "people-40s.ts", gop=10, seconds=40)  # fmt: skip
    analytics = AnalyticsConfig(enabled=True, fps=5, zones=[TABLE], lines=[EXIT])
    with RtspServer({"people": people, "plain": media["a_ts"]}) as rtsp:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("e2e-analytics") / "data",
            cameras=[
                camera("people", rtsp.url("people"), name="Hall table", analytics=analytics),
                camera("plain", rtsp.url("plain"), name="Test pattern"),
            ],
            recording=RecordingConfig(
                segment_seconds=2.0,
                retention=RetentionConfig(free_reserve_gb=0, sweep_interval_s=3600),
            ),
            detector=DetectorConfig(workers=1),
            alerts=RULES,
        )
        cw = CityWatch(settings, FAST)
        for name, role in [
            ("ada", "admin"),
            ("olga", "operator"),
            ("ivan", "investigator"),
            ("vera", "viewer"),
        ]:
            add_user(cw, name, role)
        with serve(cw) as site:
            yield site


def get_json(page: Page, path: str) -> Any:
    """An API call with the page's login cookie."""
    r = page.request.get(path)
    assert r.ok, f"{path}: {r.status} {r.text()}"
    return r.json()


def overlay(cam: str) -> str:
    return f"#tile-{cam} canvas.overlay"


PAINTED_JS = """sel => { const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""


# tests -------------------------------------------------------------------------------------
def test_live_overlay_and_alerts(page: Page, site: Site, shots: Path) -> None:
    """Boxes of tracked people over the live video, zones and lines drawn; an alert arrives
    in the panel within a second of being raised and is acknowledged."""
    open_as(page, "olga")
    assert page.is_visible("#alerts-panel")
    assert page.is_hidden("#tab-zones"), "operators do not edit zones"
    # One tracks WebSocket per visible tile, only where analytics is on.
    page.wait_for_selector(f"{overlay('people')}[data-ws=open]", state="attached")
    assert page.get_attribute(overlay("plain"), "data-ws") == "off"

    # The overlay draws boxes as people are tracked (the page says how many it drew).
    page.wait_for_function(
        f"Number(document.querySelector('{overlay('people')}').dataset.boxes) > 0",
        timeout=45_000,
    )
    assert page.eval_on_selector(overlay("people"), "c => c.width") > 100
    assert page.evaluate(PAINTED_JS, overlay("people")) > 500, "nothing painted"
    assert page.evaluate(PAINTED_JS, overlay("plain")) == 0
    page.screenshot(path=str(shots / "live-overlay.png"))

    # An alert raised while the page is open arrives over the feed.
    li = poll(
        page,
        """() => { const li = document.querySelector('#alerts-list li[data-source=feed]');
            return li && {id: Number(li.dataset.id), received: Number(li.dataset.received),
                          raisedAt: Number(li.dataset.raisedAt), text: li.textContent,
                          cls: li.className}; }""",
        45,
        "an alert to arrive over the feed",
    )
    assert isinstance(li, dict)
    assert li["received"] - li["raisedAt"] * 1000 < 1000, li
    assert "Hall table (people)" in li["text"] and "person" in li["text"], li
    assert "prio-high" in li["cls"] or "prio-low" in li["cls"], li
    count = int(page.text_content("#alerts-count") or "0")
    assert count >= 1
    page.screenshot(path=str(shots / "live-alert.png"))

    # Acknowledge it: the panel marks it, and the API has it acknowledged by olga.
    item = f"#alerts-list li[data-id='{li['id']}']"
    page.click(f"{item} button.ack")
    page.wait_for_selector(f"{item}.acked")
    alerts = get_json(page, "/api/v1/alerts?limit=500")["items"]
    mine = next(a for a in alerts if a["id"] == li["id"])
    assert mine["acknowledged_by"] == "olga" and mine["acknowledged_at"] is not None
    unacked = get_json(page, "/api/v1/alerts?unacknowledged=true&limit=500")["items"]
    assert li["id"] not in {a["id"] for a in unacked}

    # Hiding the Live tab closes the tracks WebSocket; showing it opens it again.
    page.click('nav button[data-tab="events"]')
    page.wait_for_selector(f"{overlay('people')}[data-ws=off]", state="attached")
    page.click('nav button[data-tab="live"]')
    page.wait_for_selector(f"{overlay('people')}[data-ws=open]", state="attached")


def ended_event_with_picture(cw: CityWatch) -> Event | None:
    with cw.db.session() as s:
        return s.scalar(
            select(Event)
            .where(
                Event.camera_id == "people",
                Event.end_ts.is_not(None),
                Event.frame.is_not(None),
            )
            .limit(1)
        )


def test_events_tab_lists_and_opens_detail_then_plays(page: Page, site: Site, shots: Path) -> None:
    wait_for(lambda: ended_event_with_picture(site.cw), 60, "a finished event with a picture")
    open_as(page, "ivan")
    page.click('nav button[data-tab="events"]')
    page.wait_for_selector("#ev-grid .ev-card")
    # Thumbnails load (the first few at least: the page shows the newest first).
    poll(
        page,
        "() => [...document.querySelectorAll('#ev-grid img.thumb')].some(i => i.naturalWidth > 0)",
        15,
        "an event thumbnail to load",
    )
    summary = page.text_content("#ev-summary") or ""
    assert summary.startswith("Events 1–"), summary
    page.screenshot(path=str(shots / "events-all.png"))

    # Filters: no cars here; people at the table are.
    page.select_option("#ev-class", "car")
    page.click("#events-form button[type=submit]")
    page.wait_for_function(
        "document.querySelector('#ev-summary').textContent === 'No events match.'"
    )
    assert page.locator("#ev-grid .ev-card").count() == 0
    page.select_option("#ev-class", "person")
    page.select_option("#ev-camera", "people")
    page.fill("#ev-zone", "table")
    page.click("#events-form button[type=submit]")
    page.wait_for_selector("#ev-grid .ev-card[data-ended='1']")
    cards = page.locator("#ev-grid .ev-card")
    assert all("table" in (cards.nth(i).text_content() or "") for i in range(cards.count()))
    poll(
        page,
        "() => [...document.querySelectorAll('#ev-grid img.thumb')].every(i => i.naturalWidth > 0)",
        15,
        "every thumbnail to load",
    )
    page.screenshot(path=str(shots / "events.png"))

    # Detail: the best picture, the whole frame with the path, the facts.
    page.click("#ev-grid .ev-card[data-ended='1']")
    page.wait_for_selector("#event-dialog[open]")
    poll(
        page,
        """() => document.querySelector('#ed-snap').naturalWidth > 0
              && document.querySelector('#ed-full').naturalWidth > 0
              && Number(document.querySelector('#ed-path').dataset.points) > 1""",
        15,
        "the detail's pictures and path",
    )
    full = page.eval_on_selector("#ed-full", "i => i.naturalWidth")
    crop = page.eval_on_selector("#ed-snap", "i => i.naturalWidth")
    assert full > crop, (full, crop)
    facts = page.text_content("#ed-meta") or ""
    assert "Hall table (people)" in facts and "table" in facts and "UTC" in facts, facts
    assert (page.text_content("#ed-title") or "").startswith("person #")
    page.screenshot(path=str(shots / "event-detail.png"))

    # Play: the Playback tab, filled in for the event; it asks for the purpose first.
    event_id = int(page.get_attribute("#event-dialog", "data-id") or "0")
    event = get_json(page, f"/api/v1/events/{event_id}")
    page.click("#ed-play")
    page.wait_for_selector("#playback-form", state="visible")
    assert page.is_hidden("#event-dialog")
    assert page.input_value("#pb-camera") == "people"
    start = page.input_value("#playback-form [name=start]")
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(event["start_ts"] - 2)))
    assert start == expected
    assert "State the purpose" in (page.text_content("#pb-hint") or "")
    assert page.evaluate("document.activeElement.name") == "purpose"
    page.fill("#playback-form [name=purpose]", "E2E: check the event at the hall table")
    page.click("#playback-form button[type=submit]")
    page.wait_for_function(
        """() => { const v = document.querySelector('#pb-video');
            return v.src.startsWith('blob:') && v.readyState >= 2 && v.videoWidth === 768; }"""
    )
    page.screenshot(path=str(shots / "playback.png"))
    assert page.text_content("#pb-error") == ""
    assert page.text_content("#pb-hint") == ""
    rows, _ = site.cw.audit.page(action="recording.playback", actor="ivan")
    assert any(r.target == "people" for r in rows)


def test_viewer_sees_events_but_cannot_play(page: Page, shots: Path) -> None:
    """A viewer (no playback permission) gets no Play button; on a narrow screen the
    alerts go under the tiles and the detail stacks."""
    page.set_viewport_size({"width": 800, "height": 1000})
    open_as(page, "vera")
    tiles = page.locator("#tiles").bounding_box()
    panel = page.locator("#alerts-panel").bounding_box()
    assert tiles and panel and panel["y"] >= tiles["y"] + tiles["height"] - 1
    page.click('nav button[data-tab="events"]')
    page.click("#ev-grid .ev-card")
    page.wait_for_selector("#event-dialog[open]")
    assert page.is_hidden("#ed-play")
    poll(page, "() => document.querySelector('#ed-full').naturalWidth > 0", 15, "the frame")
    page.screenshot(path=str(shots / "event-detail-narrow.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#event-dialog", state="hidden")


def test_counts_per_zone_and_line(page: Page, site: Site, shots: Path) -> None:
    open_as(page, "olga")
    page.click('nav button[data-tab="counts"]')
    card = "#counts-list section[data-camera=people]"
    page.wait_for_selector(card)
    kinds = page.eval_on_selector_all(
        f"{card} tbody tr", "rows => rows.map(r => r.dataset.name + ':' + r.dataset.kind)"
    )
    assert {"table:enter", "exit:A->B", "exit:B->A"} <= set(kinds), kinds
    entries = int(page.text_content(f"{card} tr[data-kind=enter] .total") or "0")
    assert entries >= 1
    assert page.locator(f"{card} tr[data-kind=enter] svg rect:not(.zero)").count() >= 1
    api = get_json(page, "/api/v1/cameras/people/counts?start=0&end=4102444800")
    api_total = next(s["total"] for s in api["series"] if s["kind"] == "enter")
    assert entries <= api_total  # counts only grow between the two reads
    plain = page.text_content("#counts-list section[data-camera=plain]") or ""
    assert "Analytics is off" in plain
    page.screenshot(path=str(shots / "counts.png"))


def test_zone_editor_saves_and_shows_api_errors(page: Page, shots: Path) -> None:
    open_as(page, "ada")
    page.click("#tab-zones")
    page.select_option("#ze-camera", "people")
    poll(page, "() => document.querySelector('#ze-bg').naturalWidth > 0", 15, "the picture")
    page.wait_for_function("document.querySelectorAll('#ze-list li').length === 2")
    canvas = page.locator("#ze-canvas")
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 400

    def at(x: float, y: float) -> Position:
        return {"x": x * box["width"], "y": y * box["height"]}

    # A zone: four corners, then "Close zone".
    page.fill("#ze-name", "door")
    corners = [(0.05, 0.2), (0.25, 0.2), (0.25, 0.6), (0.05, 0.6)]
    for x, y in corners:
        canvas.click(position=at(x, y))
    assert page.get_attribute("#ze-canvas", "data-draft") == "4"
    page.click("#ze-finish")
    # A line: two clicks.
    page.check("input[name=ze-mode][value=line]")
    page.fill("#ze-name", "walkway")
    canvas.click(position=at(0.1, 0.9))
    canvas.click(position=at(0.5, 0.9))
    page.wait_for_function("document.querySelectorAll('#ze-list li').length === 4")
    assert page.text_content("#ze-msg") == "Unsaved changes."
    page.screenshot(path=str(shots / "zones-drawn.png"))
    page.click("#ze-save")
    page.wait_for_function(
        "document.querySelector('#ze-msg').textContent === 'Saved: 2 zones, 2 lines.'"
    )
    cfg = get_json(page, "/api/v1/cameras/people/analytics")
    zones = {z["name"]: z for z in cfg["zones"]}
    lines = {ln["name"]: ln for ln in cfg["lines"]}
    assert set(zones) == {"table", "door"} and set(lines) == {"exit", "walkway"}
    assert len(zones["door"]["polygon"]) == 4
    for (x, y), (gx, gy) in zip(corners, zones["door"]["polygon"], strict=True):
        assert abs(x - gx) < 0.01 and abs(y - gy) < 0.01, zones["door"]["polygon"]
    assert lines["walkway"]["a"] == pytest.approx([0.1, 0.9], abs=0.01)
    assert lines["walkway"]["b"] == pytest.approx([0.5, 0.9], abs=0.01)
    assert zones["table"]["polygon"] == [list(p) for p in TABLE.polygon], "kept as it was"

    # A name the API refuses: its message is shown and the zone marked; nothing changes.
    page.check("input[name=ze-mode][value=zone]")
    page.fill("#ze-name", "bad/name!")
    canvas.click(position=at(0.6, 0.1))
    canvas.click(position=at(0.9, 0.1))
    canvas.dblclick(position=at(0.9, 0.3))  # the double-click adds the corner and closes
    page.wait_for_function("document.querySelectorAll('#ze-list li').length === 5")
    page.click("#ze-save")
    page.wait_for_function("document.querySelector('#ze-error').textContent !== ''")
    error = page.text_content("#ze-error") or ""
    assert error.startswith("Not saved: zone “bad/name!”, name:"), error
    assert "pattern" in error, error
    assert page.locator("#ze-list li[aria-invalid=true]").count() == 1
    bad = page.locator("#ze-list li[aria-invalid=true] input").input_value()
    assert bad == "bad/name!"
    page.screenshot(path=str(shots / "zones-error.png"))
    assert get_json(page, "/api/v1/cameras/people/analytics") == cfg

    # Without it, but with two shapes of one name: the API's reason, in words.
    page.click("#ze-list button[aria-label='Delete zone bad/name!']")
    page.fill("#ze-list li[data-kind=line][data-index='1'] input", "door")
    page.click("#ze-save")
    page.wait_for_function("document.querySelector('#ze-error').textContent.includes('unique')")
    assert page.text_content("#ze-error") == (
        "Not saved: zone and line names must be unique per camera"
    )
    assert get_json(page, "/api/v1/cameras/people/analytics") == cfg
    # Revert: back to what is saved.
    page.click("#ze-revert")
    page.wait_for_function(
        "document.querySelector('#ze-list li[data-kind=line][data-index=\"1\"] input')"
        ".value === 'walkway'"
    )
    assert page.text_content("#ze-error") == ""

    # The page's camera list (which the live overlays draw from) has the saved zones.
    page.click('nav button[data-tab="live"]')
    shown = page.evaluate("cameras.find(c => c.id === 'people').analytics")
    assert {z["name"] for z in shown["zones"]} == {"table", "door"}
