"""Face identification screens in a real browser: Chromium (Playwright) against the real
server, real face models, and a camera recording the Hamilton clip over real RTSP.

Real users of each role drive it: an investigator keeps a watchlist (the API's refusals of
bad enrolment images are shown) and requests authorisations; the requester is refused
approval and an authority approves; a candidate match, made the way analysis makes one
(a `FaceSeen` built from a real photo, handed to the face matcher), reaches two reviewers
live with both faces, and becomes an alert only after the second reviewer confirms; an
auditor reads and exports the use log; a search by photo is refused out of its scope, then
shows its progress and ranked results; a case holds a search and a face alert; the
administrator and an operator see no biometric screens.

The tests run in file order against one server. Set CITYWATCH_SCREENSHOTS=DIR to keep the
screenshots.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, FilePayload, Page
from sqlalchemy import func, select

from citywatch.analytics.faces import STRICT_THRESHOLD
from citywatch.config import (
    AnalyticsConfig,
    RecordingConfig,
    RetentionConfig,
    Settings,
)
from citywatch.runtime import CityWatch
from citywatch.store.models import Alert, Segment
from tests.conftest import FAST, MEDIA_CACHE, add_user, camera, shared_video, wait_for
from tests.e2e.conftest import CHROMIUM, Site, open_as, open_page, poll, serve
from tests.support.faces import FACES, face_shot
from tests.support.rtsp import RtspServer, to_ts

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (scripts/setup.sh --test installs it)"
)

# Failed requests the page makes on purpose: "who am I?" before login, refused enrolments,
# an incomplete request, approval by the requester, a revocation without a reason, a second
# confirmation by the same reviewer, a search outside its authorisation.
EXPECTED_HTTP_ERRORS = {
    ("/api/v1/auth/me", 401),
    ("/enrolments", 422),
    ("/api/v1/authorisations", 422),
    ("/approve", 403),
    ("/revoke", 422),
    ("/review", 422),
    ("/api/v1/faces/searches", 403),
}
THRESHOLD = STRICT_THRESHOLD  # what watchlist matching uses
CASE = "K-5/26"
PURPOSE = "identify the robbery suspect"
state: dict[str, Any] = {}  # ids made by earlier tests of this module (run in file order)


def _faces_or_skip() -> Any:
    if not FACES.is_dir():
        pytest.skip(f"shared data not present: {FACES}")
    from citywatch.analytics.faces import FaceEngine, FaceEngineError
    from citywatch.analytics.models import load_spec

    try:
        spec = load_spec("nanodet")
    except Exception as exc:  # built by scripts/build_models.sh
        pytest.skip(f"detector model not built ({exc}); run scripts/build_models.sh")
    if not Path(spec.path).is_file():
        pytest.skip(f"detector model {spec.path} missing; run scripts/build_models.sh")
    try:
        return FaceEngine()
    except FaceEngineError as e:
        pytest.skip(f"face models not installed ({e}); run scripts/build_models.sh")


def recorded_span(cw: CityWatch, cam: str) -> tuple[float, float] | None:
    with cw.db.session() as s:
        row = s.execute(
            select(func.min(Segment.start_ts), func.max(Segment.end_ts)).where(
                Segment.camera_id == cam
            )
        ).one()
    return (row[0], row[1]) if row[0] is not None else None


@pytest.fixture(scope="module")
def engine() -> Any:
    """The test's own face engine (the server has its own), to make face shots."""
    return _faces_or_skip()


