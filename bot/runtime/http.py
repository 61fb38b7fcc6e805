"""The HTTP server: /slack/events, /healthz and the optional routes, served by uvicorn.

Python's documentation says http.server is not for production. uvicorn (with httptools, the C
HTTP parser it prefers) parses every request on one asyncio event loop, so a connection costs no
thread: a client that sends slowly, or keeps its connection open, holds a coroutine, not a worker.
The routes themselves are synchronous (Bolt, SQLAlchemy) and run on a fixed pool of THREADS
threads; only a route that says it never blocks (the status page's cache hits) answers on the
loop itself. That is what lets the page take thousands of requests a second during an outage
without slowing the acks: with a thread per request (cheroot, before issue 14), 64 busy page
clients meant 64 threads taking turns at the GIL and a p99 of 100-200 ms for answers held in
memory; on the loop the same bytes take well under 10 ms (README, Benchmarks).

What an ack path needs is kept: bounded concurrency for the routes' work, a timeout for clients
that send slowly, HTTP/1.1 keep-alive, a 413 for oversized bodies before they are read, and a stop
that closes the listening socket, then waits for the requests in flight. gunicorn would add a
process model of its own (we have one); waitress documents no stop that waits for the requests in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn

from bot.runtime.http_protocol import Loop, Protocol, now
from bot.slack.context import Runtime
from storage import db, inbox, spool

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's own payloads are far smaller; Alertmanager's are capped here too
# Routes served at once. Acks are short (no Web API call, one INSERT); the pool bounds what the
# routes may hold (database connections among them). Waiting for a slow client's body costs no
# thread: the event loop reads it, and only a whole request reaches the pool.
THREADS = 64
# Pending connections the kernel keeps for us: in a burst of Slack requests a backlog of 5 dropped
# the rest, and the sender's SYN retry added a second (then three) to their acks.
BACKLOG = 128
CLIENT_TIMEOUT = 5  # seconds a client may take to send the next part of its body, or stay idle
SHUTDOWN_TIMEOUT = 30  # seconds SIGTERM waits for requests in flight
DRAIN_GRACE = 0.3  # seconds; see HttpServer.stop
SWITCH_INTERVAL = 0.001  # seconds; see HttpServer.start
DISCARD_MAX, DISCARD_SECONDS = 16 * MAX_BODY, 2.0  # how much of a refused body is read to answer 413

Answer = tuple[int, bytes, dict[str, str]]
# (status, body, headers) for a request's headers (lower case) and body.
Route = Callable[[dict[str, str], bytes], Answer]
# The same for a GET or HEAD under a path prefix, given the path (query string included) and headers.
PrefixRoute = Callable[[str, dict[str, str]], Answer]
# A prefix route's answer when it has one at hand (a cache hit), else None. It runs on the event
# loop, so it must never block: no database, no rendering, no lock it could wait for.
CachedRoute = Callable[[str, dict[str, str]], Answer | None]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


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


class _BodyProblem(Exception):
    def __init__(self, answer: Answer | None, *, drain: bool = False) -> None:
        self.answer = answer  # None: the client has gone, nothing to answer
        self.drain = drain  # read (and drop) what the client still sends, after the answer


class HttpServer:
    def __init__(self, *, host: str, port: int, health: Health) -> None:
        self.host = host
        self.requested_port = port
        self.health = health
        self.routes: dict[tuple[str, str], Route] = {}
        self.prefix_routes: list[tuple[str, PrefixRoute, CachedRoute | None]] = []
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        assert self._port is not None, "the server is not started"
        return self._port

    def add_route(self, method: str, path: str, route: Route) -> None:
        self.routes[(method, path)] = route

    def add_prefix_route(self, prefix: str, route: PrefixRoute, *, cached: CachedRoute | None = None) -> None:
        """GET and HEAD of `prefix` and every path under it (a HEAD answers the GET's headers);
        `cached`, if given, is asked first, on the event loop (see CachedRoute)."""
        self.prefix_routes.append((prefix.rstrip("/"), route, cached))

    def start(self) -> None:
        """Open the listening socket (OSError if the port is taken) and serve on a thread."""
        # This process is I/O-bound: a thread woken by its socket or the database waits for a busy
        # thread to hand over the GIL at most this long (Python's default is 5 ms). Under 32
        # concurrent acks, each crossing the loop, a pool thread and the inbox writer, those waits
        # add up (one benchmark run on PostgreSQL: ack p50 46 ms at 5 ms, 36 ms at 1 ms). The
        # worker process, forked before this, keeps the default.
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._socket = _listen(self.host, self.requested_port)
        self._port = int(self._socket.getsockname()[1])
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="http")
        config = uvicorn.Config(
            self._asgi,
            http=Protocol,
            ws="none",  # an Upgrade is answered as a plain request, whatever is installed
            lifespan="off",
            interface="asgi3",
            log_config=None,  # our logging (bot/runtime/logs.py) stays as it is
            # uvicorn's warnings are about clients ("Invalid HTTP request received."): anyone could
            # fill the log with them. Its errors (a failure in the server itself) are kept.
            log_level="error",
            access_log=False,
            server_header=False,
            proxy_headers=False,  # nothing here reads the client address or scheme it would rewrite
            backlog=BACKLOG,
            timeout_keep_alive=CLIENT_TIMEOUT,
            timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve_forever, name="http", daemon=True)
        self._thread.start()
        deadline = now() + 10
        while not self._server.started and self._thread.is_alive() and now() < deadline:
            time.sleep(0.005)
        if not self._server.started:
            raise OSError(f"the HTTP server did not start on {self.host}:{self.port}")

    def _serve_forever(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            with asyncio.Runner(loop_factory=Loop) as runner:
                runner.run(self._server.serve(sockets=[self._socket]))
        except Exception:
            log.exception("the HTTP server stopped on an error")

    def stop(self) -> None:
        """Stop taking requests, then wait for the ones in flight."""
        if self._server is not None and self._thread is not None and self._thread.is_alive():
            # Requests whose bytes are already on their way when we are told to stop: a moment
            # for the loop to read them, so they are in flight (and answered) rather than cut.
            time.sleep(DRAIN_GRACE)
            self._server.should_exit = True  # uvicorn closes the socket, then waits for requests
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT + 5)
        if self._pool is not None:
            # uvicorn has waited SHUTDOWN_TIMEOUT for the requests in flight (each waits on its
            # route) and cancelled the rest: a route still running then (a hung query) is not
            # waited for here, so SIGTERM ends within its bound.
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._socket is not None:
            self._socket.close()

    # -- the ASGI application -------------------------------------------------------------------

    async def _asgi(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"] or "/"
        query = scope["query_string"].decode("latin-1")
        headers = _request_headers(scope["headers"])
        answer = self._cached(method, path, query, headers)
        if answer is None:
            try:
                body = await _read_body(receive, headers)
            except _BodyProblem as problem:
                if problem.answer is not None:
                    await _respond(send, method, problem.answer, more=problem.drain)
                if problem.drain:
                    await _drain(receive)
                    await send({"type": "http.response.body", "body": b""})
                return
            loop = asyncio.get_running_loop()
            assert self._pool is not None
            answer = await loop.run_in_executor(self._pool, self._serve, method, path, query, headers, body)
        await _respond(send, method, answer)

    def _prefixed(self, method: str, path: str) -> tuple[str, PrefixRoute, CachedRoute | None] | None:
        """The prefix route that serves this GET or HEAD, if any (an exact route comes first)."""
        if method not in ("GET", "HEAD") or (method, path) in self.routes:
            return None
        return next(
            (entry for entry in self.prefix_routes if path == entry[0] or path.startswith(entry[0] + "/")), None
        )

    def _cached(self, method: str, path: str, query: str, headers: dict[str, str]) -> Answer | None:
        entry = self._prefixed(method, path)
        if entry is None or entry[2] is None:
            return None
        try:
            return entry[2](_target(path, query), headers)
        except Exception:
            log.exception("unhandled error serving %s %s from the cache", method, entry[0])
            return None  # the route itself, on the pool, answers or logs it

    def _serve(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        if method == "GET" and path == "/healthz":
            if "detail=1" in query:
                figures = self.health.detail()
                code = 200 if figures["status"] == "ok" else 503
                return code, json.dumps(figures).encode(), {"Content-Type": "application/json"}
            ok = self.health.check()
            return (200, b"ok", {"Content-Type": "text/plain"}) if ok else (503, b"unavailable", {})
        entry = self._prefixed(method, path)
        if entry is not None:
            try:
                return entry[1](_target(path, query), headers)
            except Exception:
                log.exception("unhandled error serving %s %s", method, entry[0])
                return 500, b"internal error", {}
        route = self.routes.get((method, path))
        if route is None:
            known = {p for _, p in self.routes} | {"/healthz"}
            return (405, b"method not allowed", {}) if path in known else (404, b"not found", {})
        headers["content-length"] = str(len(body))
        try:
            return route(headers, body)
        except Exception:
            # Never a traceback to the caller; the log has it.
            log.exception("unhandled error serving %s %s", method, path)
            return 500, b"internal error", {}


def _target(path: str, query: str) -> str:
    return path + ("?" + query if query else "")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on each connection (it checks the protocol):
    # without it a small answer written as head and body waited 40 ms for a delayed ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(BACKLOG)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener


def _request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names; a repeated header's values joined with ", " (as WSGI servers join them)."""
    values: dict[str, list[str]] = {}
    for name, value in raw:
        values.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return {key: ", ".join(texts) for key, texts in values.items()}


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    """The whole body, or _BodyProblem: too large (413) or too slow (408). (A malformed
    Content-Length never gets here: httptools answers it 400.)"""
    too_large = _BodyProblem((413, b"request body too large", {"Connection": "close"}), drain=True)
    if int(headers.get("content-length") or 0) > MAX_BODY:
        raise too_large
    chunks, received = [], 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), CLIENT_TIMEOUT)
        except TimeoutError:
            raise _BodyProblem((408, b"request body too slow", {"Connection": "close"})) from None
        if message["type"] == "http.disconnect":
            raise _BodyProblem(None)
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > MAX_BODY:  # a chunked body with no length up front
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    """After a 413, read and drop what the client still sends (within limits): a client still
    sending its body would otherwise get a reset instead of our answer."""
    remaining, deadline = DISCARD_MAX, now() + DISCARD_SECONDS
    with contextlib.suppress(TimeoutError):
        while remaining > 0:
            message = await asyncio.wait_for(receive(), max(deadline - now(), 0.001))
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            remaining -= len(message.get("body", b""))


async def _respond(send: Send, method: str, answer: Answer, *, more: bool = False) -> None:
    """The answer's head and body (none to a HEAD, which keeps the GET's Content-Length); with
    `more`, the response is left open (the caller ends it with an empty body)."""
    status, body, headers = answer
    length = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
    fields = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if k.lower() != "content-length"
    ]
    if status not in (204, 304):  # RFC 9110: neither carries a Content-Length
        size = length if method == "HEAD" and length is not None else str(len(body))
        fields.append((b"content-length", size.encode()))
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body, "more_body": more})
