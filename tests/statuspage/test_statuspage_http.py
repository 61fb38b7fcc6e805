"""The status page served by the running bot (STATUS_PAGE=true): every path through the real HTTP
server, ETag/304, HEAD, off by default, and a cap that keeps page bursts from taking Slack's threads."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sp_data
from bot_harness import Bot

from bot.runtime import http as bot_http
from bot.runtime import status_route
from bot.statuspage import service
from storage import db
from storage.models import utcnow

PATHS = [
    "/status",
    "/status/history",
    "/status/history.atom",
    "/status/history.rss",
    "/status/static/status.css",
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances.json",
]


def request(
    bot: Bot, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", bot.service.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def requests_held_inside(
    bot: Bot, method: str, paths: list[str], inside: threading.Semaphore, release: threading.Event
) -> Iterator[None]:
    """One request per path, each from a thread of its own, held in the server (its handler
    releases `inside`, then waits for `release`); the body runs once all are inside."""
    holders = [threading.Thread(target=request, args=(bot, method, path)) for path in paths]
    for thread in holders:
        thread.start()
    try:
        for _ in paths:
            assert inside.acquire(timeout=10)
        yield
    finally:
        release.set()
        for thread in holders:
            thread.join(10)


def publish(sessions: db.SessionFactory, title: str = "API errors") -> int:
    with db.unit_of_work(sessions) as session:
        incident = service.publish(
            session=session,
            title=title,
            components=["api"],
            impact="major_outage",
            message="Requests fail.",
            now=utcnow(),
            config=sp_data.CONFIG,
        )
        return incident.id or 0


@pytest.fixture
def page_bot(make_bot: Callable[..., Bot]) -> Bot:
    return make_bot(status_page=True, status_page_config=sp_data.CONFIG, status_page_title="Acme Status")


def test_every_path_is_served(page_bot: Bot) -> None:
    public_id = publish(page_bot.sessions)
    for path in [*PATHS, f"/status/incidents/{public_id}"]:
        status, headers, body = request(page_bot, "GET", path)
        assert status == 200, path
        assert headers["etag"] and headers["cache-control"] == "public, max-age=10", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert int(headers["content-length"]) == len(body) > 0, path
    status, _, body = request(page_bot, "GET", "/status")
    assert b"Acme Status" in body and b"API errors" in body


def test_etag_gives_304_and_head_gives_the_headers(page_bot: Bot) -> None:
    status, headers, body = request(page_bot, "GET", "/api/v2/summary.json")
    assert status == 200
    status, again, empty = request(page_bot, "GET", "/api/v2/summary.json", {"If-None-Match": headers["etag"]})
    assert (status, empty) == (304, b"")
    assert again["etag"] == headers["etag"]
    status, head, empty = request(page_bot, "HEAD", "/api/v2/summary.json")
    assert (status, empty) == (200, b"")
    assert head["content-length"] == str(len(body)) and head["etag"] == headers["etag"]
    assert head["access-control-allow-origin"] == "*"


def test_pages_are_sent_gzipped_to_clients_that_ask_for_it(page_bot: Bot) -> None:
    publish(page_bot.sessions)
    accept = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium sends
    for path in ("/status", "/api/v2/summary.json", "/status/static/status.css"):
        _, plain_headers, plain = request(page_bot, "GET", path)
        # The first request may render (on the pool); the second is a cache hit on the loop.
        for _ in range(2):
            status, headers, zipped = request(page_bot, "GET", path, accept)
            assert status == 200 and headers["content-encoding"] == "gzip", path
            assert gzip.decompress(zipped) == plain and int(headers["content-length"]) == len(zipped), path
            assert headers["vary"] == plain_headers["vary"] == "Accept-Encoding", path
            assert "content-encoding" not in plain_headers, path
        status, unchanged, empty = request(page_bot, "GET", path, {**accept, "If-None-Match": headers["etag"]})
        assert (status, empty) == (304, b""), path
        assert unchanged["etag"] == headers["etag"] and unchanged["vary"] == "Accept-Encoding", path
        assert "content-length" not in unchanged, path
        status, head, empty = request(page_bot, "HEAD", path, accept)
        assert (status, empty, head["content-length"]) == (200, b"", str(len(zipped))), path


def test_unknown_paths_are_404_and_other_methods_are_refused(page_bot: Bot) -> None:
    assert request(page_bot, "GET", "/status/incidents/999999")[0] == 404
    assert request(page_bot, "GET", "/status/nope")[0] == 404
    assert request(page_bot, "GET", "/statusfoo")[0] == 404  # a prefix, not a string start
    assert request(page_bot, "POST", "/status")[0] in (404, 405)


def test_off_by_default(bot: Bot) -> None:
    for path in ("/status", "/api/v2/summary.json"):
        assert request(bot, "GET", path)[0] == 404
    assert bot.service.status is None


def test_a_change_shows_within_a_second(page_bot: Bot) -> None:
    assert b"Database trouble" not in request(page_bot, "GET", "/status")[2]
    publish(page_bot.sessions, "Database trouble")
    # The poll reads the version at most once a second; the render then happens in the background.
    deadline = threading.Event()
    for _ in range(40):
        if b"Database trouble" in request(page_bot, "GET", "/status")[2]:
            break
        deadline.wait(0.05)
    else:
        pytest.fail("the published incident did not appear within 2 s")


def test_page_requests_over_the_cap_get_503_with_retry_after(
    page_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = page_bot.service.status
    assert route is not None
    request(page_bot, "GET", "/status")  # rendered and cached
    inside, release = threading.Semaphore(0), threading.Event()
    real_serve = route.site.serve

    def slow_serve(path: str, **kwargs: Any) -> Any:
        inside.release()
        release.wait(10)
        return real_serve(path, **kwargs)

    monkeypatch.setattr(route.site, "serve", slow_serve)
    # Hold every slot of the cap with requests that block in the site (renders: paths not cached).
    paths = [f"/status/incidents/{900000 + n}" for n in range(status_route.LIMIT)]
    with requests_held_inside(page_bot, "GET", paths, inside, release):
        status, headers, _ = request(page_bot, "GET", "/status/incidents/999999")
        assert status == 503 and headers["retry-after"] == "1"
        # A cache hit waits on nothing: it is served outside the cap, even while the cap is full.
        assert request(page_bot, "GET", "/status")[0] == 200
        # Slack's route still has threads: /healthz (and /slack/events beside it) answers at once.
        assert request(page_bot, "GET", "/healthz")[0] == 200
    assert request(page_bot, "GET", "/api/v2/status.json")[0] == 200


def test_cached_pages_are_answered_while_every_thread_of_the_pool_is_busy(page_bot: Bot) -> None:
    # The page's cache hits are answered on the HTTP server's event loop, not by the pool of
    # THREADS that serves Slack: a burst of page requests takes no thread from the acks, and a
    # pool held up elsewhere (a slow database) does not hold up the page.
    paths = ("/status", "/api/v2/summary.json", "/status/static/status.css")
    for path in paths:
        request(page_bot, "GET", path)  # rendered and cached
    inside, release = threading.Semaphore(0), threading.Event()

    def blocking(headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        inside.release()
        release.wait(20)
        return 200, b"done", {}

    page_bot.service.server.add_route("POST", "/test/block", blocking)
    with requests_held_inside(page_bot, "POST", ["/test/block"] * bot_http.THREADS, inside, release):
        started = time.monotonic()
        for path in paths:
            assert request(page_bot, "GET", path)[0] == 200, path
        assert time.monotonic() - started < 2
        # What needs the pool waits for it: the pool really is full.
        connection = http.client.HTTPConnection("127.0.0.1", page_bot.service.port, timeout=0.5)
        with pytest.raises(TimeoutError):
            connection.request("GET", "/healthz")
            connection.getresponse()
        connection.close()
    assert request(page_bot, "GET", "/healthz")[0] == 200


def test_a_cache_hit_never_waits_for_the_sites_lock(page_bot: Bot) -> None:
    # On the event loop a wait would hold up every request: with the lock taken (a render under
    # way: a path not yet cached, an unknown path's 404), the hit is still answered at once.
    route = page_bot.service.status
    assert route is not None
    request(page_bot, "GET", "/status")
    assert route.cached("/status", {}) is not None
    taken, release = threading.Event(), threading.Event()

    def render_under_way() -> None:
        with route.site._lock:
            taken.set()
            release.wait(3)

    holder = threading.Thread(target=render_under_way)
    holder.start()
    try:
        assert taken.wait(5)
        started = time.monotonic()
        hit = route.cached("/status", {})
        assert time.monotonic() - started < 0.5
        assert hit is not None and hit[0] == 200
        # And over HTTP, many at once, none of them refused for want of a slot of the cap.
        answers: list[int] = []
        clients = [
            threading.Thread(target=lambda: answers.append(request(page_bot, "GET", "/status")[0]))
            for _ in range(2 * status_route.LIMIT)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(5)
        assert answers == [200] * (2 * status_route.LIMIT)
    finally:
        release.set()
        holder.join(5)
    assert route.cached("/status", {}) is not None


def test_the_benchmark_page_clients_fetch_the_page_over_keep_alive(page_bot: Bot) -> None:
    # benchmarks/page_client.py, as `python benchmarks/run.py --only statuspage` drives it.
    client = Path(__file__).resolve().parents[2] / "benchmarks" / "page_client.py"
    paths = "/status,/api/v2/summary.json"
    argv = [sys.executable, str(client), str(page_bot.service.port), "closed", "4", "40", paths]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().strip() == "ready"
        process.stdin.write("go\n")
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())
        process.stdin.write("quit\n")
        process.stdin.flush()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert set(answer["samples"]) == {"/status", "/api/v2/summary.json"}
    assert sum(len(samples) for samples in answer["samples"].values()) == 40
    assert {code for counts in answer["status"].values() for code in counts} == {"200"}


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian's package) is not installed")
def test_the_benchmark_wrk_clients_fetch_both_paths(page_bot: Bot) -> None:
    # benchmarks/page_wrk.py, as `python benchmarks/run.py --only statuspage` drives it with wrk.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import page_wrk

    for path in ("/status", "/api/v2/summary.json"):
        request(page_bot, "GET", path)
    figures = page_wrk.pages(page_bot.service.port, ("/status", "/api/v2/summary.json"), 1.0)
    assert figures["tool"] == "wrk" and figures["non_200"] == 0
    assert figures["requests"] > 10
    assert 0 < figures["page_p50_ms"] <= figures["page_p99_ms"]
    assert 0 < figures["summary_p50_ms"] <= figures["summary_p99_ms"]
