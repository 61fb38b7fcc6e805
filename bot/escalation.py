"""The escalation sweep: find what is due, claim it exactly once in the database, announce it.

What is due is decided by bot/deadlines.py (pure). Here each due escalation is claimed with an
INSERT on its unique key (incident, kind, level): whichever replica inserts first owns it, the others'
inserts are no-ops. The announcement is written to the outbox in the same transaction, so delivery
is recorded separately from the claim and retried until Slack takes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from bot import deadlines, incidents, mrkdwn
from bot.outbox import OutboxKind, enqueue, insert_ignoring_conflict, refresh_card
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import Escalation, EscalationKind, Incident, SystemEvent, utcnow

log = logging.getLogger(__name__)

TARGET_NAMES = {EscalationKind.RESPONSE: "response", EscalationKind.RESOLUTION: "resolution"}


@dataclass(frozen=True)
class Claimed:
    incident_id: str
    kind: str
    level: int


def due_incident_ids(session: Session, now: datetime, *, limit: int = 500) -> list[str]:
    """The incidents the sweep must look at: one range scan on the next_check_at index."""
    statement = (
        select(Incident.id)
        .where(Incident.next_check_at.is_not(None), Incident.next_check_at <= now)  # type: ignore[union-attr,operator]
        .order_by(Incident.next_check_at)  # type: ignore[arg-type]
        .limit(limit)
    )
    return list(session.exec(statement))


def sweep(sessions: SessionFactory, settings: Settings, *, now: datetime | None = None) -> list[Claimed]:
    """One pass: claim and queue every escalation due at `now`; returns what this process won."""
    now = now or utcnow()
    with unit_of_work(sessions) as session:
        ids = due_incident_ids(session, now)
    claimed: list[Claimed] = []
    for incident_id in ids:
        with unit_of_work(sessions) as session:
            claimed += _escalate(session, incident_id, settings, now)
    return claimed


def _escalate(session: Session, incident_id: str, settings: Settings, now: datetime) -> list[Claimed]:
    incident = session.get(Incident, incident_id)
    if incident is None:
        return []
    policy = settings.policy()
    clock = deadlines.clock_of(incident)
    due, _ = deadlines.plan(clock, policy, incidents.fired_escalations(session, incident.id), now)
    won: list[Claimed] = []
    for item in due:
        claim = {
            "incident_id": incident.id,
            "kind": item.kind.value,
            "level": item.level,
            "due_at": item.due_at,
            "fired_at": now,
        }
        if not insert_ignoring_conflict(session, Escalation, claim):
            continue  # another replica (or an earlier pass) owns this one
        escalation_id = session.execute(
            sa.select(Escalation.id).where(
                Escalation.incident_id == incident.id,
                Escalation.kind == item.kind.value,
                Escalation.level == item.level,
            )
        ).scalar_one()
        if item.kind == EscalationKind.UPDATE_NUDGE:
            quiet_since = item.due_at - policy.update_reminder[incident.severity]
            _queue_nudge(session, incident, item, escalation_id, quiet_since, now)
        else:
            _queue_escalation(session, incident, item, escalation_id, settings, clock, now)
        won.append(Claimed(incident.id, item.kind.value, item.level))
        log.info("escalation claimed: %s %s level %d", incident.id, item.kind.value, item.level)
    incidents.reschedule(session, incident, policy, now)
    return won


def escalation_text(
    incident: Incident, item: deadlines.Due, deadline: datetime, mentions: list[str], now: datetime
) -> str:
    target = TARGET_NAMES[item.kind]
    unmet = "no acknowledgement yet" if item.kind == EscalationKind.RESPONSE else "not resolved yet"
    assert item.target is not None
    again = f" again (level {item.level + 1})" if item.level else ""
    who = " ".join(mrkdwn.mention(c) for c in mentions)
    return (
        f":rotating_light: *Escalated{again}*: {incident.id} [{incident.severity}] "
        f"{mrkdwn.escape(incident.title)}: the {target} target "
        f"({deadlines.format_duration(item.target)}) lapsed; missed by "
        f"{deadlines.format_duration(now - deadline)}, {unmet}." + (f"\n{who}" if who else "")
    )


def _queue_escalation(
    session: Session,
    incident: Incident,
    item: deadlines.Due,
    escalation_id: int,
    settings: Settings,
    clock: deadlines.IncidentClock,
    now: datetime,
) -> None:
    policy = settings.policy()
    deadline = (
        deadlines.response_deadline(clock, policy)
        if item.kind == EscalationKind.RESPONSE
        else deadlines.resolution_deadline(clock, policy)
    )
    mentions = deadlines.contacts_for_level(settings.escalation_contacts, settings.escalation_levels, item.level)
    text = escalation_text(incident, item, deadline, mentions, now)
    incidents.add_system_entry(
        session,
        incident,
        SystemEvent.ESCALATED,
        text,
        author=None,
        now=now,
        data={"kind": item.kind.value, "level": item.level, "missed_by": int((now - deadline).total_seconds())},
    )
    enqueue(
        session,
        OutboxKind.THREAD_REPLY,
        incident_id=incident.id,
        payload={"text": text, "escalation_id": escalation_id},
        now=now,
    )
    enqueue(
        session,
        OutboxKind.CHANNEL_POST,
        incident_id=incident.id,
        payload={"channel": settings.alert_channel, "text": text},
        now=now,
    )
    refresh_card(session, incident.id, now=now)


def _queue_nudge(
    session: Session,
    incident: Incident,
    item: deadlines.Due,
    escalation_id: int,
    quiet_since: datetime,
    now: datetime,
) -> None:
    who = mrkdwn.user(incident.commander) if incident.commander else "Commander"
    text = (
        f":wave: {who}: no update on {incident.id} for {deadlines.format_duration(now - quiet_since)}. "
        'Post what you know in this thread, even if it is "still investigating".'
    )
    incidents.add_system_entry(
        session, incident, SystemEvent.NUDGED, text, author=None, now=now, data={"level": item.level}
    )
    enqueue(
        session,
        OutboxKind.THREAD_REPLY,
        incident_id=incident.id,
        payload={"text": text, "escalation_id": escalation_id},
        now=now,
    )
