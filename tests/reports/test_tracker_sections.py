"""Tracker sections over hand-built histories: the log's month line, MTTR by severity, the quarterly
retrospectives and the notification channels as configured."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from incident_rows import incident, store

from bot.reports import tracker as tracker_md
from bot.settings import Settings
from storage.db import SessionFactory

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def at(day: int, hour: int = 9, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def render(sessions: SessionFactory, settings: Settings | None = None, *, log_limit: int = 50) -> str:
    with sessions() as session:
        return tracker_md.render_tracker(session, settings or Settings(), NOW, log_limit=log_limit)


def history(sessions: SessionFactory) -> None:
    # This month: P0 1, P1 2, P2 5 (skewed MTTRs), P3 2; the three most recent are P2, P3, P3.
    p2_minutes = [10, 20, 30, 40, 300]
    store(
        sessions,
        incident(at(2), severity="P0", ack=MIN, resolved=8 * MIN),
        incident(at(3), severity="P1", ack=MIN, resolved=20 * MIN),
        incident(at(4), severity="P1", ack=MIN, resolved=40 * MIN),
        *(incident(at(5 + n), severity="P2", ack=MIN, resolved=m * MIN) for n, m in enumerate(p2_minutes[:-1])),
        incident(at(20), severity="P2", ack=MIN, resolved=p2_minutes[-1] * MIN),
        incident(at(21), severity="P3", ack=MIN, resolved=60 * MIN),
        incident(at(22), severity="P3", ack=MIN),
        # Last quarter: one incident, so Q3 has a section of its own.
        incident(at(15, month=8), severity="P2", ack=MIN, resolved=30 * MIN),
    )


def test_the_month_line_splits_the_further_incidents_not_the_whole_month(sessions: SessionFactory) -> None:
    history(sessions)
    markdown = render(sessions, log_limit=3)
    assert "*7 further incidents this month (P0 1 · P1 2 · P2 4 · P3 0): " in markdown, markdown


def test_mttr_by_severity_shows_mean_median_p90_and_count(sessions: SessionFactory) -> None:
    history(sessions)
    section = render(sessions).split("### MTTR by Severity", 1)[1].split("\n\n", 1)[0]
    # (10+20+30+40+300)/5 = 80 min; median 30; p90 at rank 3.6: 40 + 0.6 × 260 = 196 min.
    assert "| P2 | <2 hours | 1 h 20 min / 30.0 min / 3 h 16 min (n=5) |" in section, section
    assert "| P3 | <8 hours | 1 h 00 min / 1 h 00 min / 1 h 00 min (n=1) |" in section, section


def test_every_quarter_gets_the_key_questions_and_the_weekly_slot_reads_as_words(sessions: SessionFactory) -> None:
    history(sessions)
    section = render(sessions).split("## 📅 Quarterly Retrospectives", 1)[1].split("\n---\n", 1)[0]
    quarters = re.findall(r"^### (Q\d 2026)", section, re.MULTILINE)
    assert quarters == ["Q4 2026", "Q3 2026"]
    assert section.count("**Key Questions:**") == 2
    assert section.count("5. What preventive measures worked?") == 2
    assert "- [ ] Weekly: Mondays 10:00 UTC (quick review of the past week)" in section
    assert "0 10 * * mon" not in section
    custom = render(sessions, Settings(digest_cron="*/30 9-17 * * 1-5", digest_timezone="Europe/Berlin"))
    assert "- [ ] Weekly: `*/30 9-17 * * 1-5` (Europe/Berlin) (quick review" in custom


def channels(markdown: str) -> str:
    return markdown.split("## 🔔 Notification Channels", 1)[1].split("\n---\n", 1)[0]


def test_notification_channels_say_which_are_off_by_default(sessions: SessionFactory) -> None:
    section = channels(render(sessions))
    assert "- **Slack:** #ops-alerts" in section and "- **Slack:** #ops-incidents" in section
    assert "- **Email:** ⬜ Off (set `SMTP_URL`" in section
    assert "- **SMS:** ⬜ Off (set `PAGE_WEBHOOK_URL`" in section
    assert "- **Status Page:** ⬜ Off (set `STATUS_PAGE=true`" in section


def test_notification_channels_render_the_configuration_without_its_secrets(sessions: SessionFactory) -> None:
    settings = Settings(
        smtp_url="smtp://bot:hunter2@mail.example.com:587",
        email_from="incidents@example.com",
        page_webhook_url="https://relay.example.com/hooks/s3cr3t-token",
        page_webhook_secret="whsec",
        status_page=True,
        status_page_url="https://status.example.com",
        status_page_title="Example Status",
    )
    section = channels(render(sessions, settings))
    assert "- **Email:** ✅ On: " in section and "mail.example.com, from incidents@example.com" in section
    assert "- **SMS:** ✅ On: every page is sent as JSON to relay.example.com, signed" in section
    assert "- **Status Page:** ✅ On: *Example Status* at https://status.example.com" in section
    for secret in ("hunter2", "s3cr3t-token", "whsec", "bot:"):
        assert secret not in section
