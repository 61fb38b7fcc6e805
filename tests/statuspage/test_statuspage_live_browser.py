"""The status page of the running bot in a real browser: a publish from Slack shows within a second,
an unpublished incident never does, the uptime bar of a major-outage day shows its figure; no console
error and no other host, at 1280 and 375 px.

STATUS_PAGE_SCREENSHOTS=DIR also writes DIR/status-1280.png and DIR/status-375.png (the README's):
    STATUS_PAGE_SCREENSHOTS=docs pytest tests/statuspage/test_statuspage_live_browser.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot
from sp_browser import CHROMIUM, require_chromium
from sp_slack import page_settings, publish_values, wait_page

from bot.ids import Callback
from bot.statuspage import service
from storage import db
from storage.models import utcnow

sync_api = pytest.importorskip("playwright.sync_api")
require_chromium()

pytestmark = pytest.mark.slow
WIDTHS = (1280, 375)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


def _major_outage_two_days_ago(sessions: db.SessionFactory) -> None:
    """Three hours of major outage on one day: 1 - 180/1440 = 87.50 % that day."""
    now = utcnow()
    start = (now - timedelta(days=2)).replace(hour=6, minute=0, second=0, microsecond=0)
    with db.unit_of_work(sessions) as session:
        old = service.publish(
            session=session,
            title="Database outage",
            components=["db"],
            impact="major_outage",
            message="The database is down.",
            now=start,
        )
        service.resolve(session=session, public_id=old.id or 0, message="Back.", now=start + timedelta(hours=3))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the browser does not care which database
def test_the_running_bot_s_page_in_a_browser(make_bot: Callable[..., Bot], browser: Any) -> None:
    bot = make_bot(**page_settings())
    _major_outage_two_days_ago(bot.sessions)
    hidden = bot.declare("Secret internal outage", "P0")
    shown = bot.declare("Checkout down", "P1")
    root = bot.url
    problems: list[str] = []
    pages = []
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
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
        page.goto(root + "/status")
        pages.append((width, context, page))

    submitted = time.monotonic()
    answer = bot.send_ok(
        sr.view_submission(
            Callback.PUBLISH.value,
            publish_values(title="Checkout unavailable", message="Payments fail for most users."),
            secret=SECRET,
            private_metadata=shown.id,
        )
    )
    assert answer == {}
    # Polled over HTTP, which costs the bot what a reload does, without the browser's own time.
    wait_page(bot, "Payments fail for most users.", timeout=5)
    elapsed = time.monotonic() - submitted
    assert elapsed < 1.0, f"on the page {elapsed:.2f} s after the submission"
    for width, context, page in pages:
        page.reload()
        text = page.inner_text("body")
        assert "Checkout unavailable" in text and "Payments fail for most users." in text
        assert "Secret internal outage" not in page.content() and hidden.id not in page.content()
        labels = page.eval_on_selector_all(".bar", "bars => bars.map(b => b.getAttribute('aria-label'))")
        assert any("87.50% uptime" in (label or "") and "major outage 3 h" in (label or "") for label in labels)
        width_px = page.evaluate("document.documentElement.scrollWidth")
        assert width_px <= width, f"scrolls sideways at {width} px"
        target = os.environ.get("STATUS_PAGE_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(target) / f"status-{width}.png"), full_page=True)
        context.close()
    assert problems == [], "\n".join(problems)
