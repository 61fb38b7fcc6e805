"""A fake Slack Web API on loopback that records what the real slack_sdk sends and answers like Slack does."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

__all__ = [
    "DEFAULT_AUTH",
    "DEFAULT_CHANNELS",
    "RESPONSE_URL_METHOD",
    "UPLOAD_METHOD",
    "Call",
    "FakeSlack",
    "fake_slack",
]

#: Calls to URLs handed out by `FakeSlack.response_url()` are recorded under this method name.
RESPONSE_URL_METHOD = "response_url"
#: The raw-bytes POST to a `files.getUploadURLExternal` upload_url is recorded under this method name.
UPLOAD_METHOD = "file_upload"

DEFAULT_CHANNELS: dict[str, str] = {"ops-incidents": "C0INCIDENTS", "ops-alerts": "C0ALERTS"}
DEFAULT_AUTH: dict[str, Any] = {
    "url": "https://incident-test.slack.com/",
    "team": "Incident Test",
    "user": "incident-bot",
    "team_id": "T0TEAM",
    "user_id": "U0BOT",
    "bot_id": "B0BOT",
    "app_id": "A0APP",
    "is_enterprise_install": False,
}

# Form-encoded Slack arguments that carry JSON text; recorded decoded so tests can compare structures.
_JSON_FIELDS = frozenset({"blocks", "attachments", "view", "files", "metadata", "unfurls", "user_auth_blocks"})
# Conversation and user IDs are upper-case; channel names never are, so the two cannot be confused.
_ID_RE = re.compile(r"^[CGDU][A-Z0-9]{2,}$")
# These answer without a token on the real API; everything else would say not_authed.
_NO_AUTH_METHODS = frozenset({"api.test", "oauth.access", "oauth.v2.access", "oauth.v2.exchange"})
_DEFAULT_ERRORS = {429: "ratelimited", 503: "service_unavailable"}

Params = dict[str, Any]
Responder = Callable[[Params], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    """One HTTP request the fake received; `headers` keys are lower-cased as HTTP is case-insensitive."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int
    path: str = ""
    raw: bytes = field(default=b"", repr=False)

    @property
    def token(self) -> str | None:
        """The bearer token the client sent, if any."""
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        token = self.params.get("token")
        return token if isinstance(token, str) else None


@dataclass
class _Fault:
    status: int
    error: str
    remaining: int | None
    retry_after: int | None


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines on stderr would drown pytest's output for every Slack call the bot makes.
        return


