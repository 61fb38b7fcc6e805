"""uvicorn's connection protocol and event loop as the HTTP server (bot/runtime/http.py) runs them.

Protocol adds to uvicorn's httptools protocol the limits a public port needs: timeouts for a
request head that stops coming and for a client that stops reading, and a cap on the head's
size. Loop keeps asyncio's timers on the real monotonic clock.
"""

from __future__ import annotations

import asyncio
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A request's line and headers, at most (Slack's are a few hundred bytes; nginx allows 32 KB).
MAX_HEAD_BYTES, MAX_HEADERS = 64 * 1024, 100


class Loop(asyncio.SelectorEventLoop):
    """asyncio's loop on the monotonic clock read directly. asyncio reads `time.monotonic`, which
    tools that freeze time (freezegun, in our tests) replace: a timer set while the clock was
    frozen (uvicorn's tick that notices a stop, a client's timeout) would then lie years ahead of
    the real clock once time moved again, and never fire."""

    def time(self) -> float:
        return now()


def now() -> float:
    """The monotonic clock, read past anything that replaces `time.monotonic` (see Loop)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class _HeadTooLarge(Exception):
    """Raised in a parser callback: httptools turns it into a parse error, uvicorn into a 400."""


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the limits a public port needs that uvicorn leaves out
    (cheroot's socket timeout covered the first two):
    - a connection that sends nothing, or stops before its headers are complete, is cut off after
      CLIENT_TIMEOUT (uvicorn times out only an idle connection after a response); else enough of
      them (the status page is public) would use up the descriptors, and accept() fail for Slack;
    - a client that stops reading its answers (its buffer full for CLIENT_TIMEOUT) is cut off;
    - a request's line and headers are capped (MAX_HEAD_BYTES, MAX_HEADERS): they are parsed on the
      event loop, and a megabyte of them held up every other request for seconds.
    (It uses attributes of uvicorn's protocol, not a documented API: tests/runtime/
    test_http_server.py holds each behaviour, so an upgrade that renames them fails there.)"""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._head_size = 0
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(self.timeout_keep_alive, self._cut_off)
        self._write_timer: asyncio.TimerHandle | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        if self._head_timer is None:  # the first byte of a request on a kept-alive connection
            self._head_timer = self.loop.call_later(self.timeout_keep_alive, self._cut_off)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        if len(self.headers) >= MAX_HEADERS:
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.timeout_keep_alive, self._cut_off)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            raise _HeadTooLarge

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._write_timer = None

    def _cut_off(self) -> None:
        self._cancel_timers()
        if not self.transport.is_closing():
            self.transport.abort()  # close() would wait to flush what a client that stopped reading never takes
