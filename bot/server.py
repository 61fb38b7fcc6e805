"""The HTTP server: /slack/events, /healthz and /alerts/alertmanager, plus Socket Mode start-up.

A threading server (one thread per request, joined on shutdown) rather than Bolt's development
server: acks must not queue behind a slow request, and SIGTERM must let in-flight requests finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from slack_bolt import App, BoltRequest

from bot.runtime import Runtime
from storage import db

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's own payloads are far smaller; Alertmanager's are capped here too
DISCARD_MAX, DISCARD_SECONDS = 16 * MAX_BODY, 2.0  # how much of a refused body is read to answer 413


class _HTTPServer(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: in a burst of Slack requests the rest were dropped, and
    # the sender's SYN retry added a second (then three) to their acks.
    request_queue_size = 128


# (status, body, headers) for a request path, method, headers and body.
Route = Callable[[dict[str, str], bytes], tuple[int, bytes, dict[str, str]]]


class Health:
    """Ready once migrations are applied and while the database answers (GET /healthz)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.migrated = threading.Event()

    def check(self) -> bool:
        if not self.migrated.is_set():
            return False
        return db.ping(self.rt.engine)


class Server:
    def __init__(self, rt: Runtime, *, app: App | None, host: str, port: int, health: Health) -> None:
        self.rt = rt
        self.app = app
        self.health = health
        self.routes: dict[tuple[str, str], Route] = {}
        if app is not None:
            self.routes[("POST", "/slack/events")] = self._slack
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "incident-bot"

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        self.httpd = _HTTPServer((host, port), Handler)
        self.httpd.daemon_threads = False  # so shutdown waits for in-flight requests
        self.httpd.block_on_close = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def add_route(self, method: str, path: str, route: Route) -> None:
        self.routes[(method, path)] = route

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking requests, then wait for the ones in flight."""
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- dispatch -------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(handler.path).path
        if method == "GET" and path == "/healthz":
            ok = self.health.check()
            self._send(handler, 200 if ok else 503, b"ok" if ok else b"unavailable", {"Content-Type": "text/plain"})
            return
        route = self.routes.get((method, path))
        if route is None:
            known = {p for _, p in self.routes} | {"/healthz"}
            status = 405 if path in known else 404
            self._drain(handler)
            self._send(handler, status, b"not found" if status == 404 else b"method not allowed", {})
            return
        length = handler.headers.get("Content-Length")
        try:
            size = int(length) if length is not None else 0
        except ValueError:
            size = -1
        if size < 0:  # a negative length would read until the client hangs up
            self._send(handler, 400, b"bad Content-Length", {}, close=True)
            return
        if size > MAX_BODY:
            self._send(handler, 413, b"request body too large", {}, close=True)
            self._discard(handler, size)
            return
        body = handler.rfile.read(size) if size else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            status, payload, extra = route(headers, body)
        except Exception:
            # Never a traceback to the caller; the log has it.
            log.exception("unhandled error serving %s %s", method, path)
            status, payload, extra = 500, b"internal error", {}
        self._send(handler, status, payload, extra)

    def _discard(self, handler: BaseHTTPRequestHandler, size: int) -> None:
        """Read and drop a refused body (within limits) before closing: a client still sending it
        would otherwise get a connection reset instead of our answer."""
        remaining, deadline = min(size, DISCARD_MAX), time.monotonic() + DISCARD_SECONDS
        try:
            handler.connection.settimeout(DISCARD_SECONDS)
            while remaining > 0 and time.monotonic() < deadline:
                chunk = handler.rfile.read1(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            return  # the client hung up or stalled: nothing left to answer, the 413 was sent

    def _drain(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY:
            handler.rfile.read(length)

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], close: bool = False
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            if key.lower() != "content-length":
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        if close:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        handler.wfile.write(body)

    def _slack(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        assert self.app is not None
        if not self.health.migrated.is_set():
            return 503, b"starting", {}
        response = self.app.dispatch(BoltRequest(body=body.decode("utf-8", errors="replace"), headers=headers))
        flat = {k: v[0] if isinstance(v, list) else str(v) for k, v in response.headers.items()}
        return response.status, response.body.encode("utf-8"), flat
