"""The target escalation's "Escalated" reply also mentions whoever is on call for the incident's policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oncall_bot import ONCALL
from sqlmodel import select

from bot.incidents import escalation
from bot.incidents import lifecycle as incidents
from bot.incidents.forms import DeclareForm
from bot.oncall.service import add_override
from bot.settings import Settings
from storage import db
from storage.models import Outbox

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def escalated_texts(sessions: db.SessionFactory) -> list[str]:
    with db.unit_of_work(sessions) as session:
        rows = session.exec(select(Outbox).where(Outbox.kind == "thread_reply")).all()
        return [r.payload["text"] for r in rows if "Escalated" in r.payload["text"]]


def declare(sessions: db.SessionFactory, settings: Settings, severity: str) -> str:
    with db.unit_of_work(sessions) as session:
        incident = incidents.declare(session, DeclareForm(title="Checkout down", severity=severity),
                                     declared_by="U0BOB", policy=settings.policy(), now=NOW)
        return incident.id


def test_escalation_mentions_the_contacts_and_who_is_on_call(sessions: db.SessionFactory) -> None:
    settings = Settings(oncall=ONCALL, escalation_contacts=["S0OPS"])
    declare(sessions, settings, "P0")
    escalation.sweep(sessions, settings, now=NOW + timedelta(minutes=6))
    (text,) = escalated_texts(sessions)
    assert text.endswith("<!subteam^S0OPS> <@U01ALICE>")


def test_an_override_changes_who_is_mentioned(sessions: db.SessionFactory) -> None:
    settings = Settings(oncall=ONCALL)
    with db.unit_of_work(sessions) as session:
        add_override(session=session, schedule="primary", user_id="U0ZOE", starts_at=NOW,
                     ends_at=NOW + timedelta(hours=1), created_by=None, now=NOW)
    declare(sessions, settings, "P0")
    escalation.sweep(sessions, settings, now=NOW + timedelta(minutes=6))
    (text,) = escalated_texts(sessions)
    assert "<@U0ZOE>" in text and "U01ALICE" not in text


def test_unrouted_incident_mentions_no_one_on_call(sessions: db.SessionFactory) -> None:
    settings = Settings(oncall=ONCALL)
    declare(sessions, settings, "P1")  # only P0 is routed
    escalation.sweep(sessions, settings, now=NOW + timedelta(minutes=16))
    (text,) = escalated_texts(sessions)
    assert "<@" not in text
