"""GET /oncall/NAME.ics?token=…: a schedule as an iCalendar feed (12 weeks, overrides applied) for calendar apps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, unquote

from bot.oncall import service
from bot.oncall.ical import FEED_WEEKS, check_feed_token, feed_token, schedule_calendar
from bot.oncall.schedules import OverrideIndex
from bot.runtime.http import PrefixRoute
from bot.settings import Settings
from bot.slack.context import Runtime
from storage.db import unit_of_work
from storage.models import utcnow

log = logging.getLogger(__name__)

# (status, body, headers) for a GET of /oncall/NAME.ics, given the path and the query string.
PathRoute = Callable[[str, str], tuple[int, bytes, dict[str, str]]]

PREFIX = "/oncall/"
SUFFIX = ".ics"


def feed_secret(settings: Settings) -> str | None:
    """The key of the calendar feed tokens: ONCALL_FEED_SECRET, else SLACK_SIGNING_SECRET."""
    for secret in (settings.oncall_feed_secret, settings.slack_signing_secret):
        if secret is not None and secret.get_secret_value():
            return secret.get_secret_value()
    return None


def feed_url(settings: Settings, name: str) -> str | None:
    """The feed's URL with its token (None when there is no key: no ONCALL_FEED_SECRET nor signing secret)."""
    secret = feed_secret(settings)
    if secret is None:
        return None
    base = (settings.public_url or f"http://localhost:{settings.port}").rstrip("/")
    return f"{base}{PREFIX}{name}{SUFFIX}?token={feed_token(secret, name)}"


def make_route(rt: Runtime) -> PathRoute | None:
    """The feed handler, or None when no schedule is configured or no key exists."""
    settings = rt.settings
    secret = feed_secret(settings)
    if not settings.oncall.schedules or secret is None:
        return None
    names = {user: person.name for user, person in settings.oncall.people.items() if person.name}

    def route(path: str, query: str) -> tuple[int, bytes, dict[str, str]]:
        name = unquote(path[len(PREFIX):])
        if not name.endswith(SUFFIX) or name[: -len(SUFFIX)] not in settings.oncall.schedules:
            return 404, b"no such schedule", {"Content-Type": "text/plain"}
        name = name[: -len(SUFFIX)]
        token = (parse_qs(query).get("token") or [""])[0]
        if not token or not check_feed_token(secret, name, token):
            return 403, b"missing or wrong token", {"Content-Type": "text/plain"}
        now = utcnow()
        with unit_of_work(rt.sessions) as session:
            rows = service.list_overrides(session=session, schedule=name, start=now - timedelta(days=30),
                                          end=now + timedelta(weeks=FEED_WEEKS + 2))
            index = OverrideIndex([service.to_override(row) for row in rows])
        body = schedule_calendar(name, settings.oncall.schedules[name], index, now=now, names=names)
        headers = {"Content-Type": "text/calendar; charset=utf-8",
                   "Content-Disposition": f'inline; filename="{name}.ics"', "Cache-Control": "private, max-age=300"}
        return 200, body, headers

    return route


def prefix_route(feed: PathRoute) -> PrefixRoute:
    """The feed as the HTTP server's prefix route (it passes the path with its query string)."""

    def route(target: str, _headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        path, _, query = target.partition("?")
        return feed(path, query)

    return route
