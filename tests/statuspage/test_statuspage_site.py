"""bot/statuspage/site.py: every path served with ETag and caching, replicas see changes within a second,
and the static export is whole, relatively linked, and replaced atomically."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sp_data
import sqlalchemy as sa
from sp_html import elements as _elements

from bot.statuspage import encoding, service
from bot.statuspage import site as site_module
from bot.statuspage.site import StatusSite
from storage import db


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _site(sessions: db.SessionFactory, clock: Clock, *, background: bool = False) -> StatusSite:
    return StatusSite(sessions, sp_data.CONFIG, sp_data.INFO, clock=clock, background=background)


PATHS = {
    "/status": "text/html; charset=utf-8",
    "/status/history": "text/html; charset=utf-8",
    "/status/history.atom": "application/atom+xml",
    "/status/history.rss": "application/rss+xml",
    "/status/static/status.css": "text/css; charset=utf-8",
    "/api/v2/summary.json": "application/json; charset=utf-8",
    "/api/v2/status.json": "application/json; charset=utf-8",
    "/api/v2/components.json": "application/json; charset=utf-8",
    "/api/v2/incidents.json": "application/json; charset=utf-8",
    "/api/v2/incidents/unresolved.json": "application/json; charset=utf-8",
    "/api/v2/scheduled-maintenances.json": "application/json; charset=utf-8",
}


def test_every_path_is_served_with_caching_headers(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    site = _site(sessions, Clock(sp_data.NOW))
    for path, content_type in {**PATHS, f"/status/incidents/{ids['active']}": "text/html; charset=utf-8"}.items():
        status, headers, body = site.serve(path)
        named = dict(headers)
        assert (status, named["Content-Type"]) == (200, content_type), path
        assert named["Cache-Control"] == "public, max-age=10"
        assert named["Content-Security-Policy"].startswith("default-src 'none'")
        assert int(named["Content-Length"]) == len(body) > 0
        again = site.serve(path, if_none_match=named["ETag"])
        assert again[0] == 304 and again[2] == b""
    assert dict(site.serve("/api/v2/summary.json")[1])["Access-Control-Allow-Origin"] == "*"


def test_pages_are_gzipped_for_clients_that_accept_it(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    site = _site(sessions, Clock(sp_data.NOW))
    for path in [*PATHS, f"/status/incidents/{ids['active']}"]:
        status, plain_headers, plain = site.serve(path)
        zipped_status, zipped_headers, zipped = site.serve(path, accept_encoding="gzip, deflate, br")
        named, zipped_named = dict(plain_headers), dict(zipped_headers)
        assert status == zipped_status == 200, path
        if len(plain) < encoding.MIN_SIZE:  # too small to be worth it: one representation, no Vary
            assert zipped == plain and "Vary" not in named and "Content-Encoding" not in zipped_named, path
            continue
        assert gzip.decompress(zipped) == plain and len(zipped) < len(plain), path
        assert "Content-Encoding" not in named and zipped_named["Content-Encoding"] == "gzip", path
        assert named["Vary"] == zipped_named["Vary"] == "Accept-Encoding", path
        assert int(zipped_named["Content-Length"]) == len(zipped), path
        assert zipped_named["Content-Type"] == named["Content-Type"], path
        assert zipped_named["ETag"] != named["ETag"], path  # two representations, two tags
        again = site.serve(path, if_none_match=zipped_named["ETag"], accept_encoding="gzip")
        assert again[0] == 304 and again[2] == b"", path
        # A client refusing gzip gets the plain bytes, and the plain tag is what revalidates it.
        assert site.serve(path, accept_encoding="gzip;q=0, identity")[2] == plain
        assert site.serve(path, if_none_match=named["ETag"], accept_encoding="identity")[0] == 304
        # A tag revalidates its own representation only: a cache holding one must not be told
        # that it may serve it for the other.
        assert site.serve(path, if_none_match=named["ETag"], accept_encoding="gzip")[2] == zipped
        assert site.serve(path, if_none_match=zipped_named["ETag"], accept_encoding="identity")[2] == plain


def test_unknown_paths_are_404_pages_and_paths_are_normalised(sessions: db.SessionFactory) -> None:
    sp_data.populate(sessions)
    site = _site(sessions, Clock(sp_data.NOW))
    for path in ("/status/incidents/999", "/status/incidents/abc", "/status/static/../../etc/passwd", "/nope"):
        status, headers, body = site.serve(path)
        assert status == 404 and b"Not found" in body and dict(headers)["Cache-Control"] == "no-cache"
    assert site.serve("/status/?utm=x")[2] == site.serve("/status")[2]
    assert site.serve("/status", if_none_match='W/"nope", *')[0] == 304


def test_a_change_shows_on_another_replica_within_a_second(db_url: str) -> None:
    writer_engine, reader_engine = db.create_db_engine(db_url), db.create_db_engine(db_url)
    try:
        writer, reader = db.session_factory(writer_engine), db.session_factory(reader_engine)
        ids = sp_data.populate(writer)
        clock = Clock(sp_data.NOW)
        replica = _site(reader, clock)
        before = json.loads(replica.serve("/api/v2/status.json")[2])
        assert before["status"]["indicator"] == "major"
        with db.unit_of_work(writer) as session:
            service.resolve(session=session, public_id=ids["active"], message="Fixed", now=clock.now)
        clock.advance(0.5)
        assert json.loads(replica.serve("/api/v2/status.json")[2]) == before  # cached, not yet polled
        clock.advance(0.5)
        after = json.loads(replica.serve("/api/v2/status.json")[2])
        assert after["status"] == {"indicator": "maintenance", "description": "Service Under Maintenance"}
    finally:
        writer_engine.dispose()
        reader_engine.dispose()


def test_a_stale_page_is_served_while_the_new_one_renders_in_the_background(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    clock = Clock(sp_data.NOW)
    site = _site(sessions, clock, background=True)
    before = site.serve("/api/v2/status.json")[2]  # the first request renders, there is nothing to serve
    with db.unit_of_work(sessions) as session:
        service.resolve(session=session, public_id=ids["active"], message="Fixed", now=clock.now)
    clock.advance(1)
    assert site.serve("/api/v2/status.json")[2] == before  # stale, while the refresh runs
    site.wait_for_refresh(timeout=30)
    assert json.loads(site.serve("/api/v2/status.json")[2])["status"]["indicator"] == "maintenance"


def test_requests_never_wait_for_the_version_poll(sessions: db.SessionFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # On SQLite the poll queues behind the worker's writes: it must hold up no page request.
    sp_data.populate(sessions)
    clock = Clock(sp_data.NOW)
    site = _site(sessions, clock, background=True)
    before = site.serve("/status")[2]
    polling, release = threading.Event(), threading.Event()
    real = site_module.service.current_version

    def slow(*, session: object) -> int:
        polling.set()
        release.wait(10)
        return real(session=session)  # type: ignore[arg-type]

    monkeypatch.setattr(site_module.service, "current_version", slow)
    clock.advance(1)
    try:
        answers: list[bytes] = []
        for _ in range(2):  # the request that starts the poll, and one while it is under way
            request = threading.Thread(target=lambda: answers.append(site.serve("/status")[2]))
            request.start()
            request.join(5)
            assert polling.wait(5)
        assert answers == [before, before]
    finally:
        release.set()
        site.wait_for_refresh(timeout=10)
    assert site.serve("/status")[2] == before  # the version did not move: nothing rendered


def test_a_database_outage_keeps_the_last_page(sessions: db.SessionFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    sp_data.populate(sessions)
    clock = Clock(sp_data.NOW)
    site = _site(sessions, clock)
    before = site.serve("/status")[2]

    def down(*, session: object) -> int:
        raise sa.exc.OperationalError("SELECT version", {}, Exception("connection refused"))

    monkeypatch.setattr(site_module.service, "current_version", down)
    clock.advance(2)
    assert site.serve("/status")[0] == 200 and site.serve("/status")[2] == before


def test_without_a_change_the_cache_still_follows_the_clock(sessions: db.SessionFactory) -> None:
    sp_data.populate(sessions)
    clock = Clock(sp_data.NOW)
    site = _site(sessions, clock)
    assert b"In progress" in site.serve("/status")[2]  # the CDN migration, which ends at NOW + 1 h
    clock.advance(3600)
    assert b"CDN migration" not in site.serve("/status")[2]


def test_cached_pages_are_not_rendered_again(sessions: db.SessionFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    sp_data.populate(sessions)
    clock = Clock(sp_data.NOW)
    site = _site(sessions, clock)
    calls: list[str] = []
    render = site_module.pages.render_status
    monkeypatch.setattr(site_module.pages, "render_status", lambda *a, **k: calls.append("x") or render(*a, **k))
    for _ in range(5):
        site.serve("/status")
        clock.advance(0.3)
    assert len(calls) == 1


def _links(html: str) -> list[str]:
    return [a.get("href") or "" for _, a in _elements(html) if a.get("href")]


def test_the_export_is_whole_and_relatively_linked(sessions: db.SessionFactory, tmp_path: Path) -> None:
    ids = sp_data.populate(sessions)
    site = _site(sessions, Clock(sp_data.NOW))
    written = site.export(tmp_path / "public")
    root = tmp_path / "public"
    for expected in (
        "status/index.html",
        "status/history/index.html",
        f"status/incidents/{ids['active']}/index.html",
        "status/history.atom",
        "status/history.rss",
        "status/static/status.css",
        "api/v2/summary.json",
        "api/v2/incidents/unresolved.json",
        "index.html",
    ):
        assert expected in written and (root / expected).is_file()
    for page in root.rglob("*.html"):
        for href in _links(page.read_text()):
            if href.startswith(("https://", "data:", "#")):
                continue
            assert not href.startswith("/"), (page, href)
            target = (page.parent / urlsplit(href).path).resolve()
            assert target.is_file(), (page, href)
    assert oct(root.stat().st_mode & 0o777) == "0o755"


def test_the_export_replaces_the_old_site_whole_or_not_at_all(
    sessions: db.SessionFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp_data.populate(sessions)
    site = _site(sessions, Clock(sp_data.NOW))
    root = tmp_path / "out" / "public"
    site.export(root)
    (root / "stale.html").write_text("from an older export")
    site.export(root)
    assert not (root / "stale.html").exists()
    assert sorted(p.name for p in root.parent.iterdir()) == ["public"]  # no temporary folder left behind

    (root / "stale.html").write_text("kept")

    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr(site_module.feeds, "rss", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        site.export(root)
    assert (root / "stale.html").read_text() == "kept" and (root / "status/index.html").is_file()
    assert sorted(p.name for p in root.parent.iterdir()) == ["public"]
