"""The investigator's plate screens in a real browser: Chromium (Playwright) against the real
server, with four cameras recording real RTSP streams.

Plate reads are seeded through the event service's own entry point (the one the analysis
workers feed: the read and its crop are stored and checked against the hotlists), with
JPEG crops whose widths tell them apart. One vehicle, BG 123-AB, passes north, centre,
north again, the depot (a camera with no map position) and south; the last sighting is a
few seconds old, so it has a recording to play.

The tests run in file order against one server: search, trail, hotlists (ending with a live
hotlist hit in the alerts panel), then what an operator sees.
Set CITYWATCH_SCREENSHOTS=DIR to keep the screenshots.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page
from sqlalchemy import func, select

from citywatch.analytics.messages import PlateResult
from citywatch.analytics.plates.formats import classify
from citywatch.config import Location, RecordingConfig, RetentionConfig, Settings
from citywatch.runtime import CityWatch
from citywatch.store.models import Segment
from tests.conftest import FAST, add_user, camera, wait_for
from tests.e2e.conftest import CHROMIUM, Site, open_as, poll, serve
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (scripts/setup.sh --test installs it)"
)

# Failed requests the page makes on purpose: "who am I?" before login, a search without a
# purpose, a duplicate hotlist name, a malformed entry pattern.
EXPECTED_HTTP_ERRORS = {
    ("/api/v1/auth/me", 401),
    ("&limit=50&offset=0", 422),
    ("/api/v1/hotlists", 422),
    ("/entries", 422),
}
PURPOSE = "Theft report 17"
CASE = "K-17"
H = 3600.0

# id, name, (lat, lon) or None, address: Belgrade, north to south
PLACES: list[tuple[str, str, tuple[float, float] | None, str]] = [
    ("north", "North gate", (44.8190, 20.4560), "Kalemegdan"),
    ("centre", "Republic square", (44.8160, 20.4600), "Trg Republike"),
    ("south", "Slavija", (44.8025, 20.4665), "Slavija"),
    ("depot", "Depot", None, ""),
]


@dataclass(frozen=True)
class Seed:
    camera: str
    age_s: float  # before the newest recorded second
    text: str
    confidence: float
    direction: str | None
    width: int  # of the crop: tells the crops apart on the page


SEEDS = [
    Seed("north", 2 * H, "BG 123-AB", 0.91, "A->B", 170),
    Seed("centre", H, "BG 123-AB", 0.88, None, 174),
    Seed("north", H / 2, "BG 123-AB", 0.93, "B->A", 178),
    Seed("depot", H / 4, "BG 123-AB", 0.80, None, 182),
    Seed("centre", 600, "BG 128-AB", 0.86, None, 186),  # one real substitution away
    Seed("centre", 300, "NS 456-CD", 0.90, None, 190),
    Seed("south", 2, "BG 123-AB", 0.95, "A->B", 194),  # has a recording
]


def plate_jpeg(text: str, width: int) -> bytes:
    img = np.full((44, width, 3), 255, np.uint8)
    cv2.putText(img, text, (6, 32), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def plate_read(cam: str, ts: float, text: str, conf: float, width: int, **kw: Any) -> PlateResult:
    c = classify(text)
    return PlateResult(
        camera_id=cam,
        track_id=int(ts * 10) % 100_000,
        ts=ts,
        text=c.text,
        normalised=c.normalised,
        format=c.format,
        country=c.country,
        confidence=conf,
        reads=5,
        agreeing=4,
        crop_jpeg=plate_jpeg(text, width),
        **kw,
    )


def recorded_span(cw: CityWatch, cam: str) -> tuple[float, float] | None:
    with cw.db.session() as s:
        row = s.execute(
            select(func.min(Segment.start_ts), func.max(Segment.end_ts)).where(
                Segment.camera_id == cam
            )
        ).one()
    return (row[0], row[1]) if row[0] is not None else None


@pytest.fixture(scope="module")
def site(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    clips = {"north": media["a_ts"], "centre": media["b_ts"], "south": media["a_ts"],
             "depot": media["b_ts"]}  # fmt: skip
    with RtspServer(clips) as rtsp:
        cams = [
            camera(
                cid,
                rtsp.url(cid),
                name=name,
                location=Location(lat=ll[0], lon=ll[1], address=addr) if ll else Location(),
            )
            for cid, name, ll, addr in PLACES
        ]
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("e2e-plates") / "data",
            cameras=cams,
            recording=RecordingConfig(
                segment_seconds=2.0,
                retention=RetentionConfig(free_reserve_gb=0, sweep_interval_s=3600),
            ),
        )
        cw = CityWatch(settings, FAST)
        for name, role in [("ivan", "investigator"), ("olga", "operator")]:
            add_user(cw, name, role)
        with serve(cw) as site:

            def enough() -> tuple[float, float] | None:
                got = recorded_span(cw, "south")
                return got if got and got[1] - got[0] >= 10 else None

            _, newest = wait_for(enough, 60, "10 s of recording from the south camera")
            for s in SEEDS:
                cw.events.handle(
                    plate_read(
                        s.camera,
                        newest - s.age_s,
                        s.text,
                        s.confidence,
                        s.width,
                        direction=s.direction,
                    )  # fmt: skip
                )
            yield site


ROWS_JS = """() => [...document.querySelectorAll('#pl-results tbody tr')].map(r => ({
  camera: r.dataset.camera, ts: Number(r.dataset.ts), plate: r.dataset.plate,
  match: r.querySelector('.match').textContent, conf: r.querySelector('.conf').textContent,
  text: r.querySelector('.plate-text').textContent,
  crop: r.querySelector('img.plate-crop')?.naturalWidth ?? -1}))"""


def rows_loaded(page: Page, n: int) -> list[dict[str, Any]]:
    """The result rows once there are `n` and every crop has loaded."""
    got = poll(
        page,
        f"() => {{ const r = ({ROWS_JS})();"
        f" return r.length === {n} && r.every(x => x.crop > 0) && r; }}",
        15,
        f"{n} result rows with their crops",
    )
    assert isinstance(got, list)
    return got


def search(page: Page, q: str, mode: str = "exact", **fields: str) -> None:
    page.fill("#pl-q", q)
    page.select_option("#pl-mode", mode)
    for name, value in fields.items():
        sel = f"#plates-form [name={name}]"
        if page.eval_on_selector(sel, "e => e.tagName") == "SELECT":
            page.select_option(sel, value)
        else:
            page.fill(sel, value)
    page.evaluate("document.querySelector('#pl-summary').textContent = ''")
    page.click("#plates-form button[type=submit]")
    page.wait_for_function(
        "document.querySelector('#pl-summary').textContent !== ''"
        " || document.querySelector('#pl-error').textContent !== ''"
    )


def audit_count(cw: CityWatch, action: str) -> int:
    return len(cw.audit.page(action=action, limit=1000)[0])


# tests -------------------------------------------------------------------------------------
def test_search_needs_a_purpose_then_ranks_reads_with_crops_and_plays(
    page: Page, site: Site, shots: Path
) -> None:
    open_as(page, "ivan")
    page.click("#tab-plates")
    page.wait_for_selector("#plates-form", state="visible")

    # No purpose: the API refuses, the page says why, nothing is listed or audited.
    before = audit_count(site.cw, "plate.search")
    search(page, "bg 123ab")
    error = page.text_content("#pl-error") or ""
    assert error.startswith("Search refused: ") and "purpose" in error, error
    assert page.is_hidden("#pl-results")
    assert page.text_content("#pl-summary") == ""
    assert audit_count(site.cw, "plate.search") == before
    page.screenshot(path=str(shots / "plates-no-purpose.png"))

    # With a purpose: the five sightings, newest first, each with its own crop.
    search(page, "bg 123ab", purpose=PURPOSE, case_ref=CASE)
    assert page.text_content("#pl-error") == ""
    rows = rows_loaded(page, 5)
    mine = sorted((s for s in SEEDS if s.text == "BG 123-AB"), key=lambda s: s.age_s)
    assert [r["camera"] for r in rows] == [s.camera for s in mine]
    assert [r["crop"] for r in rows] == [s.width for s in mine]
    assert [r["ts"] for r in rows] == sorted((r["ts"] for r in rows), reverse=True)
    assert {r["text"] for r in rows} == {"BG 123-AB"} and {r["match"] for r in rows} == {"exact"}
    assert rows[0]["conf"] == "95%"
    summary = page.text_content("#pl-summary") or ""
    assert summary.startswith("Reads 1–5 for “bg 123ab”, newest first"), summary
    first = page.locator("#pl-results tbody tr").first
    assert "Slavija (south)" in (first.text_content() or "")
    entry = site.cw.audit.page(action="plate.search", actor="ivan")[0][0]
    assert entry.purpose == f"{PURPOSE} [case {CASE}]" and entry.details["results"] == 5
    page.screenshot(path=str(shots / "plates-results.png"))

    # Filters: camera, direction; fuzzy finds the one-letter-off read last; partial.
    search(page, "BG123AB", camera="north")
    assert [r["camera"] for r in rows_loaded(page, 2)] == ["north", "north"]
    search(page, "BG123AB", camera="", direction="A->B")
    assert [r["camera"] for r in rows_loaded(page, 2)] == ["south", "north"]
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(rows[0]["ts"] - 20 * 60))
    search(page, "BG123AB", direction="", start=since)
    assert [r["camera"] for r in rows_loaded(page, 2)] == ["south", "depot"]
    search(page, "BG123AB", "fuzzy", start="", edits="1")
    fuzzy = rows_loaded(page, 6)
    assert [r["plate"] for r in fuzzy] == ["BG123AB"] * 5 + ["BG128AB"]
    assert fuzzy[-1]["match"] == "≈ 1 edit"
    assert "closest first" in (page.text_content("#pl-summary") or "")
    search(page, "*456*", "partial")
    assert [r["text"] for r in rows_loaded(page, 1)] == ["NS 456-CD"]

    # Play the newest sighting: the Playback tab at that moment on that camera, playing
    # under the search's purpose.
    search(page, "BG123AB")
    rows = rows_loaded(page, 5)
    page.click("#pl-results tbody tr:first-child button.play")
    page.wait_for_selector("#playback-form", state="visible")
    assert page.input_value("#pb-camera") == "south"
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(rows[0]["ts"] - 5)))
    assert page.input_value("#playback-form [name=start]") == expected
    assert page.input_value("#playback-form [name=purpose]") == PURPOSE
    assert page.input_value("#playback-form [name=case_ref]") == CASE
    page.wait_for_function(
        """() => { const v = document.querySelector('#pb-video');
            return v.src.startsWith('blob:') && v.readyState >= 2 && v.videoWidth === 640; }""",
        timeout=30_000,
    )
    assert page.text_content("#pb-error") == ""
    played = site.cw.audit.page(action="recording.playback", actor="ivan")[0]
    assert played and played[0].target == "south"


def test_trail_lists_sightings_in_time_order_on_the_camera_map(
    page: Page, site: Site, shots: Path
) -> None:
    open_as(page, "ivan")
    page.click("#tab-plates")
    search(page, "BG123AB", purpose=PURPOSE)
    rows_loaded(page, 5)
    page.click("#pl-results tbody tr:nth-child(3) button.trail-btn")
    page.wait_for_selector("#pl-trail", state="visible")
    items = poll(
        page,
        """() => { const li = [...document.querySelectorAll('#pl-trail-list li')];
            return li.length === 5 && li.every(x => x.querySelector('img').naturalWidth > 0)
              && li.map(x => ({n: Number(x.dataset.n), ts: Number(x.dataset.ts),
                               camera: x.dataset.camera, text: x.textContent,
                               crop: x.querySelector('img').naturalWidth})); }""",
        15,
        "the trail's five sightings with crops",
    )
    assert isinstance(items, list)
    oldest_first = sorted((s for s in SEEDS if s.text == "BG 123-AB"), key=lambda s: -s.age_s)
    assert [i["camera"] for i in items] == ["north", "centre", "north", "depot", "south"]
    assert [i["crop"] for i in items] == [s.width for s in oldest_first]
    assert [i["n"] for i in items] == [1, 2, 3, 4, 5]
    assert [i["ts"] for i in items] == sorted(i["ts"] for i in items)
    assert "camera has no map position" in items[3]["text"]
    assert "+30 min 0 s" in items[2]["text"], items[2]["text"]
    summary = page.text_content("#pl-trail-summary") or ""
    assert summary.startswith("5 sightings at 4 cameras"), summary
    assert audit_count(site.cw, "plate.trail") == 1

    # The map: every camera with a position; four numbered stops (the depot has none),
    # placed by the cameras' coordinates; arrows in time order.
    assert page.get_attribute("#pl-map", "data-points") == "4"
    cams = page.eval_on_selector_all("#pl-map g.cam", "gs => gs.map(g => g.dataset.camera)")
    assert sorted(cams) == ["centre", "north", "south"]
    stops = page.eval_on_selector_all(
        "#pl-map g.stop",
        "gs => gs.map(g => ({n: Number(g.dataset.n), camera: g.dataset.camera,"
        " x: Number(g.dataset.x), y: Number(g.dataset.y), label: g.textContent}))",
    )
    assert [(s["n"], s["camera"]) for s in stops] == [
        (1, "north"), (2, "centre"), (3, "north"), (5, "south")
    ]  # fmt: skip
    assert all(s["label"].startswith(str(s["n"])) for s in stops)
    at = {s["n"]: s for s in stops}
    assert at[5]["y"] > at[2]["y"] > at[1]["y"], "south lies below (north up)"
    assert at[1]["x"] < at[2]["x"] < at[5]["x"], "east lies to the right"
    assert abs(at[1]["x"] - at[3]["x"]) + abs(at[1]["y"] - at[3]["y"]) > 10, "two visits apart"
    legs = page.eval_on_selector_all(
        "#pl-map line.leg", "ls => ls.map(l => [Number(l.dataset.from), Number(l.dataset.to)])"
    )
    assert legs == [[1, 2], [2, 3], [3, 5]]
    box = page.locator("#pl-map").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200
    page.screenshot(path=str(shots / "plates-trail.png"), full_page=True)

    # Its Play opens the Playback tab for that sighting (the last one has a recording).
    page.click("#pl-trail-list li[data-n='5'] button.play")
    page.wait_for_selector("#playback-form", state="visible")
    assert page.input_value("#pb-camera") == "south"
    page.wait_for_function("document.querySelector('#pb-video').readyState >= 2")


def test_hotlists_create_add_remove_errors_and_a_live_hit(
    page: Page, site: Site, shots: Path
) -> None:
    open_as(page, "ivan")
    page.click("#tab-hotlists")
    page.wait_for_selector("#hl-empty", state="visible")
    page.click("#hl-new")
    form = "#hl-form"
    page.fill(f"{form} [name=name]", "Stolen cars")
    page.fill(f"{form} [name=reason]", "Reported stolen")
    page.fill(f"{form} [name=legal_basis]", "Police Act art. 7")
    page.select_option(f"{form} [name=priority]", "high")
    expires = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 86400))
    page.fill(f"{form} [name=expires_at]", expires)
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#hl-detail", state="visible")
    assert page.text_content("#hl-d-title") == "Stolen cars"
    assert page.text_content("#hl-d-msg") == "Created “Stolen cars”."
    meta = page.text_content("#hl-d-meta") or ""
    assert "Police Act art. 7" in meta and "ivan" in meta and expires.replace("T", " ") in meta
    assert page.locator("#hl-lists .hl-item").count() == 1

    # The API's refusals are shown: a name taken, a malformed pattern.
    page.click("#hl-new")
    page.fill(f"{form} [name=name]", "Stolen cars")
    page.fill(f"{form} [name=reason]", "again")
    page.fill(f"{form} [name=legal_basis]", "again")
    page.click(f"{form} button[type=submit]")
    page.wait_for_function("document.querySelector('#hl-form-error').textContent !== ''")
    refused = page.text_content("#hl-form-error")
    assert refused == "Not created: a hotlist named 'Stolen cars' exists"
    page.click("#hl-form-cancel")
    page.wait_for_selector("#hl-detail", state="visible")

    entry_form = "#hl-entry-form"
    page.fill(f"{entry_form} [name=plate]", "B[G]1")
    page.click(f"{entry_form} button[type=submit]")
    page.wait_for_function("document.querySelector('#hl-d-error').textContent !== ''")
    error = page.text_content("#hl-d-error") or ""
    assert error.startswith("Not added: ") and "A-Z" in error, error

    for plate, reason in (("bg 123-ab", "theft 17"), ("NS*99", "to remove")):
        page.fill(f"{entry_form} [name=plate]", plate)
        page.fill(f"{entry_form} [name=reason]", reason)
        page.click(f"{entry_form} button[type=submit]")
        page.wait_for_function(
            f"document.querySelector('#hl-d-msg').textContent.startsWith('Added ')"
            f" && document.querySelector('#hl-entries tbody').rows.length === "
            f"{1 if reason == 'theft 17' else 2}"
        )
    plates = page.eval_on_selector_all("#hl-entries tbody tr", "rs => rs.map(r => r.dataset.plate)")
    assert plates == ["BG123AB", "NS*99"]
    assert page.text_content("#hl-d-error") == ""
    page.screenshot(path=str(shots / "hotlist.png"))
    page.click("#hl-entries button[aria-label='Remove NS*99']")
    page.wait_for_function("document.querySelector('#hl-d-msg').textContent === 'Removed NS*99.'")
    assert page.locator("#hl-entries tbody tr").count() == 1
    api = page.request.get("/api/v1/hotlists").json()["items"]
    assert [(x["name"], x["priority"], x["owner"]) for x in api] == [
        ("Stolen cars", "high", "ivan")
    ]
    detail = page.request.get(f"/api/v1/hotlists/{api[0]['id']}").json()
    assert [(e["plate"], e["reason"]) for e in detail["entries"]] == [("BG123AB", "theft 17")]

    # A read of the listed plate: the alert arrives with its crop and a Play link.
    page.click('nav button[data-tab="live"]')
    page.wait_for_selector("#feed-state.open")
    ts = time.time() - 3
    site.cw.events.handle(plate_read("north", ts, "BG 123-AB", 0.9, 210))
    item = "#alerts-list li[data-source=feed]"
    poll(
        page,
        f"() => {{ const i = document.querySelector('{item} img.plate-crop');"
        " return i && i.naturalWidth === 210; }",
        15,
        "the hotlist alert with its crop",
    )
    text = page.text_content(item) or ""
    assert "hotlist: Stolen cars" in text and "plate BG 123-AB on “Stolen cars”" in text, text
    assert "prio-high" in (page.get_attribute(item, "class") or "")
    page.screenshot(path=str(shots / "hotlist-alert.png"))
    page.click(f"{item} button.play")
    page.wait_for_selector("#playback-form", state="visible")
    assert page.input_value("#pb-camera") == "north"
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts - 5)))
    assert page.input_value("#playback-form [name=start]") == start
    assert "State the purpose, then Play" in (page.text_content("#pb-hint") or "")

    # Delete the list, after a second thought.
    page.click("#tab-hotlists")
    page.click("#hl-lists .hl-item")
    page.click("#hl-delete")
    assert page.text_content("#hl-confirm-text") == "Delete “Stolen cars” and its 1 entry?"
    page.click("#hl-confirm-no")
    assert page.is_hidden("#hl-confirm")
    page.click("#hl-delete")
    page.click("#hl-confirm-yes")
    page.wait_for_selector("#hl-empty", state="visible")
    assert page.is_hidden("#hl-detail")
    assert page.request.get("/api/v1/hotlists").json()["total"] == 0
    actions = [e.action for e in site.cw.audit.page(actor="ivan", limit=200)[0]]
    for a in ("hotlist.create", "hotlist.entry_add", "hotlist.entry_remove", "hotlist.delete"):
        assert a in actions, a


def test_operator_sees_no_plate_screens_nor_crops(page: Page) -> None:
    """Operators lack the search permission: no plate or hotlist screens, no editing
    controls, and the plate alert shows its text without the crop or a Play button."""
    open_as(page, "olga")
    assert page.is_hidden("#tab-plates") and page.is_hidden("#tab-hotlists")
    for sel in ("#hl-new", "#hl-form", "#hl-entry-form", "#hl-delete", "#hl-confirm"):
        assert page.locator(sel).evaluate("e => e.hidden"), sel
    item = "#alerts-list li.prio-high"
    page.wait_for_selector(item)
    assert "plate BG 123-AB" in (page.text_content(item) or "")
    assert page.locator(f"{item} img").count() == 0
    assert page.locator(f"{item} button.play").count() == 0
