"""Markdown outputs print people's names where `person` knows them, else the Slack id."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from incident_rows import incident, store

from bot.incidents import people
from bot.reports import postmortem as postmortem_md
from bot.reports import report as report_md
from bot.reports import tracker as tracker_md
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import FollowUp, TimelineEntry

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_postmortem_tracker_and_report_print_names_and_unknown_ids_stay(sessions: SessionFactory) -> None:
    declared = NOW - timedelta(days=3)
    row = incident(
        declared,
        severity="P1",
        declared_by="U0ALICE",
        commander="U0BOB",
        reported_by="U0DAVE",
        ack=timedelta(minutes=2),
    )
    store(sessions, row)
    store(
        sessions,
        TimelineEntry(
            incident_id=row.id,
            kind="system",
            text="Acknowledged by <@U0BOB>",
            occurred_at=declared + timedelta(minutes=2),
        ),
        TimelineEntry(
            incident_id=row.id,
            kind="message",
            author="U0CAROL",
            text="paging <@U0DAVE> and <@U0NOBODY>",
            slack_ts="1.000001",
            occurred_at=declared + timedelta(minutes=3),
        ),
        FollowUp(
            incident_id=row.id, description="add an alert", owner="U0CAROL", due_date=date(2026, 12, 1), created_at=NOW
        ),
    )
    with unit_of_work(sessions) as session:
        for user_id, display, real in (
            ("U0BOB", "bob", "Bob Builder"),
            ("U0CAROL", "", "Carol | Ops"),
            ("U0DAVE", "dave_o", "Dave"),
        ):
            people.remember(session, people.Profile(user_id, display, real), now=NOW)
    with sessions() as session:
        postmortem = postmortem_md.render_postmortem(session, row.id) or ""
        tracker = tracker_md.render_tracker(session, Settings(), NOW)
        report = report_md.render_report(session, Settings(), "weekly", NOW + timedelta(days=7))
    assert "- 2026-11-20 10:02 - Acknowledged by bob" in postmortem, postmortem
    # Markdown punctuation in a name is escaped: "|" would split a table cell.
    assert "- 10:03 - Carol \\| Ops: paging dave\\_o and <@U0NOBODY>" in postmortem, postmortem
    assert "(owner Carol \\| Ops, due 2026-12-01)" in postmortem
    assert "- Declared from a Slack message by dave\\_o" in postmortem
    for document in (postmortem, tracker, report):
        assert "<@U0BOB>" not in document and "<@U0CAROL>" not in document and "<@U0DAVE>" not in document
    assert "<@U0NOBODY>" in tracker  # nobody knows them: the id
    assert "| bob |" in tracker  # the active incidents' commander
    assert "owner Carol \\| Ops" in tracker  # the open follow-up in Action Items
