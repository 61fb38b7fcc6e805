"""bot/statuspage/pages.py: hostile text comes out as text; nothing internal ever reaches any output."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import sp_data
from sp_html import elements as _elements

from bot.statuspage import pages, service
from bot.statuspage.site import StatusSite
from storage import db
from storage.models import FollowUp, Incident, TimelineEntry

HOSTILE_TITLE = '<script>alert("t")</script>"><img src=x onerror=alert(1)>'
HOSTILE_MESSAGE = (
    "javascript:alert(1) <a href=\"javascript:alert(2)\">click</a> ' onmouseover='alert(3)\n<script>x</script>"
)


def _hostile(sessions: db.SessionFactory) -> int:
    with db.unit_of_work(sessions) as session:
        incident = service.publish(
            session=session,
            title=HOSTILE_TITLE,
            components=["api"],
            impact="major_outage",
            message=HOSTILE_MESSAGE,
            now=sp_data.NOW - timedelta(hours=1),
            config=sp_data.CONFIG,
        )
        service.schedule_maintenance(
            session=session,
            components=["db"],
            starts_at=sp_data.NOW + timedelta(hours=1),
            ends_at=sp_data.NOW + timedelta(hours=2),
            title=HOSTILE_TITLE,
            message=HOSTILE_MESSAGE,
            now=sp_data.NOW,
        )
        return incident.id or 0


def test_hostile_titles_and_messages_come_out_as_text(sessions: db.SessionFactory) -> None:
    public_id = _hostile(sessions)
    summary = sp_data.summary(sessions)
    for html in (
        pages.render_status(summary),
        pages.render_history(summary),
        pages.render_incident(summary, public_id) or "",
    ):
        tags = _elements(html)
        assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object", "embed")]
        assert not [a for _, a in tags if any(k.startswith("on") for k in a)]
        hrefs = [a.get("href") or "" for _, a in tags] + [a.get("src") or "" for _, a in tags]
        assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")]
        assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;&#34;&gt;&lt;img" in html
    assert "javascript:alert(1) &lt;a href=&#34;javascript:alert(2)&#34;&gt;" in pages.render_status(summary)


def test_no_javascript_no_inline_style_and_no_other_host(sessions: db.SessionFactory) -> None:
    sp_data.populate(sessions)
    summary = sp_data.summary(sessions)
    for html in (pages.render_status(summary), pages.render_history(summary), pages.render_not_found(summary)):
        tags = _elements(html)
        assert "script" not in {t for t, _ in tags}
        assert not [a for _, a in tags if "style" in a]  # the CSP allows no inline style either
        assert {t for t, _ in tags} >= {"header", "main", "footer", "nav"}
        urls = [a.get("href") or a.get("src") or "" for _, a in tags]
        assert not [u for u in urls if re.match(r"^(https?:)?//", u)], urls
    assert "<style" not in pages.render_status(summary)


def test_the_status_page_shows_bars_figures_and_the_formula(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    html = pages.render_status(sp_data.summary(sessions))
    bars = [a for t, a in _elements(html) if t == "li" and "bar" in (a.get("class") or "").split()]
    visible = [c for c in sp_data.CONFIG.components if c.key != "cdn"] + [sp_data.CONFIG.components[2]]
    assert len(bars) == 90 * len(visible)  # the CDN shows only when degraded, and it is in maintenance
    assert all(b.get("tabindex") == "0" and b.get("title") == b.get("aria-label") for b in bars)
    resolved_day = next(b for b in bars if "Website slow" in (b.get("title") or ""))
    assert resolved_day["title"] == (
        # 1 − 0.3 × 40 / 1440 = 99.1666… %, rounded down
        "29 Nov 2026: 99.16% uptime — partial outage 40 min, degraded performance 20 min — incidents: Website slow"
    )
    assert "1 − (major-outage minutes + 0.3 × partial-outage minutes) / 1440" in html
    assert "Partial System Outage" in html and "Active incidents" in html and "CDN migration" in html
    assert f'href="/status/incidents/{ids["active"]}"' in html
    assert "99.99% uptime" in html  # the website: 1 − 0.3 × 40 / (89 × 1440 + 720) over 90 days, rounded down


def test_relative_links_for_a_static_export(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    html = pages.render_incident(sp_data.summary(sessions), ids["active"], base="../../../") or ""
    assert 'href="../../../status/static/status.css"' in html
    assert 'href="../../../status/history/index.html"' in html


def test_security_headers_forbid_scripts_framing_and_other_hosts() -> None:
    headers = dict(pages.security_headers())
    assert headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


MARKERS = {
    field: f"LEAK{n:02d}{field.upper().replace('_', '')}"
    for n, field in enumerate(
        [
            "title",
            "affected",
            "detection",
            "detection_url",
            "impact",
            "root_cause",
            "resolution",
            "rca_url",
            "runbook",
            "lessons_worked",
            "lessons_didnt",
            "alert_name",
            "alert_group",
            "channel_id",
            "card_ts",
        ]
    )
}
PEOPLE = {"declared_by": "ULEAKDECLARER", "commander": "ULEAKCOMMANDER"}


def test_nothing_internal_appears_in_any_output(sessions: db.SessionFactory, tmp_path: Path) -> None:
    when = sp_data.NOW - timedelta(hours=2)
    with db.unit_of_work(sessions) as session:
        session.add(
            Incident(
                id="INC-2026-12-02-001",
                severity="P1",
                category="Database",
                root_cause_class="Code Bug",
                affected_users=987_654,
                revenue_impact=123_456.78,
                started_at=when,
                declared_at=when,
                **MARKERS,
                **PEOPLE,
            )
        )
        session.flush()
        session.add(
            TimelineEntry(
                incident_id="INC-2026-12-02-001",
                kind="message",
                author="ULEAKRESPONDER",
                text="LEAKTIMELINETEXT",
                slack_ts="1.1",
                occurred_at=when,
            )
        )
        session.add(
            FollowUp(
                incident_id="INC-2026-12-02-001",
                description="LEAKFOLLOWUP",
                owner="ULEAKOWNER",
                due_date=date(2026, 12, 9),
                created_at=when,
            )
        )
        public = service.publish(
            session=session,
            incident_id="INC-2026-12-02-001",
            title="Database slow",
            components=["db"],
            impact="partial_outage",
            message="Queries are slow.",
            now=when,
            author_id="ULEAKAUTHOR",
            config=sp_data.CONFIG,
        )
        service.post_update(
            session=session,
            public_id=public.id or 0,
            status="resolved",
            message="Fixed.",
            now=when + timedelta(minutes=30),
            author_id="ULEAKAUTHOR2",
        )
        service.schedule_maintenance(
            session=session,
            components=["db"],
            starts_at=sp_data.NOW,
            ends_at=sp_data.NOW + timedelta(hours=1),
            message="Upgrade",
            now=when,
            created_by="ULEAKMAINTAINER",
        )
    site = StatusSite(sessions, sp_data.CONFIG, sp_data.INFO, clock=lambda: sp_data.NOW)
    outputs = {}
    for path in [
        "/status",
        "/status/history",
        f"/status/incidents/{public.id}",
        "/status/history.atom",
        "/status/history.rss",
        "/api/v2/summary.json",
        "/api/v2/status.json",
        "/api/v2/components.json",
        "/api/v2/incidents.json",
        "/api/v2/incidents/unresolved.json",
        "/api/v2/scheduled-maintenances.json",
    ]:
        status, _, body = site.serve(path)
        assert status == 200, path
        outputs[path] = body.decode()
    site.export(tmp_path / "site")
    for file in (tmp_path / "site").rglob("*"):
        if file.is_file():
            outputs[str(file)] = file.read_text()
    assert "Database slow" in outputs["/status/history"]
    forbidden = [
        *MARKERS.values(),
        *PEOPLE.values(),
        "LEAKTIMELINETEXT",
        "ULEAKRESPONDER",
        "LEAKFOLLOWUP",
        "ULEAKOWNER",
        "ULEAKAUTHOR",
        "ULEAKMAINTAINER",
        "INC-2026-12-02-001",
        "987654",
        "987,654",
        "123456",
        "Code Bug",
        "P1",
    ]
    leaks = [(marker, name) for name, text in outputs.items() for marker in forbidden if marker in text]
    assert leaks == []