class FakeSlack:
    """A thread-safe, recording stand-in for https://slack.com/api/ served on 127.0.0.1.

    Point `WebClient(token=..., base_url=fake.url)` at it. Fault injection: `fail()`, `delay()`,
    `heal()`; connection refused: `refuse()` closes the listening socket and `accept()` re-binds the same
    port (another process could grab it in between, which is unlikely on loopback within a test).
    """

    def __init__(
        self,
        *,
        channels: Mapping[str, str] | None = None,
        auth: Mapping[str, Any] | None = None,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        conversations: Mapping[str, Mapping[str, Any]] | None = None,
        first_ts: str = "1764168000.000100",
        port: int = 0,
    ) -> None:
        self._cond = threading.Condition()
        self._calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._responders: dict[str, Responder] = {}
        self._channels: dict[str, str] = dict(DEFAULT_CHANNELS if channels is None else channels)
        self.auth: dict[str, Any] = {**DEFAULT_AUTH, **(auth or {})}
        self._users = {uid: dict(info) for uid, info in (users or {}).items()}
        self._conversations = {cid: dict(info) for cid, info in (conversations or {}).items()}
        seconds, _, micros = first_ts.partition(".")
        self._ts_counter = int(seconds) * 1_000_000 + int(micros.ljust(6, "0"))
        self._view_counter = 0
        self._file_counter = 0
        self._views_by_external_id: dict[str, str] = {}
        self._home_views: dict[str, str] = {}
        self._files: dict[str, dict[str, Any]] = {}
        # What chat.postMessage stored, per channel ID in posting order: conversations.history and
        # conversations.replies read it (a crashed sender looks for its message metadata there).
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Set on stop() so that delayed responses do not hold up shutdown.
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()

    def refuse(self) -> None:
        """Close the listening socket so new connections are refused; the port is kept for `accept()`."""
        self._close_listener()

    def accept(self) -> None:
        """Listen again on the same port after `refuse()`; `url` does not change."""
        self.start()

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeSlack has not been started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """The Web API base URL for `WebClient(base_url=...)`; the trailing slash matters to slack_sdk."""
        return f"{self.root_url}/api/"

    def response_url(self, name: str = "x") -> str:
        """A URL to put in a payload's response_url; POSTs to it are recorded as method `"response_url"`."""
        return f"{self.root_url}/response_url/{name}"

    # ------------------------------------------------------------------ configuration

    def resolve_channel(self, channel: str) -> str:
        """The ID Slack would answer for `channel`, given as an ID, a name, or a #name."""
        if _ID_RE.match(channel):
            return channel
        name = channel.lstrip("#").lower()
        with self._cond:
            if name not in self._channels:
                derived = re.sub(r"[^A-Z0-9]", "", name.upper()) or uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:8]
                self._channels[name] = "C" + derived.upper()
            return self._channels[name]

    def respond_with(self, method: str, response: Mapping[str, Any] | Responder) -> None:
        """Answer `method` with a fixed body or with `response(params)`; overrides the built-in answer."""
        frozen = "" if callable(response) else json.dumps(dict(response))

        def fixed(_params: Params) -> dict[str, Any]:
            # A fresh copy per call, so a test mutating one answer cannot change the next.
            return json.loads(frozen)

        with self._cond:
            self._responders[method] = response if callable(response) else fixed

    def fail(
        self,
        method: str,
        status: int = 500,
        times: int | None = 1,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        """Make the next `times` calls to `method` ("*" = any) fail; `times=None` lasts until `heal()`.

        status=200 needs an `error` and gives Slack's `{"ok": false, "error": ...}`; 429 sends Retry-After
        (whole seconds, as Slack sends it; 1 unless given). Faults queue up in the order they were added.
        """
        if status == 200 and error is None:
            raise ValueError("fail(status=200) needs error=, e.g. 'channel_not_found'")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1, or None for 'until heal()'")
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = _Fault(status, error or _DEFAULT_ERRORS.get(status, "fatal_error"), times, retry_after)
        with self._cond:
            self._faults.setdefault(method, []).append(fault)

    def delay(self, method: str, seconds: float) -> None:
        """Hold every response to `method` ("*" = any) for `seconds`; 0 removes the delay."""
        with self._cond:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    def heal(self, method: str | None = None) -> None:
        """Drop faults and delays for `method`, or for everything when no method is given."""
        with self._cond:
            if method is None:
                self._faults.clear()
                self._delays.clear()
            else:
                self._faults.pop(method, None)
                self._delays.pop(method, None)

    # ------------------------------------------------------------------ inspection

    def calls(self, method: str | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def last(self, method: str) -> Call:
        found = self.calls(method)
        if not found:
            raise AssertionError(f"no {method} call was recorded; got: {self._summary()}")
        return found[-1]

    def clear(self) -> None:
        with self._cond:
            self._calls.clear()

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages posted (and since updated) in `channel`, oldest first, metadata included."""
        channel_id = self.resolve_channel(channel)
        with self._cond:
            return [json.loads(json.dumps(m)) for m in self._messages.get(channel_id, [])]

    def uploaded(self, file_id: str) -> bytes | None:
        """The bytes POSTed to the upload_url issued for `file_id`, if any."""
        with self._cond:
            data = self._files.get(file_id, {}).get("data")
            return data if isinstance(data, bytes) else None

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until at least `count` matching calls were recorded; returns all matching calls."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._matching(method, where)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {count} {method} call(s)"
                        f"{' matching where=' if where else ''}; {len(found)} matched.\n"
                        f"Recorded: {self._summary()}\n{self._dump(method)}"
                    )
                self._cond.wait(remaining)

    def assert_no_more(
        self,
        method: str,
        count: int,
        settle: float = 0.5,
        where: Callable[[Call], bool] | None = None,
    ) -> None:
        """Assert exactly `count` matching calls exist and that no more arrive during `settle` seconds."""
        deadline = time.monotonic() + settle
        with self._cond:
            while True:
                found = self._matching(method, where)
                if len(found) > count:
                    raise AssertionError(
                        f"expected exactly {count} {method} call(s), got {len(found)}.\n{self._dump(method)}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if len(found) != count:
                raise AssertionError(
                    f"expected exactly {count} {method} call(s), got {len(found)}.\nRecorded: {self._summary()}"
                )

    def _matching(self, method: str, where: Callable[[Call], bool] | None) -> list[Call]:
        return [c for c in self._calls if c.method == method and (where is None or where(c))]

    def _summary(self) -> str:
        if not self._calls:
            return "(no calls)"
        return ", ".join(f"{c.method}[{c.status}]" for c in self._calls)

    def _dump(self, method: str) -> str:
        lines = [f"  {c.method} {c.status}: {json.dumps(c.params, default=repr)[:400]}" for c in self._calls]
        return f"Calls (looking for {method}):\n" + ("\n".join(lines) if lines else "  (none)")

    # ------------------------------------------------------------------ HTTP handling

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        query = _flatten(parse_qs(split.query, keep_blank_values=True))
        path = split.path

        content_type = headers.get("content-type", "")
        malformed = False
        if path.startswith("/api/") or path.startswith("/response_url/"):
            is_api = path.startswith("/api/")
            method = unquote(path[len("/api/") :]) if is_api else RESPONSE_URL_METHOD
            try:
                params = {**(query if is_api else {}), **_decode_body(raw, content_type)}
            except (ValueError, UnicodeDecodeError):
                # Keep what arrived so the test can see it; Slack answers such bodies with invalid_json.
                params, malformed = {"_raw": raw.decode("utf-8", "replace")}, True
        elif path.startswith("/upload/v1/"):
            method = UPLOAD_METHOD
            # urllib labels these raw bytes as form-urlencoded; they must not be parsed.
            params = {"file_id": path.rsplit("/", 1)[1], "data": raw}
        else:
            method, params = path, {}

        with self._cond:
            if malformed:
                reply = _json_reply(200, {"ok": False, "error": "invalid_json"})
                delay = self._delays.get(method, self._delays.get("*", 0.0))
            else:
                reply, delay = self._decide(method, path, params, headers)
            self._calls.append(
                Call(
                    method=method,
                    params=params,
                    headers=headers,
                    at=time.monotonic(),
                    status=reply.status,
                    path=path,
                    raw=raw,
                )
            )
            self._cond.notify_all()

        if delay > 0:
            self._stopping.wait(delay)
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired during a delay); nothing left to answer.
            pass

    def _decide(self, method: str, path: str, params: Params, headers: dict[str, str]) -> tuple[_Reply, float]:
        """Must hold the lock: picks the fault/delay for this call and builds the reply."""
        delay = self._delays.get(method, self._delays.get("*", 0.0))
        fault = self._take_fault(method)
        if fault is not None:
            extra = {} if fault.retry_after is None else {"Retry-After": str(int(fault.retry_after))}
            return _json_reply(fault.status, {"ok": False, "error": fault.error}, extra), delay

        if method == UPLOAD_METHOD:
            file_id = params["file_id"]
            if file_id not in self._files:
                return _Reply(404, b"Not Found", {"Content-Type": "text/plain"}), delay
            self._files[file_id]["data"] = params["data"]
            # files.slack.com answers the upload with plain text, not JSON.
            body = f"OK - {len(params['data'])}".encode()
            return _Reply(200, body, {"Content-Type": "text/plain; charset=utf-8"}), delay
        if method == RESPONSE_URL_METHOD:
            return _json_reply(200, {"ok": True}), delay
        if not path.startswith("/api/"):
            return _Reply(404, b"Not Found", {"Content-Type": "text/plain"}), delay

        if method not in _NO_AUTH_METHODS and not _has_token(headers, params):
            return _json_reply(200, {"ok": False, "error": "not_authed"}), delay
        responder = self._responders.get(method) or self._builtin(method)
        if responder is None:
            return _json_reply(200, {"ok": False, "error": "unknown_method"}), delay
        try:
            return _json_reply(200, responder(params)), delay
        except Exception as exc:
            # A broken respond_with() callable (or odd params) must show up as a recorded 500,
            # not as a dropped connection that looks like a network fault.
            body = {"ok": False, "error": "fake_slack_internal_error", "detail": repr(exc)}
            return _json_reply(500, body), delay

    def _take_fault(self, method: str) -> _Fault | None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if not queue:
                continue
            fault = queue[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.pop(0)
            return fault
        return None

    # ------------------------------------------------------------------ built-in Web API methods

    def _builtin(self, method: str) -> Responder | None:
        table: dict[str, Responder] = {
            "api.test": lambda p: {"ok": True, "args": p},
            "auth.test": lambda _p: {"ok": True, **self.auth},
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": lambda p: self._view_reply(p, "modal"),
            "views.push": lambda p: self._view_reply(p, "modal"),
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "apps.connections.open": lambda _p: {"ok": True, "url": "ws://127.0.0.1:1/invalid"},
        }
        return table.get(method)

    def _new_ts(self) -> str:
        ts = f"{self._ts_counter // 1_000_000}.{self._ts_counter % 1_000_000:06d}"
        self._ts_counter += 100
        return ts

    def _bot_message(self, params: Params, ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "user": self.auth["user_id"],
            "type": "message",
            "ts": ts,
            "bot_id": self.auth["bot_id"],
            "app_id": self.auth.get("app_id"),
            "text": params.get("text", ""),
            "team": self.auth["team_id"],
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if params.get(key) not in (None, ""):
                message[key] = params[key]
        if "thread_ts" in message:
            message["parent_user_id"] = self.auth["user_id"]
        return message

    def _chat_post_message(self, params: Params) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._new_ts()
        channel_id = self.resolve_channel(str(channel))
        message = self._bot_message(params, ts)
        self._messages.setdefault(channel_id, []).append(json.loads(json.dumps(message)))
        return {"ok": True, "channel": channel_id, "ts": ts, "message": message}

    def _chat_update(self, params: Params) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        for stored in self._messages.get(self.resolve_channel(str(channel)), []):
            if stored["ts"] == ts:
                for key in ("text", "blocks", "attachments", "metadata"):
                    if params.get(key) not in (None, ""):
                        stored[key] = params[key]
                stored["edited"] = {"user": self.auth["user_id"], "ts": self._new_ts()}
        return {
            "ok": True,
            "channel": self.resolve_channel(str(channel)),
            "ts": ts,
            "text": params.get("text", ""),
            "message": self._bot_message(params, str(ts)),
        }

    def _chat_post_ephemeral(self, params: Params) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._new_ts()}

    def _chat_get_permalink(self, params: Params) -> dict[str, Any]:
        channel = self.resolve_channel(str(params.get("channel", "")))
        message_ts = str(params.get("message_ts", ""))
        if not message_ts:
            return {"ok": False, "error": "message_not_found"}
        base = str(self.auth["url"]).rstrip("/")
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"{base}/archives/{channel}/p{message_ts.replace('.', '')}",
        }

    def _next_view_id(self) -> str:
        self._view_counter += 1
        return f"V0VIEW{self._view_counter:04d}"

    def _view_reply(self, params: Params, default_type: str, view_id: str | None = None) -> dict[str, Any]:
        view = params.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if view_id is None:
            view_id = self._next_view_id()
        full = {
            "id": view_id,
            "team_id": self.auth["team_id"],
            "type": view.get("type", default_type),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{self._ts_counter // 1_000_000}.{uuid.uuid4().hex[:8]}",
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": view.get("clear_on_close", False),
            "notify_on_close": view.get("notify_on_close", False),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.auth.get("app_id"),
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.auth["team_id"],
            "bot_id": self.auth["bot_id"],
        }
        if full["external_id"]:
            self._views_by_external_id[full["external_id"]] = view_id
        return {"ok": True, "view": full}

    def _views_update(self, params: Params) -> dict[str, Any]:
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        if not view_id and external_id:
            view_id = self._views_by_external_id.get(str(external_id))
            if view_id is None:
                return {"ok": False, "error": "not_found"}
        if not view_id:
            return {"ok": False, "error": "invalid_arguments"}
        return self._view_reply(params, "modal", str(view_id))

    def _views_publish(self, params: Params) -> dict[str, Any]:
        user_id = str(params.get("user_id", ""))
        if not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        # Each user has one Home tab view whose ID survives republishing.
        view_id = self._home_views.get(user_id) or self._next_view_id()
        self._home_views[user_id] = view_id
        return self._view_reply(params, "home", view_id)

    def _files_get_upload_url(self, params: Params) -> dict[str, Any]:
        if not params.get("filename") or not params.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        self._file_counter += 1
        file_id = f"F0FILE{self._file_counter:04d}"
        self._files[file_id] = {"filename": params["filename"], "length": int(params["length"])}
        return {"ok": True, "upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: Params) -> dict[str, Any]:
        requested = params.get("files")
        if not isinstance(requested, list) or not requested:
            return {"ok": False, "error": "invalid_arguments"}
        out: list[dict[str, Any]] = []
        base = str(self.auth["url"]).rstrip("/")
        for item in requested:
            file_id = str(item.get("id", ""))
            stored = self._files.get(file_id)
            if stored is None:
                return {"ok": False, "error": "file_not_found"}
            name = str(stored["filename"])
            data = stored.get("data")
            out.append(
                {
                    "id": file_id,
                    "name": name,
                    "title": item.get("title") or name,
                    "user": self.auth["user_id"],
                    "size": len(data) if isinstance(data, bytes) else stored["length"],
                    "url_private": f"https://files.slack.com/files-pri/{self.auth['team_id']}-{file_id}/{name}",
                    "permalink": f"{base}/files/{self.auth['user_id']}/{file_id}/{name}",
                }
            )
        return {"ok": True, "files": out}

    def _conversations_join(self, params: Params) -> dict[str, Any]:
        """Joining a public channel (C…) works; Slack refuses it for private ones (G…)."""
        channel_id = self.resolve_channel(str(params.get("channel", "")))
        if not channel_id.startswith("C"):
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        return self._conversations_info(params)

    def _conversations_history(self, params: Params) -> dict[str, Any]:
        """Top-level messages, newest first, as Slack pages them (limit, cursor, oldest, latest).

        Message metadata is only in the answer with include_all_metadata, as on Slack.
        """
        channel_id = self.resolve_channel(str(params.get("channel", "")))
        messages = [m for m in self._messages.get(channel_id, []) if m.get("thread_ts", m["ts"]) == m["ts"]]
        return self._page(list(reversed(messages)), params)

    def _conversations_replies(self, params: Params) -> dict[str, Any]:
        """A thread: its parent, then the replies oldest first; thread_not_found for an unknown ts."""
        channel_id = self.resolve_channel(str(params.get("channel", "")))
        ts = str(params.get("ts", ""))
        stored = self._messages.get(channel_id, [])
        parent = next((m for m in stored if m["ts"] == ts), None)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        replies = [m for m in stored if m.get("thread_ts") == ts and m["ts"] != ts]
        if replies:
            parent = {**parent, "thread_ts": ts, "reply_count": len(replies), "latest_reply": replies[-1]["ts"]}
        return self._page([parent, *replies], params, keep_first=True)

    def _page(self, messages: list[dict[str, Any]], params: Params, *, keep_first: bool = False) -> dict[str, Any]:
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or "inf")
        inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")

        def within(message: dict[str, Any]) -> bool:
            ts = float(message["ts"])
            return oldest <= ts <= latest if inclusive else oldest < ts < latest

        head = messages[:1] if keep_first else []
        messages = head + [m for m in messages[len(head) :] if within(m)]
        start = int(params.get("cursor") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        page = messages[start : start + limit]
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        shown = [{k: v for k, v in m.items() if with_metadata or k != "metadata"} for m in json.loads(json.dumps(page))]
        more = start + limit < len(messages)
        return {
            "ok": True,
            "messages": shown,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _conversations_info(self, params: Params) -> dict[str, Any]:
        channel_id = self.resolve_channel(str(params.get("channel", "")))
        names = {cid: name for name, cid in self._channels.items()}
        info: dict[str, Any] = {
            "id": channel_id,
            "name": names.get(channel_id, channel_id.lower()),
            "is_channel": channel_id.startswith("C"),
            "is_group": channel_id.startswith("G"),
            "is_im": channel_id.startswith("D"),
            "is_private": channel_id.startswith("G"),
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "created": 1700000000,
            "creator": "U0ALICE",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
        info.update(self._conversations.get(channel_id, {}))
        return {"ok": True, "channel": info}

    def _users_info(self, params: Params) -> dict[str, Any]:
        user_id = str(params.get("user", ""))
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        name = user_id.lower().removeprefix("u0") or user_id.lower()
        overrides = dict(self._users.get(user_id, {}))
        profile = {
            "real_name": name.title(),
            "display_name": name,
            "email": f"{name}@example.com",
            "image_48": f"https://avatars.example.com/{user_id}_48.png",
            "team": self.auth["team_id"],
            **overrides.pop("profile", {}),
        }
        info: dict[str, Any] = {
            "id": user_id,
            "team_id": self.auth["team_id"],
            "name": name,
            "deleted": False,
            "real_name": profile["real_name"],
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": user_id == self.auth["user_id"],
            "is_app_user": False,
            "updated": 1700000000,
            "profile": profile,
            **overrides,
        }
        return {"ok": True, "user": info}


# ---------------------------------------------------------------------- wire decoding


def _flatten(parsed: dict[str, list[str]]) -> dict[str, Any]:
    return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_FIELDS & params.keys():
        value = params[key]
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            # Malformed JSON stays verbatim so a test can see exactly what the bot sent.
            with contextlib.suppress(json.JSONDecodeError):
                params[key] = json.loads(value)
    return params


def _decode_body(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        decoded = json.loads(raw.decode("utf-8"))
        return _decode_json_fields(decoded if isinstance(decoded, dict) else {"_json": decoded})
    if media_type == "multipart/form-data":
        return _decode_json_fields(_decode_multipart(raw, content_type))
    text = raw.decode("utf-8")
    return _decode_json_fields(_flatten(parse_qs(text, keep_blank_values=True)))


def _decode_multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """Fields become str; file parts become bytes under their field name."""
    prologue = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(prologue + raw)
    params: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        params[name] = data if part.get_filename() is not None else data.decode("utf-8")
    return params


def _has_token(headers: dict[str, str], params: Params) -> bool:
    auth = headers.get("authorization", "")
    return bool(auth.strip()) or bool(params.get("token"))


def _json_reply(status: int, body: Mapping[str, Any], extra: dict[str, str] | None = None) -> _Reply:
    headers = {"Content-Type": "application/json; charset=utf-8", **(extra or {})}
    return _Reply(status, json.dumps(body).encode("utf-8"), headers)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A started FakeSlack, stopped after the test."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def recent_slack() -> Iterator[FakeSlack]:
    """A FakeSlack whose message ts are the real clock's, as Slack's are.

    The default fake's ts start in 2025, and a sender that lost a call's outcome looks for it only
    among messages since its row was written: a test of that recovery needs this one.
    """
    with FakeSlack(first_ts=f"{time.time():.6f}") as fake:
        yield fake
