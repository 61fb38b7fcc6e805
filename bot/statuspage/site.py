"""The status site: every path rendered once per change and cached, served WSGI-agnostically, exported.

Replicas each keep their own cache; a version row bumped in every change's transaction (polled at
most once a second) tells each one to drop it, so a change shows everywhere within about a second.
Entries also age out after `max_age`, since uptime bars and maintenance states move with the clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from bot.statuspage import api, encoding, feeds, pages, service
from bot.statuspage.config import StatusPageConfig
from bot.statuspage.links import depth_base
from bot.statuspage.summary import PageInfo, Summary, summarise
from storage import db
from storage.models import utcnow

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
Response = tuple[int, Headers, bytes]

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
CONTENT_TYPES = {".css": "text/css; charset=utf-8", ".atom": "application/atom+xml", ".rss": "application/rss+xml"}
CACHE_CONTROL = "public, max-age=10"
PRERENDERED = ("/status", "/api/v2/summary.json", "/api/v2/status.json")
INCIDENT_PATH = re.compile(r"^/status/incidents/([0-9]{1,12})$")


@dataclass(frozen=True)
class Rendered:
    status: int
    content_type: str
    body: bytes
    etag: str
    gzipped: bytes | None = None  # the body gzipped once, here, for the clients that accept it


def _rendered(status: int, content_type: str, body: bytes, *, compress: bool = True) -> Rendered:
    return Rendered(status, content_type, body, _etag(body), encoding.compress(body) if compress else None)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _normalise(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/") if len(path) > 1 else path


def _static_files() -> dict[str, Rendered]:
    files = {}
    for file in sorted(pages.STATIC.iterdir()):
        if file.is_file():
            kind = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
            files[f"/status/static/{file.name}"] = _rendered(200, kind, file.read_bytes())
    return files


class StatusSite:
    def __init__(
        self,
        sessions: db.SessionFactory,
        config: StatusPageConfig,
        info: PageInfo,
        *,
        clock: Callable[[], datetime] = utcnow,
        poll_interval: float = 1.0,
        max_age: float = 30.0,
        base: str = "/",
        background: bool = True,
    ) -> None:
        """`base` is the path prefix the site is served under ("/" unless behind a proxy's sub-path)."""
        self._sessions = sessions
        self._config = config
        self._info = info
        self._clock = clock
        self._poll_interval = poll_interval
        self._max_age = max_age
        self._base = base
        self._background = background
        self._refresher: threading.Thread | None = None
        self._static = _static_files()
        self._lock = threading.Lock()
        self._version: int | None = None
        self._polled_at: datetime | None = None
        self._summary: Summary | None = None
        self._cache: dict[str, Rendered] = {}

    # -- cache ------------------------------------------------------------------------------------

    def _current_version(self, now: datetime) -> int:
        if self._polled_at is None or (now - self._polled_at).total_seconds() >= self._poll_interval:
            try:
                with db.unit_of_work(self._sessions) as session:
                    self._version = service.current_version(session=session)
            except sa.exc.DBAPIError:
                if self._version is None:
                    raise
                # The page matters most when things are broken: keep serving what we have.
                log.warning("status page: cannot read the version, serving the cached page", exc_info=True)
            self._polled_at = now
        assert self._version is not None
        return self._version

    def _stale(self, summary: Summary, now: datetime) -> bool:
        version = self._current_version(now)
        return summary.snapshot.version != version or (now - summary.now).total_seconds() >= self._max_age

    def _load(self, now: datetime) -> tuple[Summary, dict[str, Rendered]]:
        with db.unit_of_work(self._sessions) as session:
            snapshot = service.snapshot(session=session, now=now)
        summary = summarise(snapshot, self._config, self._info)
        return summary, {}

    def _fresh_summary(self) -> Summary:
        """The summary the cache holds (call under the lock). When it is stale (the version moved, or
        it is older than max_age) it is rebuilt. In the background (the default) no request waits on
        the database once the first page is rendered: a request whose poll is due starts a thread
        that reads the version and, if it moved, renders; meanwhile every request, that one included,
        is served the cached page. On SQLite even that one-row read begins a write transaction
        (storage/db.py), so it queues behind the worker's writes: under the lock it held up every
        page request with it, and past the route's cap of 16, answered them 503."""
        now = self._clock()
        summary = self._summary
        if summary is None or not self._background:
            if summary is not None and not self._stale(summary, now):
                return summary
            self._summary, self._cache = self._load(now)
            # The snapshot read the version in its own transaction: that is the poll.
            self._version, self._polled_at = self._summary.snapshot.version, now
            return self._summary
        due = self._polled_at is None or (now - self._polled_at).total_seconds() >= self._poll_interval
        aged = (now - summary.now).total_seconds() >= self._max_age
        if (due or aged) and (self._refresher is None or not self._refresher.is_alive()):
            self._polled_at = now
            self._refresher = threading.Thread(
                target=self._refresh, args=(now, summary, aged), name="statuspage-refresh", daemon=True
            )
            self._refresher.start()
        return summary

    def _refresh(self, now: datetime, summary: Summary, aged: bool) -> None:
        try:
            if not aged:
                try:
                    with db.unit_of_work(self._sessions) as session:
                        version = service.current_version(session=session)
                except sa.exc.DBAPIError:
                    log.warning("status page: cannot read the version, serving the cached page", exc_info=True)
                    return
                if version == summary.snapshot.version:
                    return
            summary, cache = self._load(now)
            for path in PRERENDERED:  # the paths widgets and people poll: ready before the swap
                cache[path] = self._render(path, summary, self._base)
        except Exception:
            log.exception("status page: refresh failed, still serving the previous version")
            return
        with self._lock:
            self._summary, self._cache = summary, cache
            self._version = summary.snapshot.version

    def wait_for_refresh(self, timeout: float | None = None) -> None:
        """Wait for a background refresh under way (tests, and export after a change)."""
        refresher = self._refresher
        if refresher is not None:
            refresher.join(timeout)

    def summary(self) -> Summary:
        with self._lock:
            return self._fresh_summary()

    # -- rendering --------------------------------------------------------------------------------

    def _render(self, path: str, summary: Summary, base: str, *, compress: bool = True) -> Rendered:
        """`path` rendered; gzipped too unless `compress` is False (the export writes plain files)."""
        body: bytes | None
        content_type = HTML
        status = 200
        if path == "/status":
            body = pages.render_status(summary, base=base).encode()
        elif path == "/status/history":
            body = pages.render_history(summary, base=base).encode()
        elif path == "/status/history.atom":
            body, content_type = feeds.atom(summary, base=base), CONTENT_TYPES[".atom"]
        elif path == "/status/history.rss":
            body, content_type = feeds.rss(summary, base=base), CONTENT_TYPES[".rss"]
        elif path in api.ENDPOINTS:
            document = api.ENDPOINTS[path](summary)
            body, content_type = json.dumps(document, ensure_ascii=False).encode(), JSON
        elif (match := INCIDENT_PATH.match(path)) is not None:
            html = pages.render_incident(summary, int(match.group(1)), base=base)
            body = html.encode() if html is not None else None
        else:
            body = None
        if body is None:
            status, body = 404, pages.render_not_found(summary, base=base).encode()
        return _rendered(status, content_type, body, compress=compress)

    def _headers(self, path: str, rendered: Rendered, body: bytes, etag: str, gzipped: bool) -> Headers:
        headers = [
            ("Content-Type", rendered.content_type),
            ("Content-Length", str(len(body))),
            ("ETag", etag),
            ("Cache-Control", CACHE_CONTROL if rendered.status == 200 else "no-cache"),
            *pages.security_headers(),
        ]
        if rendered.gzipped is not None:  # both representations: a cache must not mix them up
            headers.append(encoding.VARY)
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        if path.startswith("/api/"):
            headers.append(("Access-Control-Allow-Origin", "*"))  # status widgets on other sites read it
        return headers

    def serve(self, path: str, *, if_none_match: str | None = None, accept_encoding: str | None = None) -> Response:
        """(status, headers, body) for a GET of `path` (query string ignored); 304 when the ETag
        matches; gzipped when `accept_encoding` (the request's Accept-Encoding) admits it."""
        path = _normalise(path)
        if path in self._static:
            return self._answer(path, self._static[path], if_none_match, accept_encoding)
        with self._lock:
            summary = self._fresh_summary()
            cached = self._cache.get(path)
            if cached is None:
                cached = self._render(path, summary, self._base)
                if cached.status == 200:  # unknown paths are not kept: anyone can ask for any number
                    self._cache[path] = cached
        return self._answer(path, cached, if_none_match, accept_encoding)

    def serve_cached(
        self, path: str, *, if_none_match: str | None = None, accept_encoding: str | None = None
    ) -> Response | None:
        """`serve`'s answer when it is a static file or a cache hit, which neither renders nor waits
        on the database or the lock (in the background mode, once the first page is rendered);
        None otherwise."""
        path = _normalise(path)
        if path in self._static:
            return self._answer(path, self._static[path], if_none_match, accept_encoding)
        if not self._background or self._summary is None:  # the first render reads the database
            return None
        # Never waits: it runs on the HTTP server's event loop (bot/runtime/http.py), where a wait
        # for a render under the lock would hold up every request. The cache needs no lock to
        # read (a refresh replaces it whole; `serve` only adds to it); the lock is only tried,
        # to start a refresh when one is due, and a render holding it just means not this time.
        cached = self._cache.get(path)
        if self._lock.acquire(blocking=False):
            try:
                self._fresh_summary()  # at most starts the refresh thread
            finally:
                self._lock.release()
        return None if cached is None else self._answer(path, cached, if_none_match, accept_encoding)

    def _answer(
        self, path: str, rendered: Rendered, if_none_match: str | None, accept_encoding: str | None
    ) -> Response:
        body, etag, gzipped = rendered.body, rendered.etag, False
        if rendered.gzipped is not None and encoding.accepts_gzip(accept_encoding):
            body, etag, gzipped = rendered.gzipped, encoding.gzip_etag(rendered.etag), True
        headers = self._headers(path, rendered, body, etag, gzipped)
        if rendered.status == 200 and _matches(if_none_match, etag):
            return 304, [(k, v) for k, v in headers if k != "Content-Length"], b""
        return rendered.status, headers, body

    # -- static export ----------------------------------------------------------------------------

    def export(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write the whole site, relatively linked, into `directory`, replacing it whole.

        It is written into a sibling temporary folder and renamed into place, so a web server
        reading `directory` sees the old site or the new one, never half of each.
        """
        target = Path(directory).absolute()
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"{target} exists and is not a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        summary, _ = self._load(self._clock())  # always current, whatever the cache holds
        paths = [
            "/status",
            "/status/history",
            *(f"/status/incidents/{i.id}" for i in summary.snapshot.incidents),
            "/status/history.atom",
            "/status/history.rss",
            *api.ENDPOINTS,
        ]
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
        try:
            written = []
            for path in paths:
                rendered = self._render(path, summary, depth_base(path), compress=False)
                relative = path.lstrip("/")
                file = (
                    staging / relative / "index.html" if "." not in relative.rsplit("/", 1)[-1] else staging / relative
                )
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(rendered.body)
                written.append(str(file.relative_to(staging)))
            for path, static in self._static.items():
                file = staging / path.lstrip("/")
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(static.body)
                written.append(str(file.relative_to(staging)))
            (staging / "index.html").write_text(
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Status</title>'
                '<meta http-equiv="refresh" content="0; url=status/index.html"></head>'
                '<body><main><a href="status/index.html">Current status</a></main></body></html>\n'
            )
            written.append("index.html")
            staging.chmod(0o755)  # mkdtemp makes it private; a web server must read it
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if target.exists():
            # Two renames: POSIX cannot swap a folder for another in one; the old one stays whole
            # until the new one is complete, and goes once the new one is in place.
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
        return sorted(written)
