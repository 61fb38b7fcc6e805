"""The exported status site in a real browser (Debian's Chromium, driven by Playwright): no console
error, no request to another host, no sideways scrolling at 375 px, keyboard-focusable uptime bars,
and no axe-core accessibility violation, in light and dark."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sp_data
from sp_browser import CHROMIUM, require_chromium

from bot.statuspage.site import StatusSite
from storage import db

sync_api = pytest.importorskip("playwright.sync_api")
require_chromium()

pytestmark = pytest.mark.slow
VIEWPORTS = [{"width": 1280, "height": 900}, {"width": 375, "height": 800}]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(sessions: db.SessionFactory, tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """An exported site behind a local http.server: (its base URL, the public ids)."""
    ids = sp_data.populate(sessions)
    StatusSite(sessions, sp_data.CONFIG, sp_data.INFO, clock=lambda: sp_data.NOW).export(tmp_path / "site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path / "site")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", ids
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


def _check(browser: Any, root: str, paths: list[str], viewport: dict[str, int], scheme: str) -> list[str]:
    """Open every path; return what went wrong (console errors, foreign requests, axe violations…)."""
    from axe_playwright_python.sync_playwright import Axe

    problems: list[str] = []
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def only_local(route: Any) -> None:
        if route.request.url.startswith((root, "data:")):
            route.continue_()
        else:
            problems.append(f"request to another host: {route.request.url}")
            route.abort()

    page.route("**/*", only_local)
    page.goto(root)  # the export's index.html sends the browser on, without a script
    page.wait_for_url(root + "status/index.html")
    axe = Axe()
    for path in paths:
        response = page.goto(root + path)
        if response is None or not response.ok:
            problems.append(f"{path}: {response.status if response else 'no response'}")
            continue
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"]:
            problems.append(f"{path} scrolls sideways at {viewport['width']} px: {width} px wide")
        results = axe.run(page)
        if results.violations_count:
            problems.append(f"{path} ({scheme}, {viewport['width']} px):\n{results.generate_snapshot()}")
    page.goto(root + "status/index.html")
    page.focus(".bar")
    label = page.evaluate("document.activeElement.getAttribute('aria-label')") or ""
    if "uptime" not in label:
        problems.append(f"a bar cannot take the focus, or has no label: {label!r}")
    context.close()
    return problems


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the browser does not care which database
def test_the_site_renders_cleanly_at_desktop_and_phone_widths(browser: Any, served: tuple[str, dict[str, int]]) -> None:
    root, ids = served
    paths = ["status/index.html", "status/history/index.html", f"status/incidents/{ids['active']}/index.html"]
    problems = [
        problem
        for viewport in VIEWPORTS
        for scheme in ("light", "dark")
        for problem in _check(browser, root, paths, viewport, scheme)
    ]
    assert problems == [], "\n".join(problems)
