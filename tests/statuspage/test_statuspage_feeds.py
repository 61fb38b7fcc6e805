"""bot/statuspage/feeds.py: Atom and RSS 2.0 that feedparser reads, with every public update, escaped."""

from __future__ import annotations

import calendar
from datetime import timedelta

import feedparser
import sp_data

from bot.statuspage import feeds, service
from storage import db

NASTY = '<script>alert(1)</script> "><img src=x onerror=alert(1)> & \x00\x1b javascript:alert(1)'


def _with_nasty_update(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    with db.unit_of_work(sessions) as session:
        service.post_update(
            session=session,
            public_id=ids["active"],
            status="identified",
            message=NASTY,
            now=sp_data.NOW - timedelta(minutes=1),
        )


def test_atom_has_every_public_update_newest_first(sessions: db.SessionFactory) -> None:
    _with_nasty_update(sessions)
    parsed = feedparser.parse(feeds.atom(sp_data.summary(sessions)))
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Acme Status: incident history"
    titles = [e.title for e in parsed.entries]
    assert titles == [
        "API errors: Identified",
        "API errors: Investigating",
        "Website slow: Resolved",
        "Website slow: Identified",
        "Website slow: Investigating",
    ]
    first = parsed.entries[0]
    assert first.link.startswith("https://status.example.com/status/incidents/")
    assert calendar.timegm(first.published_parsed) == (sp_data.NOW - timedelta(minutes=1)).timestamp()
    assert first.content[0].type == "text/plain"
    assert first.content[0].value == NASTY.replace("\x00", "").replace("\x1b", "")
    assert len({e.id for e in parsed.entries}) == 5
    assert [t.term for t in parsed.entries[1].tags] == ["API", "Database"]


def test_rss_has_every_public_update(sessions: db.SessionFactory) -> None:
    _with_nasty_update(sessions)
    raw = feeds.rss(sp_data.summary(sessions))
    parsed = feedparser.parse(raw)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "rss20"
    assert len(parsed.entries) == 5
    first = parsed.entries[0]
    assert first.published == "Wed, 02 Dec 2026 11:59:00 GMT"  # RFC 822
    assert b"<script>" not in raw and b"&lt;script&gt;" in raw
    assert first.guidislink is False


def test_without_a_public_url_links_use_the_base(sessions: db.SessionFactory) -> None:
    sp_data.populate(sessions)
    summary = sp_data.summary(sessions)
    summary = type(summary)(**{**summary.__dict__, "info": type(summary.info)(name="S", url=None)})
    parsed = feedparser.parse(feeds.rss(summary, base="/"))
    assert parsed.feed.link == "/status"
    assert parsed.entries[0].link.startswith("/status/incidents/")
