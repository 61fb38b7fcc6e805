"""On-call load in the weekly digest and the monthly report, only when on-call is configured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oncall_bot import ONCALL

from bot.incidents import lifecycle as incidents
from bot.incidents.forms import DeclareForm
from bot.oncall import paging
from bot.oncall.load import period_load
from bot.reports.digest import load
from bot.reports.periods import previous_period
from bot.reports.report import render_report
from bot.settings import Settings
from bot.slack.blocks.digest import digest_message
from storage import db

DECLARED = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)  # 00:30 in Berlin: out of hours


def paged_and_acknowledged(sessions: db.SessionFactory, settings: Settings) -> None:
    with db.unit_of_work(sessions) as session:
        incident = incidents.declare(session, DeclareForm(title="Checkout down", severity="P0"), declared_by="U0BOB",
                                     policy=settings.policy(), now=DECLARED)
        incident_id = incident.id
    for minutes in (0, 10):  # step 1 (U01ALICE), step 2 (U0LEAD)
        paging.sweep(sessions, settings.oncall, now=DECLARED + timedelta(minutes=minutes), worker="w")
    with db.unit_of_work(sessions) as session:
        incidents.acknowledge(session, incident_id, user="U0LEAD", policy=settings.policy(),
                              now=DECLARED + timedelta(minutes=12))


def test_load_per_person(sessions: db.SessionFactory) -> None:
    settings = Settings(oncall=ONCALL)
    paged_and_acknowledged(sessions, settings)
    week = previous_period("weekly", datetime(2026, 3, 10, 12, tzinfo=UTC), "UTC")
    with db.unit_of_work(sessions) as session:
        found = period_load(session, settings.oncall, week.start, week.end)
    alice, lead = found["U01ALICE"], found["U0LEAD"]
    assert (alice.pages, alice.pages_out_of_hours, alice.hours_on_call, alice.acknowledged) == (1, 1, 168.0, 0)
    assert (lead.pages, lead.hours_on_call, lead.acknowledged) == (1, 0.0, 1)


def test_weekly_digest_and_monthly_report_show_it(sessions: db.SessionFactory) -> None:
    settings = Settings(oncall=ONCALL, digest_cron="", monthly_digest_cron="", quarterly_digest_cron="")
    paged_and_acknowledged(sessions, settings)
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    with db.unit_of_work(sessions) as session:
        message = digest_message(load(session, settings, previous_period("weekly", now, "UTC"), now), settings)
        report = render_report(session, settings, "monthly", datetime(2026, 4, 6, 12, tzinfo=UTC))
    (section,) = [b["text"]["text"] for b in message["blocks"] if "On-call load" in str(b)]
    assert "<@U01ALICE>: 1 page (1 out of hours), 168 h on call, 0 acknowledged" in section
    assert "<@U0LEAD>: 1 page (1 out of hours), 0 h on call, 1 acknowledged" in section
    assert "## On-call load" in report
    assert "| U0LEAD | 1 | 1 | 0.0 | 1 |" in report


def test_no_oncall_section_without_schedules(sessions: db.SessionFactory) -> None:
    settings = Settings()
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    with db.unit_of_work(sessions) as session:
        message = digest_message(load(session, settings, previous_period("weekly", now, "UTC"), now), settings)
        report = render_report(session, settings, "monthly", now)
    assert "On-call load" not in str(message) and "On-call load" not in report
