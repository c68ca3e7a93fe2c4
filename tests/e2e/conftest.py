"""Browser-test plumbing shared by the e2e modules: the real server on loopback, Chromium
through Playwright, and a page that fails the test on any JavaScript error."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from citywatch.api.app import create_app
from citywatch.runtime import CityWatch
from tests.conftest import PASSWORD, wait_for
from tests.support.rtsp import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]


@dataclass
class Site:
    cw: CityWatch
    url: str


@contextmanager
def serve(cw: CityWatch) -> Iterator[Site]:
    """The app under uvicorn on a free loopback port, in a thread; stopped on exit."""
    port = free_port()
    config = uvicorn.Config(
        create_app(cw),
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 30, "uvicorn to start")
        assert server.started, "uvicorn exited during start-up"
        yield Site(cw, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(30)
        cw.stop()  # the app's shutdown stopped it already unless start-up failed; idempotent


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing (scripts/setup.sh --test installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class JsErrors:
    """Uncaught exceptions and console errors, less the failed requests a test causes on
    purpose (`expected`: (path suffix, HTTP status) pairs)."""

    expected: set[tuple[str, int]]
    seen: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        url = msg.location.get("url", "")
        for path, status in self.expected:
            if url.endswith(path) and f"status of {status}" in msg.text:
                return
        self.seen.append(f"console: {msg.text} ({url})")

    def on_page_error(self, exc: Exception) -> None:
        self.seen.append(f"uncaught: {exc}")


@contextmanager
def open_page(
    browser: Browser, site: Site, expected: set[tuple[str, int]], width: int = 1280
) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the site; fails on any JavaScript error."""
    context = browser.new_context(base_url=site.url, viewport={"width": width, "height": 900})
    errors = JsErrors(expected)
    pg = context.new_page()
    pg.on("console", errors.on_console)
    pg.on("pageerror", errors.on_page_error)
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    if errors.seen:
        pytest.fail("JavaScript errors on the page:\n" + "\n".join(errors.seen))


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.fill("#login-form [name=username]", username)
    page.fill("#login-form [name=password]", password)
    page.click("#login-form button[type=submit]")


def open_as(page: Page, username: str) -> None:
    page.goto("/")
    page.wait_for_selector("#login-form", state="visible")
    log_in(page, username)
    page.wait_for_selector("#app-view", state="visible")


def poll(page: Page, script: str, timeout: float, what: str) -> object:
    """Evaluate `script` in the page until it returns something truthy."""
    return wait_for(lambda: page.evaluate(script), timeout, what, step=0.25)


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Browser, site: Site) -> Iterator[Page]:
    """A logged-out page on the module's `site`, 1440 px wide; the HTTP errors the module
    expects (its EXPECTED_HTTP_ERRORS) are allowed, any other fails the test."""
    expected = getattr(request.module, "EXPECTED_HTTP_ERRORS", set())
    with open_page(browser, site, expected, width=1440) as pg:
        yield pg


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: CITYWATCH_SCREENSHOTS if set (to keep them), else a temp dir."""
    keep = os.environ.get("CITYWATCH_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
