"""The HTTP server: /slack/events, /healthz and the optional routes, served by cheroot.

Python's documentation says http.server is not for production. cheroot (CherryPy's WSGI server,
pure Python, maintained since 2017) gives what an ack path needs and nothing it does not: a fixed
pool of threads (bounded concurrency; an ack is never queued behind a request's own work, since
that work runs in the inbox workers), a socket timeout for clients that send slowly, HTTP/1.1
keep-alive with idle connections parked in a selector rather than holding a thread, a 413 for
oversized bodies before they are read, and a stop that closes the listening socket, then waits
for the requests in flight. gunicorn would add a process model of its own (we have one), uvicorn
and granian an event loop that Bolt's sync listeners would block, and waitress documents no stop
that waits for the requests in flight.
"""

from __future__ import annotations

import http
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cheroot import wsgi

from bot.slack.context import Runtime
from storage import db, inbox, spool

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's own payloads are far smaller; Alertmanager's are capped here too
# Requests served at once. Acks are short (no Web API call, one INSERT), but a thread is also
# held by a client that sends its body slowly (up to CLIENT_TIMEOUT per read), so there are
# enough for slow clients not to hold up Slack; threads that wait on a socket cost no CPU.
THREADS = 64
# Pending connections the kernel keeps for us: in a burst of Slack requests a backlog of 5 dropped
# the rest, and the sender's SYN retry added a second (then three) to their acks.
BACKLOG = 128
CLIENT_TIMEOUT = 5  # seconds a client may take to send the next part of its request
SHUTDOWN_TIMEOUT = 30  # seconds SIGTERM waits for requests in flight
DRAIN_GRACE = 0.3  # seconds; see HttpServer.stop
DISCARD_MAX, DISCARD_SECONDS = 16 * MAX_BODY, 2.0  # how much of a refused body is read to answer 413

# (status, body, headers) for a request's headers (lower case) and body.
Route = Callable[[dict[str, str], bytes], tuple[int, bytes, dict[str, str]]]
# The same for a GET or HEAD under a path prefix, given the path (query string included) and headers.
PrefixRoute = Callable[[str, dict[str, str]], tuple[int, bytes, dict[str, str]]]


class Health:
    """Ready once migrations are applied and while the database answers (GET /healthz)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.migrated = threading.Event()
        # Optional figures for `GET /healthz?detail=1`, each read from the database.
        self.details: dict[str, Callable[[Any], int]] = {"inbox_backlog": self._backlog}

    def _backlog(self, connection: Any) -> int:
        # On SQLite, acked requests wait in the spool until a worker moves them to the inbox.
        spooled = spool.for_engine(self.rt.engine)
        return inbox.backlog(connection) + (spooled.pending() if spooled is not None else 0)

    def check(self) -> bool:
        if not self.migrated.is_set():
            return False
        return db.ping(self.rt.engine)

    def detail(self) -> dict[str, Any]:
        ok = self.check()
        figures: dict[str, Any] = {"status": "ok" if ok else "unavailable", "migrated": self.migrated.is_set()}
        if ok:
            try:
                with self.rt.engine.connect() as connection:
                    for name, read in self.details.items():
                        figures[name] = read(connection)
            except Exception as exc:  # the figures are extras: /healthz must still answer
                log.warning("health detail failed: %s", type(exc).__name__)
        return figures


class HttpServer:
    def __init__(self, *, host: str, port: int, health: Health) -> None:
        self.host = host
        self.requested_port = port
        self.health = health
        self.routes: dict[tuple[str, str], Route] = {}
        self.prefix_routes: list[tuple[str, PrefixRoute]] = []
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.bind_addr[1])

    def add_route(self, method: str, path: str, route: Route) -> None:
        self.routes[(method, path)] = route

    def add_prefix_route(self, prefix: str, route: PrefixRoute) -> None:
        """GET and HEAD of `prefix` and every path under it (a HEAD answers the GET's headers)."""
        self.prefix_routes.append((prefix.rstrip("/"), route))

    def start(self) -> None:
        """Open the listening socket (OSError if the port is taken) and serve on a thread."""
        server = wsgi.Server(
            (self.host, self.requested_port),
            self._wsgi,
            numthreads=THREADS,
            max=THREADS,
            request_queue_size=BACKLOG,
            timeout=CLIENT_TIMEOUT,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            server_name="incident-bot",
        )
        server.max_request_body_size = 0  # enforced in _wsgi, which answers before it drains
        server.prepare()
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking requests, then wait for the ones in flight."""
        if self._server is not None:
            # cheroot's stop closes the kept-alive connections that no thread is reading yet,
            # including one whose next request has just begun to arrive. A moment for its
            # selector to hand those to a thread first; stop() then waits for the threads.
            time.sleep(DRAIN_GRACE)
            self._server.stop()
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT)

    # -- the WSGI application -------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
        if _declared_length(environ) > MAX_BODY:
            start_response("413 Payload Too Large", [("Content-Length", "22"), ("Connection", "close")])
            return _answer_then_drain(b"request body too large", environ["wsgi.input"])
        status, body, headers = self._serve(environ, method, path)
        length = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        headers["Content-Length"] = length if method == "HEAD" and length is not None else str(len(body))
        if method == "HEAD":
            body = b""  # cheroot sends what it is given, even to a HEAD
        start_response(f"{status} {_phrase(status)}", list(headers.items()))
        return [body]

    def _serve(self, environ: dict[str, Any], method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
        if method == "GET" and path == "/healthz":
            if "detail=1" in (environ.get("QUERY_STRING") or ""):
                figures = self.health.detail()
                code = 200 if figures["status"] == "ok" else 503
                return code, json.dumps(figures).encode(), {"Content-Type": "application/json"}
            ok = self.health.check()
            return (200, b"ok", {"Content-Type": "text/plain"}) if ok else (503, b"unavailable", {})
        route = self.routes.get((method, path))
        if route is None and method in ("GET", "HEAD"):
            for prefix, prefixed in self.prefix_routes:
                if path == prefix or path.startswith(prefix + "/"):
                    query = environ.get("QUERY_STRING") or ""
                    try:
                        return prefixed(path + ("?" + query if query else ""), _request_headers(environ))
                    except Exception:
                        log.exception("unhandled error serving %s %s", method, prefix)
                        return 500, b"internal error", {}
        if route is None:
            known = {p for _, p in self.routes} | {"/healthz"}
            return (405, b"method not allowed", {}) if path in known else (404, b"not found", {})
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = -1
        if size < 0:
            return 400, b"bad Content-Length", {}
        body = environ["wsgi.input"].read(size) if size else b""
        headers = _request_headers(environ)
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        headers["content-length"] = str(size)
        try:
            return route(headers, body)
        except Exception:
            # Never a traceback to the caller; the log has it.
            log.exception("unhandled error serving %s %s", method, path)
            return 500, b"internal error", {}


def _request_headers(environ: dict[str, Any]) -> dict[str, str]:
    return {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}


def _declared_length(environ: dict[str, Any]) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # _serve answers 400


def _answer_then_drain(answer: bytes, body: Any) -> Iterator[bytes]:
    """Send the 413 first, then read and drop what the client still sends (within limits):
    a client still sending its body would otherwise get a reset instead of our answer."""
    yield answer
    remaining, deadline = DISCARD_MAX, time.monotonic() + DISCARD_SECONDS
    try:
        while remaining > 0 and time.monotonic() < deadline:
            chunk = body.read(min(remaining, 65536))
            if not chunk:
                return
            remaining -= len(chunk)
    except OSError:
        return  # the client hung up or stalled: the 413 was sent


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
