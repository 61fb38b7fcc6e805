"""The page webhook against a local receiver that checks the signature: sent, retried, dead."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from freezegun import freeze_time
from oncall_fixtures import utc

from bot.oncall.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    backoff,
    page_payload,
    send_page_webhook,
    sign,
    verify,
)

SECRET = "whsec-test"
NOW = utc(2026, 12, 2, 3, 4, 5)


class Receiver:
    def __init__(self) -> None:
        self.statuses: list[int] = []  # what to answer, in turn (then 200); 0: take it, answer nothing
        self.received: list[dict[str, Any]] = []
        self.verified: list[bool] = []
        self.keys: list[str | None] = []  # each request's Idempotency-Key header


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.verified.append(verify(SECRET, self.headers[TIMESTAMP_HEADER], body,
                                         self.headers[SIGNATURE_HEADER], now=NOW))
            state.received.append(json.loads(body))
            state.keys.append(self.headers.get(IDEMPOTENCY_HEADER))
            status = state.statuses.pop(0) if state.statuses else 200
            if status == 0:  # the relay took it, but its answer is lost: the connection just closes
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/page"
    finally:
        server.shutdown()
        server.server_close()


def _payload() -> dict[str, Any]:
    return page_payload(
        incident={"id": "INC-2026-12-02-001", "title": "Checkout down", "severity": "P0", "status": "Investigating",
                  "thread_url": "https://example.slack.com/archives/C1/p1"},
        person={"user_id": "U01ALICE", "name": "Alice", "email": None, "phone": "+4915100000001"},
        acknowledge_url="https://bot.example.com/ack?t=x",
        step=1,
        sent_at=NOW,
    )


def test_payload_shape() -> None:
    payload = _payload()
    assert payload["person"] == {"user_id": "U01ALICE", "name": "Alice", "phone": "+4915100000001"}
    assert payload["incident"]["id"] == "INC-2026-12-02-001"
    assert payload["sent_at"] == "2026-12-02T03:04:05Z"
    assert set(payload) == {"incident", "person", "acknowledge_url", "step", "sent_at"}


def test_the_idempotency_key_goes_in_the_body_and_as_a_header(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    payload = page_payload(incident={"id": "INC-2026-12-02-001"}, person={"user_id": "U01ALICE"},
                           acknowledge_url=None, step=1, sent_at=NOW, idempotency_key="INC-2026-12-02-001.page-7")
    assert payload["idempotency_key"] == "INC-2026-12-02-001.page-7"
    assert send_page_webhook(url, payload, secret=SECRET, now=NOW).outcome == "sent"
    assert state.keys == ["INC-2026-12-02-001.page-7"] and state.verified == [True]
    send_page_webhook(url, _payload(), secret=SECRET, now=NOW)  # no key: no header
    assert state.keys[1] is None


def test_a_lost_answer_is_retried(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    state.statuses = [0]
    result = send_page_webhook(url, _payload(), secret=SECRET, now=NOW)
    assert result.outcome == "retry" and len(state.received) == 1


def test_sent_and_signed(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    result = send_page_webhook(url, _payload(), secret=SECRET, now=NOW)
    assert (result.outcome, result.status) == ("sent", 200)
    assert state.verified == [True]
    assert state.received == [_payload()]


def test_a_500_is_retried_with_backoff_then_sent(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    state.statuses = [500, 503]
    first = send_page_webhook(url, _payload(), secret=SECRET, now=NOW, attempt=1)
    assert (first.outcome, first.status, first.next_attempt_at) == ("retry", 500, NOW + timedelta(seconds=30))
    second = send_page_webhook(url, _payload(), secret=SECRET, now=NOW, attempt=2)
    assert (second.outcome, second.next_attempt_at) == ("retry", NOW + timedelta(minutes=1))
    third = send_page_webhook(url, _payload(), secret=SECRET, now=NOW, attempt=3)
    assert third.outcome == "sent"
    assert state.verified == [True, True, True]


def test_a_410_is_dead(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    state.statuses = [410]
    result = send_page_webhook(url, _payload(), secret=SECRET, now=NOW)
    assert (result.outcome, result.status, result.error, result.next_attempt_at) == ("dead", 410, "HTTP 410", None)
    state.statuses = [429]
    assert send_page_webhook(url, _payload(), secret=SECRET, now=NOW).outcome == "retry"


def test_a_connection_error_is_retried() -> None:
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = send_page_webhook(f"http://127.0.0.1:{port}/", _payload(), secret=SECRET, now=NOW, attempt=20)
    assert result.outcome == "retry" and result.error is not None and "connection failed" in result.error
    assert result.next_attempt_at == NOW + timedelta(hours=1)  # capped


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(50) == timedelta(hours=1)


def test_signature_checks() -> None:
    body = b'{"a":1}'
    signature = sign(SECRET, int(NOW.timestamp()), body)
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    assert verify(SECRET, str(int(NOW.timestamp())), body, signature, now=NOW)
    assert not verify("other", str(int(NOW.timestamp())), body, signature, now=NOW)
    assert not verify(SECRET, str(int(NOW.timestamp())), body + b" ", signature, now=NOW)
    with freeze_time(NOW + timedelta(minutes=10)):  # a replay, ten minutes on
        from datetime import UTC, datetime

        assert not verify(SECRET, str(int(NOW.timestamp())), body, signature, now=datetime.now(UTC))
