"""The HTTP server (bot/runtime/http.py): keep-alive, slow clients, bounded threads, the socket's owner."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot
from bot_process import bot_env, child_pids, free_port, start_bot, wait_healthy
from fake_slack import FakeSlack

from bot.runtime import http as bot_http


def test_keep_alive_serves_several_requests_on_one_connection(bot: Bot) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", bot.service.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"ok")
            assert response.getheader("Connection") != "close"
        request = sr.slash_command("help", secret=SECRET)
        connection.request("POST", "/slack/events", body=request.body, headers=request.headers)
        response = connection.getresponse()
        assert response.status == 200
        assert "/incident" in json.loads(response.read())["text"]
    finally:
        connection.close()


def test_clients_that_send_slowly_hold_up_no_ack(bot: Bot) -> None:
    # More half-sent requests than the pool has threads (each is cut off after CLIENT_TIMEOUT): the
    # event loop reads bodies, so they hold no thread, and a real request gets its answer at once.
    stalled = []
    for _ in range(bot_http.THREADS + 8):
        client = socket.create_connection(("127.0.0.1", bot.service.port))
        client.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        stalled.append(client)
    try:
        started = time.monotonic()
        answer = bot.send_ok(sr.slash_command("help", secret=SECRET))
        assert "/incident" in answer["text"]
        assert time.monotonic() - started < 3
    finally:
        for client in stalled:
            client.close()


def test_a_client_that_stops_sending_is_cut_off_after_the_timeout(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    client = socket.create_connection(("127.0.0.1", bot.service.port))
    client.settimeout(bot_http.CLIENT_TIMEOUT + 10)
    try:
        client.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        data = client.recv(4096)  # an error answer or a closed connection, never a hang
        assert time.monotonic() - started <= bot_http.CLIENT_TIMEOUT + 5
        assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
    finally:
        client.close()


@pytest.fixture
def short_timeout_bot(make_bot: Callable[..., Bot], monkeypatch: pytest.MonkeyPatch) -> Bot:
    """A bot whose HTTP server gives each client 1 s (CLIENT_TIMEOUT) instead of 5."""
    monkeypatch.setattr(bot_http, "CLIENT_TIMEOUT", 1)
    return make_bot()


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"],  # nothing; headers with no blank line after them
    ids=["sends-nothing", "headers-stop-coming"],
)
def test_a_connection_that_stops_before_its_request_is_whole_is_cut_off(short_timeout_bot: Bot, sent: bytes) -> None:
    client = socket.create_connection(("127.0.0.1", short_timeout_bot.service.port))
    client.settimeout(10)
    try:
        client.sendall(sent)
        started = time.monotonic()
        assert client.recv(4096) == b""  # closed by the server, holding no descriptor of ours
        assert 0.8 <= time.monotonic() - started < 5
    finally:
        client.close()


def test_a_client_that_stops_reading_its_answers_is_cut_off(short_timeout_bot: Bot) -> None:
    bot = short_timeout_bot
    big = b"x" * (4 * 1024 * 1024)
    bot.service.server.add_route("GET", "/test/big", lambda headers, body: (200, big, {}))
    client = socket.create_connection(("127.0.0.1", bot.service.port))
    try:
        # 20 answers of 4 MiB asked for, none read: far more than the kernel's buffers hold.
        client.sendall(b"GET /test/big HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        time.sleep(3)  # the server's buffer fills, and stays full past CLIENT_TIMEOUT
        # What the kernel buffered arrives, then the end: the server dropped the connection.
        received, ended, deadline = 0, False, time.monotonic() + 10
        client.settimeout(5)
        try:
            while time.monotonic() < deadline and (chunk := client.recv(1 << 20)):
                received += len(chunk)
            ended = time.monotonic() < deadline
        except ConnectionResetError:
            ended = True
        assert ended and received < 20 * len(big), received
        # The server is fine: the next client is answered.
        assert bot.send_ok(sr.slash_command("help", secret=SECRET))
    finally:
        client.close()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: v\r\n" * 5000 + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * (200 * 1024) + b"\r\n\r\n",
    ],
    ids=["many-headers", "one-huge-header"],
)
def test_oversized_request_heads_are_refused_without_holding_up_others(bot: Bot, head: bytes) -> None:
    with socket.create_connection(("127.0.0.1", bot.service.port), timeout=5) as client:
        client.sendall(head)
        answer = client.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400") or answer == b"", answer[:80]
    started = time.monotonic()
    assert bot.send_ok(sr.slash_command("help", secret=SECRET))
    assert time.monotonic() - started < 3


def test_stop_waits_for_a_hung_route_no_longer_than_the_shutdown_timeout(
    make_bot: Callable[..., Bot], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot_http, "SHUTDOWN_TIMEOUT", 1)
    bot = make_bot()
    inside, release = threading.Event(), threading.Event()

    def hung(headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        inside.set()
        release.wait(20)  # a query that never returns
        return 200, b"late", {}

    bot.service.server.add_route("POST", "/test/hang", hung)
    client = http.client.HTTPConnection("127.0.0.1", bot.service.port, timeout=20)
    caller = threading.Thread(target=lambda: client.request("POST", "/test/hang", body=b"x"))
    caller.start()
    try:
        assert inside.wait(5)
        started = time.monotonic()
        bot.service.server.stop()
        assert time.monotonic() - started < 5  # SIGTERM's bound holds: 1 s here, 30 s by default
    finally:
        release.set()
        caller.join(5)
        client.close()


def listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


@pytest.mark.slow
def test_the_listening_socket_belongs_to_the_front_alone_and_sigterm_finishes_requests(
    db_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    process = start_bot(bot_env(db_url, fake_slack, port), log)
    try:
        wait_healthy(port, process, log)
        (worker,) = child_pids(process.pid)
        listening = listening_inodes(port)
        assert listening and listening <= socket_inodes(process.pid)
        assert not listening & socket_inodes(worker)  # the forked worker does not hold it

        # A request in flight when SIGTERM arrives is answered; the process then exits 0.
        results: list[int] = []
        body = sr.slash_command("help", secret=SECRET)
        slow = threading.Thread(target=lambda: results.append(_slow_post(port, body)))
        slow.start()
        time.sleep(0.3)  # its headers are in; its body is still coming
        process.send_signal(signal.SIGTERM)
        slow.join(15)
        assert results == [200]
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()


def _slow_post(port: int, request: sr.SignedRequest) -> int:
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        headers = {**request.headers, "Content-Length": str(len(request.body))}
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        client.sendall(f"POST /slack/events HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        time.sleep(0.8)
        client.sendall(request.body)
        status_line = client.recv(4096).split(b"\r\n", 1)[0]
        return int(status_line.split()[1])
    finally:
        client.close()