@pytest.fixture(scope="module")
def site(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Two cameras: "stage" records the Hamilton clip (for retrospective search), "gate"
    has no stream (its face shots are handed to the matcher by the tests). Neither has
    analytics of its own."""
    clip = to_ts(shared_video("hamilton-clip.mp4"), MEDIA_CACHE / "hamilton-g15.ts", gop=15)
    off = AnalyticsConfig(enabled=False)
    with RtspServer({"stage": clip}) as rtsp:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("e2e-faces") / "data",
            cameras=[
                camera("stage", rtsp.url("stage"), name="Stage door", analytics=off),
                camera("gate", "rtsp://127.0.0.1:9/none", name="North gate", analytics=off),
            ],
            recording=RecordingConfig(
                segment_seconds=2.0,
                retention=RetentionConfig(free_reserve_gb=0, sweep_interval_s=3600),
            ),
        )
        cw = CityWatch(settings, FAST)
        for name, role in [
            ("ivan", "investigator"),
            ("judith", "authority"),
            ("rita", "reviewer"),
            ("rolf", "reviewer"),
            ("aldo", "auditor"),
            ("adam", "admin"),
            ("olga", "operator"),
        ]:
            add_user(cw, name, role)
        with serve(cw) as site:

            def enough() -> tuple[float, float] | None:
                got = recorded_span(cw, "stage")
                return got if got and got[1] - got[0] >= 20 else None

            wait_for(enough, 90, "20 s of recording from the stage camera")
            yield site


def jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


shot = face_shot


def iso(ts: float) -> str:
    """A time as the page's datetime-local inputs show it (UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


def width_of(data: bytes) -> int:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return int(img.shape[1])


def text(page: Page, sel: str) -> str:
    return page.text_content(sel) or ""


def wait_text(page: Page, sel: str, what: str = "") -> str:
    """Wait until `sel` has text (containing `what`, when given) and return it."""
    page.wait_for_function(
        "([s, w]) => { const e = document.querySelector(s);"
        " return e && e.textContent !== '' && e.textContent.includes(w); }",
        arg=[sel, what],
    )
    return text(page, sel)


def tabs_shown(page: Page) -> set[str]:
    names = page.eval_on_selector_all(
        "nav button", "bs => bs.filter(b => !b.hidden).map(b => b.dataset.tab)"
    )
    return set(names)


BIOMETRIC_TABS = {"authorisations", "watchlists", "facesearch"}


# tests -------------------------------------------------------------------------------------
def test_investigator_keeps_a_watchlist_and_sees_why_images_are_refused(
    page: Page, site: Site, shots: Path
) -> None:
    open_as(page, "ivan")
    assert {"authorisations", "watchlists", "facesearch", "cases"} <= tabs_shown(page)
    assert page.is_hidden("#review-panel")  # reviewers only
    page.click("#tab-watchlists")
    page.wait_for_selector("#wl-empty", state="visible")
    page.click("#wl-new")
    page.fill("#wl-form [name=name]", "Missing persons")
    page.fill("#wl-form [name=legal_basis]", "Police Act art. 45")
    page.click("#wl-form button[type=submit]")
    page.wait_for_selector("#wl-detail", state="visible")
    assert text(page, "#wl-d-title") == "Missing persons"
    assert text(page, "#wl-d-msg") == "Created “Missing persons”."
    page.fill("#wl-person-form [name=label]", "Barack Obama")
    page.click("#wl-person-form button[type=submit]")
    person = "#wl-persons li.person[data-label='Barack Obama']"
    page.wait_for_selector(person)
    assert "No image enrolled" in text(page, person)

    def enrol(name: str, data: bytes, source: str, basis: str) -> str:
        payload: FilePayload = {"name": name, "mimeType": "image/jpeg", "buffer": data}
        page.set_input_files(f"{person} input[name=image]", files=[payload])
        page.fill(f"{person} input[name=source]", source)
        page.fill(f"{person} input[name=legal_basis]", basis)
        page.click(f"{person} .enrol-form button[type=submit]")
        page.wait_for_function(
            f"""() => {{ const p = document.querySelector("{person}");
                return !p || p.querySelector('.enrol-error').textContent !== ''
                  || document.querySelector('#wl-d-msg').textContent !== ''; }}"""
        )
        return text(page, f"{person} .enrol-error")

    obama = (FACES / "obama.jpg").read_bytes()
    src, basis = "family photo, case K-5/26", "CPC art. 7"
    # Each refusal is shown with the API's reason.
    error = enrol("obama.jpg", obama, "", "")
    assert error.startswith("Not enrolled: source") and "required" in error, error
    error = enrol("two.jpg", (FACES / "two_people.jpg").read_bytes(), src, basis)
    assert error.startswith("Not enrolled: image refused: 2 faces found"), error
    from citywatch.analytics.faces import load_image

    photo = load_image(FACES / "obama.jpg")  # 910 x 1137, the face about 260 px high
    small = cv2.resize(photo, (200, 250), interpolation=cv2.INTER_AREA)
    error = enrol("small.jpg", jpeg(small), src, basis)
    assert "image refused: face too small" in error, error
    blurred = cv2.GaussianBlur(photo, (0, 0), 7)
    error = enrol("blurred.jpg", jpeg(blurred), src, basis)
    assert "image refused: blurred" in error, error
    grey = np.full((480, 640, 3), 128, np.uint8)
    error = enrol("grey.jpg", jpeg(grey), src, basis)
    assert "image refused: no face found" in error, error
    page.screenshot(path=str(shots / "faces-enrol-refused.png"), full_page=True)
    assert page.locator(f"{person} figure.enrolment").count() == 0

    # A good image with its provenance: enrolled, shown with where it comes from.
    assert enrol("obama.jpg", obama, src, basis) == ""
    assert text(page, "#wl-d-msg") == "Enrolled an image of Barack Obama."
    figure = f"{person} figure.enrolment"
    poll(page, f'() => document.querySelector("{figure} img")?.naturalWidth > 0', 10, "thumb")
    caption = text(page, f"{figure} figcaption")
    assert f"Source: {src}" in caption and f"Legal basis: {basis}" in caption and "ivan" in caption
    assert "1 person, 1 image" in text(page, "#wl-d-meta")
    wl = page.request.get("/api/v1/faces/watchlists").json()
    assert [w["name"] for w in wl] == ["Missing persons"]
    state["watchlist"] = wl[0]["id"]
    refused = [
        e for e in site.cw.audit.page(action="faces.enrol", limit=100)[0] if e.outcome == "refused"
    ]
    assert len(refused) == 4  # the missing provenance is refused before the image is read
    page.screenshot(path=str(shots / "faces-watchlist.png"), full_page=True)


def request(
    page: Page, mode: str, objective: str, cams: list[str], lists: list[str], **more: str
) -> int:
    page.click("#au-new")
    page.wait_for_selector("#au-form", state="visible")
    form = "#au-form"
    page.select_option("#au-mode", mode)
    page.fill(f"{form} [name=legal_basis]", "Law on Police, art. 45")
    page.fill(f"{form} [name=authority]", "Higher Court Belgrade")
    page.fill(f"{form} [name=authority_ref]", "Kpp 123/26")
    page.fill(f"{form} [name=objective]", objective)
    for cam in cams:
        page.check(f"#au-cameras input[value='{cam}']")
    for name in lists:
        page.check(f"#au-watchlists label:has-text('{name}') input")
    for name, value in more.items():
        page.fill(f"{form} [name={name}]", value)
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#au-detail", state="visible")
    wait_text(page, "#au-d-msg", "Requested: authorisation #")
    return int(page.get_attribute("#au-detail", "data-id") or 0)


def select_auth(page: Page, auth: int) -> None:
    page.click(f"#au-list .au-item[data-id='{auth}']")
    page.wait_for_selector(f"#au-detail[data-id='{auth}']")


def test_the_requester_is_refused_approval_and_an_authority_approves(
    browser: Browser, page: Page, site: Site, shots: Path
) -> None:
    cw = site.cw
    open_as(page, "ivan")
    page.click("#tab-authorisations")
    page.wait_for_selector("#au-empty", state="visible")
    # Incomplete: the API says what is missing, nothing is created.
    page.click("#au-new")
    page.click("#au-form button[type=submit]")
    error = wait_text(page, "#au-form-error")
    assert error.startswith("Not requested: legal_basis"), error
    assert cw.authorisations.all() == []
    page.click("#au-form-cancel")

    realtime = request(page, "realtime", "find a missing person", ["gate"], ["Missing persons"],
                       case_ref=CASE)  # fmt: skip
    assert text(page, "#au-d-status") == "pending approval"
    meta = text(page, "#au-d-meta")
    assert "Watchlists" in meta and "Missing persons" in meta and "North gate (gate)" in meta
    assert "not yet: a different user with the authority role approves it" in meta
    # The requester tries to approve it: refused, and the page says why.
    assert page.is_visible("#au-approve")
    page.click("#au-approve")
    error = wait_text(page, "#au-d-error")
    assert error == "Not approved: your role (investigator) may not do this (faces.approve)", error
    assert cw.authorisations.get(realtime).approved_at is None
    page.screenshot(path=str(shots / "faces-approve-refused.png"), full_page=True)

    # A retrospective one names a closed window of recorded footage.
    span = recorded_span(cw, "stage")
    assert span
    footage_from, footage_to = math.ceil(span[0]), math.floor(time.time())
    page.click("#au-new")
    page.select_option("#au-mode", "retrospective")
    assert page.is_visible("#au-footage")
    page.click("#au-form-cancel")
    retro = request(page, "retrospective", PURPOSE, ["stage"], [], case_ref=CASE,
                    footage_from=iso(footage_from), footage_to=iso(footage_to))  # fmt: skip
    a = page.request.get(f"/api/v1/authorisations/{retro}").json()
    assert (a["footage_from"], a["footage_to"]) == (footage_from, footage_to)
    withdrawn = request(page, "realtime", "a threat since withdrawn", ["gate"], ["Missing persons"])
    state.update(realtime=realtime, retro=retro, footage=(footage_from, footage_to))

    # The authority: no Request button, the watchlist by name, Approve works.
    with open_page(browser, site, EXPECTED_HTTP_ERRORS, width=1440) as judge:
        open_as(judge, "judith")
        judge.wait_for_selector("#authorisations", state="visible")  # no live view: starts here
        assert judge.is_hidden("#au-new")
        assert judge.locator("#au-list .au-item").count() == 3
        for auth in (realtime, retro):
            select_auth(judge, auth)
            judge.click("#au-approve")
            assert wait_text(judge, "#au-d-msg") == "Approved: active."
            assert text(judge, "#au-d-status") == "active"
            assert judge.is_hidden("#au-approve")
            assert "by judith" in text(judge, "#au-d-meta")
        select_auth(judge, realtime)
        assert "Missing persons" in text(judge, "#au-d-meta")
        judge.screenshot(path=str(shots / "faces-approved.png"), full_page=True)
        # Revoking needs a reason.
        select_auth(judge, withdrawn)
        judge.click("#au-revoke-form button[type=submit]")
        error = wait_text(judge, "#au-d-error")
        assert error.startswith("Not revoked: reason"), error
        judge.fill("#au-revoke-form [name=reason]", "decision withdrawn by the court")
        judge.click("#au-revoke-form button[type=submit]")
        assert wait_text(judge, "#au-d-msg") == "Revoked: matching under it has stopped."
        assert text(judge, "#au-d-status") == "revoked"
        assert "by judith: decision withdrawn by the court" in text(judge, "#au-d-meta")
        assert judge.is_hidden("#au-approve") and judge.is_hidden("#au-revoke-form")
    assert cw.authorisations.get(realtime).approved_by == "judith"
    statuses = {a["id"]: a["status"] for a in page.request.get("/api/v1/authorisations").json()}
    assert statuses == {realtime: "active", retro: "active", withdrawn: "revoked"}
    wait_for(lambda: "gate" in cw.analytics.faces_on(), 10, "face analysis on the gate camera")


def candidate_card(page: Page, cid: int) -> dict[str, Any]:
    card = f"#rv-list li.candidate[data-id='{cid}']"
    got = poll(
        page,
        f"""() => {{ const li = document.querySelector("{card}");
            if (!li) return false;
            const live = li.querySelector('img.live-crop');
            const enrolled = li.querySelector('img.enrolled');
            return live && enrolled && live.naturalWidth > 0 && enrolled.naturalWidth > 0 &&
              {{live: live.naturalWidth, enrolled: enrolled.naturalWidth, text: li.textContent,
               status: li.dataset.status, state: li.querySelector('.state').textContent}}; }}""",
        15,
        f"candidate {cid} with both faces",
    )
    assert isinstance(got, dict)
    return got


def face_alerts(page: Page) -> list[dict[str, Any]]:
    got = page.eval_on_selector_all(
        "#alerts-list li[data-kind=face]",
        "ls => ls.map(l => ({id: Number(l.dataset.id), text: l.textContent,"
        " imgs: [...l.querySelectorAll('img')].map(i => i.naturalWidth)}))",
    )
    assert isinstance(got, list)
    return got


def test_a_candidate_becomes_an_alert_only_after_two_reviewers_confirm(
    browser: Browser, page: Page, site: Site, engine: Any, shots: Path
) -> None:
    cw = site.cw
    open_as(page, "rita")
    page.wait_for_selector("#feed-state.open")
    assert page.is_visible("#review-panel") and page.is_visible("#rv-empty")
    # A reviewer reads authorisations; no watchlists, searches or cases.
    assert tabs_shown(page) & (BIOMETRIC_TABS | {"cases"}) == {"authorisations"}
    with open_page(browser, site, EXPECTED_HTTP_ERRORS, width=1440) as rolf:
        open_as(rolf, "rolf")
        rolf.wait_for_selector("#feed-state.open")

        face = shot(engine, "obama2.jpg", "gate", track=11)
        made = cw.face_matcher.handle(face)
        assert len(made) == 1
        cid = made[0].id
        # Live on both reviewers' screens: the live crop beside the enrolled image.
        card = candidate_card(page, cid)
        enrolled = cw.watchlists.enrolment(made[0].enrolment_id)
        assert card["live"] == width_of(face.crop_jpeg)
        assert card["enrolled"] == width_of((cw.settings.data_dir / enrolled.image).read_bytes())
        assert "Barack Obama" in card["text"] and "North gate (gate)" in card["text"]
        assert f"≥ threshold {THRESHOLD:.3f}" in card["text"] and "quality" in card["text"]
        assert card["state"] == "0 of 2 confirmations"
        assert text(page, "#rv-count") == "1"
        candidate_card(rolf, cid)
        page.screenshot(path=str(shots / "faces-candidate.png"))

        sel = f"#rv-list li.candidate[data-id='{cid}']"
        page.click(f"{sel} .confirm-btn")
        page.wait_for_function(
            f"""document.querySelector("{sel} .state").textContent.startsWith('1 of 2')"""
        )
        assert text(page, f"{sel} .state") == (
            "1 of 2 confirmations (rita); you confirmed, a second reviewer must"
        )
        # The same reviewer cannot confirm twice; the API's reason is shown.
        page.click(f"{sel} .confirm-btn")
        error = wait_text(page, f"{sel} .error")
        assert (
            error == "Not recorded: you have reviewed this candidate already; a second person must"
        )
        # The other reviewer sees the first confirmation live. Nothing went out yet.
        rolf.wait_for_function(
            f"""document.querySelector("{sel} .state").textContent"""
            " === '1 of 2 confirmations (rita)'"
        )
        with cw.db.session() as s:
            assert (
                s.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "face")) == 0
            )
        assert face_alerts(page) == [] and face_alerts(rolf) == []

        rolf.click(f"{sel} .confirm-btn")
        rolf.wait_for_function(
            f"""document.querySelector("{sel}").dataset.status === 'confirmed'"""
        )
        assert text(rolf, f"{sel} .state") == "Confirmed by rita and rolf: alert raised."
        assert rolf.locator(f"{sel} .confirm-btn").count() == 0
        page.wait_for_function(
            f"""document.querySelector("{sel}").dataset.status === 'confirmed'"""
        )
        # The confirmed match is a face alert, with both faces for reviewers.
        for p in (page, rolf):
            got = poll(
                p,
                """() => {
                    const l = [...document.querySelectorAll('#alerts-list li[data-kind=face]')];
                    const imgs = l.length === 1 ? [...l[0].querySelectorAll('img')] : [];
                    return imgs.length === 2 && imgs.every(i => i.naturalWidth > 0)
                      && l[0].textContent; }""",
                15,
                "the face alert with both faces",
            )
            assert "face match: Barack Obama" in str(got) and "confirmed by rita and rolf" in str(
                got
            )
            assert "face watchlist: Barack Obama" in str(got)
        rolf.screenshot(path=str(shots / "faces-confirmed-alert.png"))
        with cw.db.session() as s:
            alert = s.scalars(select(Alert).where(Alert.kind == "face")).one()
        state["alert"] = alert.id

        # Either reviewer can reject: no alert.
        other = cw.face_matcher.handle(shot(engine, "obama-720p.jpg", "gate", track=12))
        assert len(other) == 1
        sel2 = f"#rv-list li.candidate[data-id='{other[0].id}']"
        candidate_card(rolf, other[0].id)
        rolf.click(f"{sel2} .reject-btn")
        rolf.wait_for_function(
            f"""document.querySelector("{sel2}").dataset.status === 'rejected'"""
        )
        assert text(rolf, f"{sel2} .state") == "Rejected by rolf: no alert."
        page.wait_for_function(
            f"""document.querySelector("{sel2}").dataset.status === 'rejected'"""
        )
        time.sleep(1)
        assert len(face_alerts(page)) == 1 and len(face_alerts(rolf)) == 1
        assert text(page, "#rv-count") == "0"


