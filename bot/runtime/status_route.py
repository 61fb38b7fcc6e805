"""The status page's HTTP routes (STATUS_PAGE=true): the cached StatusSite, under a cap of its own.

A cache hit is answered on the HTTP server's event loop (`cached`): it takes microseconds, never
waits on the database (the version poll runs in the site's refresh thread) nor on the site's lock,
and holds no thread of the pool that serves /slack/events. Under 64 page clients, a thread per
page request meant 64 threads taking turns at the GIL (p99 100-200 ms for bytes in memory, and
slower acks); on the loop the page's p99 is a few milliseconds. What may wait on the database or
render (the first render, a path not yet cached, a hit while a render holds the lock) runs on the
pool, capped: at most LIMIT such requests at once; one more is answered 503 with Retry-After at
once, and the rest of the pool stays free for Slack's acks. A second server would need a second
port and address for operators to route; the loop and the cap give the same protection on the one
`PORT` that CONTRACT.md promises.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

from bot.runtime.http import HttpServer
from bot.slack.context import Runtime
from bot.statuspage.site import StatusSite
from bot.statuspage.summary import PageInfo

log = logging.getLogger(__name__)

PREFIXES = ("/status", "/api/v2")
LIMIT = 16  # of http.THREADS (64): the page never holds more than a quarter of the pool
RETRY_AFTER = "1"
# How often each replica reads the version row: a change shows within this plus one render, so
# under a second even on a busy host; one primary-key read per replica, twice a second.
POLL_INTERVAL = 0.5
BUSY_HEADERS = {"Content-Type": "text/plain; charset=utf-8", "Retry-After": RETRY_AFTER, "Cache-Control": "no-store"}


class StatusRoute:
    def __init__(self, site: StatusSite, *, ready: Callable[[], bool], limit: int = LIMIT) -> None:
        self.site = site
        self._ready = ready
        self._slots = threading.BoundedSemaphore(limit)

    def cached(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]] | None:
        """The answer if it is at hand (never waits: it runs on the event loop), else None."""
        if not self._ready():
            return None
        hit = self.site.serve_cached(path, **_conditions(headers))
        return None if hit is None else (hit[0], hit[2], dict(hit[1]))

    def __call__(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """What `cached` could not answer (the server asked it first): a render, capped."""
        if not self._ready():
            return 503, b"starting", dict(BUSY_HEADERS)
        if not self._slots.acquire(blocking=False):
            return 503, b"busy, retry in a second", dict(BUSY_HEADERS)
        try:
            status, answer, body = self.site.serve(path, **_conditions(headers))
        except sa.exc.SQLAlchemyError as exc:
            # Only before the first render: afterwards the site serves its last page through an outage.
            log.warning("status page unavailable: %s", type(exc).__name__)
            return 503, b"status page unavailable, retry shortly", dict(BUSY_HEADERS)
        finally:
            self._slots.release()
        return status, body, dict(answer)


def _conditions(headers: dict[str, str]) -> dict[str, str | None]:
    """What of the request's header fields chooses the answer (the server lower-cases names)."""
    return {"if_none_match": headers.get("if-none-match"), "accept_encoding": headers.get("accept-encoding")}


def page_info(rt: Runtime) -> PageInfo:
    return PageInfo(name=rt.settings.status_page_title, url=rt.settings.status_page_url)


def install(server: HttpServer, rt: Runtime, *, ready: Callable[[], bool]) -> StatusRoute | None:
    """Serve the site on `server` when STATUS_PAGE is on; None (nothing served) otherwise."""
    if not rt.settings.status_page:
        return None
    site = StatusSite(rt.sessions, rt.settings.status_page_config, page_info(rt), poll_interval=POLL_INTERVAL)
    route = StatusRoute(site, ready=ready)
    for prefix in PREFIXES:
        server.add_prefix_route(prefix, route, cached=route.cached)
    return route