def test_the_auditor_reads_and_exports_the_use_log(page: Page, site: Site, shots: Path) -> None:
    auth = state["realtime"]
    open_as(page, "aldo")
    page.wait_for_selector("#authorisations", state="visible")
    assert tabs_shown(page) & BIOMETRIC_TABS == {"authorisations"}
    assert page.is_hidden("#au-new")
    select_auth(page, auth)
    assert page.is_hidden("#au-approve") and page.is_hidden("#au-revoke-form")
    page.click("#au-uselog")
    page.wait_for_selector("#au-log", state="visible")
    summary = text(page, "#au-log-summary")
    assert "oldest first; the audit chain is intact (verified)." in summary, summary
    actions = page.eval_on_selector_all(
        "#au-log-table tbody tr", "rs => rs.map(r => r.dataset.action)"
    )
    assert actions[0] == "faces.authorisation.create"
    for needed in (
        "faces.authorisation.approve",
        "faces.use.start",
        "faces.match.candidate",
        "faces.match.review",
        "faces.match.confirmed",
    ):
        assert needed in actions, needed
    row = page.locator("#au-log-table tbody tr[data-action='faces.match.confirmed']")
    assert "rita" in (row.text_content() or "") and "rolf" in (row.text_content() or "")
    page.screenshot(path=str(shots / "faces-use-log.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#au-export")
    download = dl.value
    assert download.suggested_filename == f"use-log-authorisation-{auth}.json"
    path = download.path()
    assert path is not None
    log = json.loads(Path(path).read_text())
    assert log["authorisation"]["id"] == auth and log["chain"]["verified"] is True
    # The export itself is a use-log entry: the file has what was shown, and one more.
    assert [e["action"] for e in log["entries"]][: len(actions)] == actions


def test_search_by_photo_stays_in_scope_and_shows_progress_and_ranked_results(
    page: Page, site: Site, shots: Path
) -> None:
    cw = site.cw
    footage_from, _ = state["footage"]
    open_as(page, "ivan")
    page.click("#tab-facesearch")
    page.wait_for_selector("#fs-form", state="visible")
    wait_text(page, "#fs-scope", "A search cannot reach outside it")
    options = page.eval_on_selector_all("#fs-auth option", "os => os.map(o => o.value)")
    assert options == [str(state["retro"])]  # the active retrospective one only
    assert page.eval_on_selector_all("#fs-cameras input:checked", "cs => cs.map(c => c.value)") == [
        "stage"
    ]
    assert page.input_value("#fs-form [name=start]") == iso(footage_from)
    assert "A search cannot reach outside it" in text(page, "#fs-scope")
    assert page.input_value("#fs-case") == CASE
    page.fill("#fs-purpose", PURPOSE)
    page.set_input_files("#fs-probe-file", str(FACES / "lin-manuel-miranda.png"))

    # Before the authorised footage window: refused, with the API's reason.
    page.fill("#fs-form [name=start]", iso(footage_from - 600))
    page.fill("#fs-form [name=end]", iso(footage_from + 20))
    page.click("#fs-form button[type=submit]")
    error = wait_text(page, "#fs-error")
    assert error.startswith(
        "Search refused: time window outside the authorisation's footage window"
    ), error
    assert cw.face_search.all() == [] and page.is_hidden("#fs-job")
    denied = [e for e in cw.audit.page(action="faces.search.start")[0] if e.outcome == "denied"]
    assert len(denied) == 1

    # 20 s of footage inside the window: progress while it runs, then ranked faces.
    page.fill("#fs-form [name=start]", iso(footage_from))
    page.evaluate(
        """() => { window.fsSeen = [];
            const status = document.querySelector('#fs-status');
            const bar = document.querySelector('#fs-progress');
            new MutationObserver(() => window.fsSeen.push([status.textContent, bar.value]))
              .observe(document.querySelector('#fs-job'),
                       {subtree: true, childList: true, characterData: true}); }"""
    )
    page.click("#fs-form button[type=submit]")
    page.wait_for_selector("#fs-job", state="visible")
    assert text(page, "#fs-error") == ""
    page.wait_for_function(
        "document.querySelector('#fs-job').dataset.status === 'done'", timeout=240_000
    )
    seen = page.evaluate("window.fsSeen")
    assert any(s.startswith("Reading the recordings: ") for s, _ in seen), seen
    rows = poll(
        page,
        """() => { const r = [...document.querySelectorAll('#fs-results tbody tr')];
            return r.length && r.every(x => x.querySelector('img').naturalWidth > 0) &&
              r.map(x => ({score: Number(x.dataset.score), match: x.dataset.match,
                           camera: x.dataset.camera, ts: Number(x.dataset.ts),
                           flag: x.querySelector('.match').textContent})); }""",
        20,
        "ranked results with their crops",
    )
    assert isinstance(rows, list) and rows
    assert page.eval_on_selector("#fs-progress", "p => p.value") == 1
    status = text(page, "#fs-status")
    assert (
        status.startswith("Done: 1") and "faces found" in status and "most similar first" in status
    ), status
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert (
        rows[0]["match"] == "true" and rows[0]["flag"] == "match" and rows[0]["score"] >= THRESHOLD
    )
    assert all((r["flag"] == "match") == (r["score"] >= THRESHOLD) for r in rows)
    assert {r["camera"] for r in rows} == {"stage"}
    assert all(footage_from <= r["ts"] <= footage_from + 20 for r in rows)
    state["search"] = int(page.get_attribute("#fs-job", "data-id") or 0)
    assert page.locator("#fs-list .fs-item").count() == 1
    page.screenshot(path=str(shots / "faces-search.png"), full_page=True)

    # Play the best match: the Playback tab at that moment, under the search's purpose.
    page.click("#fs-results tbody tr:first-child button.play")
    page.wait_for_selector("#playback-form", state="visible")
    assert page.input_value("#pb-camera") == "stage"
    assert page.input_value("#playback-form [name=start]") == iso(int(rows[0]["ts"] - 5))
    assert page.input_value("#playback-form [name=purpose]") == PURPOSE
    assert page.input_value("#playback-form [name=case_ref]") == CASE
    page.wait_for_function(
        "() => { const v = document.querySelector('#pb-video');"
        " return v.src.startsWith('blob:') && v.readyState >= 2; }",
        timeout=30_000,
    )


def test_a_case_holds_the_search_and_the_face_alert_until_closed(
    page: Page, site: Site, shots: Path
) -> None:
    cw = site.cw
    search, alert = state["search"], state["alert"]
    open_as(page, "ivan")
    # Attach needs an open case first.
    page.click("#tab-facesearch")
    page.click(f"#fs-list .fs-item[data-id='{search}']")
    page.click("#fs-attach button.attach")
    page.wait_for_selector("#attach-dialog[open]")
    assert wait_text(page, "#at-error") == "No open case: open one in the Cases tab first."
    assert page.is_disabled("#at-submit")
    page.click("#at-cancel")

    page.click("#tab-cases")
    page.fill("#cs-form [name=reference]", CASE)
    page.fill("#cs-form [name=title]", "Robbery of 20 Nov")
    page.click("#cs-form button[type=submit]")
    assert wait_text(page, "#cs-d-msg") == f"Opened case {CASE}."
    assert text(page, "#cs-d-title") == f"{CASE}: Robbery of 20 Nov"

    page.click("#tab-facesearch")
    page.click(f"#fs-list .fs-item[data-id='{search}']")
    page.click("#fs-attach button.attach")
    page.wait_for_function("!document.querySelector('#at-submit').disabled")
    page.fill("#attach-form [name=note]", "best match 14:02")
    page.click("#at-submit")
    assert wait_text(page, "#at-msg") == f"Attached to case {CASE}."
    page.click("#at-cancel")

    # The face alert, from the alerts panel (an investigator sees it without the faces).
    page.click('nav button[data-tab="live"]')
    item = f"#alerts-list li[data-kind=face][data-id='{alert}']"
    page.wait_for_selector(item)
    assert page.locator(f"{item} img").count() == 0
    page.click(f"{item} button.attach")
    page.wait_for_function("!document.querySelector('#at-submit').disabled")
    page.click("#at-submit")
    assert wait_text(page, "#at-msg") == f"Attached to case {CASE}."
    page.click("#at-cancel")

    page.click("#tab-cases")
    page.click("#cs-list .cs-item")
    page.wait_for_function("document.querySelectorAll('#cs-items tbody tr').length === 2")
    items = page.eval_on_selector_all("#cs-items tbody tr", "rs => rs.map(r => r.textContent)")
    assert items[0].startswith(f"face search #{search}best match 14:02")
    assert items[1].startswith(f"alert #{alert}")
    assert cw.cases.is_held("face_search", search) and cw.cases.is_held("alert", alert)
    page.screenshot(path=str(shots / "faces-case.png"), full_page=True)

    page.click("#cs-close")
    assert wait_text(page, "#cs-d-msg", "Closed") == f"Closed case {CASE}."
    assert text(page, "#cs-d-state") == "closed"
    assert page.locator("#cs-items button.remove").count() == 0
    assert not cw.cases.is_held("face_search", search)


def test_the_administrator_and_an_operator_see_no_biometric_screens(
    browser: Browser, page: Page, site: Site
) -> None:
    alert = state["alert"]
    open_as(page, "olga")  # operator
    assert not (BIOMETRIC_TABS | {"cases"}) & tabs_shown(page)
    assert page.is_hidden("#review-panel")
    item = f"#alerts-list li[data-kind=face][data-id='{alert}']"
    page.wait_for_selector(item)
    assert "face match: Barack Obama" in text(page, item)
    assert page.locator(f"{item} img").count() == 0
    assert page.locator(f"{item} button.attach").count() == 0
    assert page.request.get("/api/v1/faces/candidates").status == 403
    assert page.request.get("/api/v1/authorisations").status == 403

    with open_page(browser, site, EXPECTED_HTTP_ERRORS) as admin:
        open_as(admin, "adam")
        shown = tabs_shown(admin)
        # No watchlists, no search, no review; the authorisations only to read (use log).
        assert "watchlists" not in shown and "facesearch" not in shown
        assert admin.is_hidden("#review-panel")
        admin.click("#tab-authorisations")
        select_auth(admin, state["realtime"])
        assert admin.is_hidden("#au-new") and admin.is_hidden("#au-approve")
        assert admin.is_hidden("#au-revoke-form")
        admin.wait_for_selector(
            f"#alerts-list li[data-kind=face][data-id='{alert}']", state="attached"
        )
        assert admin.locator("#alerts-list li[data-kind=face] img").count() == 0
        for path in (
            "/api/v1/faces/watchlists",
            "/api/v1/faces/candidates",
            "/api/v1/faces/searches",
        ):
            assert admin.request.get(path).status == 403, path
