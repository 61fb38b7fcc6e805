"""The escalation sweep: find what is due, claim it exactly once in the database, announce it.

What is due is decided by bot/deadlines.py (pure). Here each due escalation is claimed with an
INSERT on its unique key (incident, kind, level): whichever replica inserts first owns it, the others'
inserts are no-ops. The announcement is written to the outbox in the same transaction, so delivery
is recorded separately from the claim and retried until Slack takes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import mrkdwn
from bot.incidents import deadlines
from bot.incidents.outbox import OutboxKind, dialect_insert, refresh_cards
from bot.oncall import paging
from bot.oncall import service as oncall_service
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import (
    EntryKind,
    Escalation,
    EscalationKind,
    Incident,
    Outbox,
    SystemEvent,
    TimelineEntry,
    utcnow,
)

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


def sweep(
    sessions: SessionFactory, settings: Settings, *, now: datetime | None = None, limit: int = 500
) -> list[Claimed]:
    """One pass: claim and queue every escalation due at `now`; returns what this process won.

    One transaction and a handful of set-based statements, whatever the number due: read the due
    incidents and their claims, insert every claim at once (ON CONFLICT DO NOTHING RETURNING tells
    which this process won), write the winners' announcements, and move each incident's
    next_check_at. Rows are taken in id order, so replicas sweeping at once queue on the same keys
    in the same order and never deadlock; a claim another replica holds is simply not returned.
    """
    now = now or utcnow()
    policy = settings.policy()
    with unit_of_work(sessions) as session:
        due_ids = due_incident_ids(session, now, limit=limit)
        if not due_ids:
            return []
        # Locked for the pass, so what it writes (claims, next_check_at) never comes from a copy
        # that a concurrent acknowledgement or severity change made stale: on PostgreSQL a row
        # being changed right now is skipped (its own transaction moves next_check_at, and the
        # next pass sees it); SQLite's one writer (BEGIN IMMEDIATE) already serialises them.
        # SKIP LOCKED also lets replicas sweeping at once take different incidents. FOR NO KEY
        # UPDATE (the lock the UPDATE of next_check_at takes anyway) still makes acknowledge and
        # change_severity (FOR UPDATE) wait, but not the foreign-key checks (FOR KEY SHARE) of
        # replies and outbox rows being written for these incidents meanwhile.
        query = select(Incident).where(Incident.id.in_(due_ids)).order_by(Incident.id)  # type: ignore[attr-defined]
        due_incidents = list(session.exec(query.with_for_update(key_share=True, skip_locked=True)))
        if not due_incidents:
            return []
        fired = _fired_by_incident(session, [i.id for i in due_incidents])
        wanted = {
            (incident.id, item.kind.value, item.level): (incident, item)
            for incident in due_incidents
            for item in deadlines.plan(deadlines.clock_of(incident), policy, fired[incident.id], now)[0]
        }
        won = _claim(session, wanted, now)
        _announce(session, [(wanted[key], escalation_id) for key, escalation_id in won], settings, now)
        for incident_id, kind, level in (key for key, _ in won):
            fired[incident_id].append(deadlines.Fired(kind=kind, level=level, fired_at=now))
        moves = []
        for incident in due_incidents:
            due, later = deadlines.plan(deadlines.clock_of(incident), policy, fired[incident.id], now)
            # Due but not won: another replica owns it and will move the incident itself.
            moves.append({"id": incident.id, "next_check_at": now if due else later})
        session.execute(sa.update(Incident), moves)
    claimed = [Claimed(*key) for key, _ in won]
    for claim in claimed:
        log.info("escalation claimed: %s %s level %d", claim.incident_id, claim.kind, claim.level)
    return claimed


def _fired_by_incident(session: Session, incident_ids: list[str]) -> dict[str, list[deadlines.Fired]]:
    fired: dict[str, list[deadlines.Fired]] = {incident_id: [] for incident_id in incident_ids}
    rows = session.execute(
        sa.select(
            col(Escalation.incident_id), col(Escalation.kind), col(Escalation.level), col(Escalation.fired_at)
        ).where(col(Escalation.incident_id).in_(incident_ids))
    )
    for incident_id, kind, level, fired_at in rows:
        fired[incident_id].append(deadlines.Fired(kind=kind, level=level, fired_at=fired_at))
    return fired


Key = tuple[str, str, int]  # (incident id, kind, level): the claim's unique key


def _claim(session: Session, wanted: dict[Key, tuple[Incident, deadlines.Due]], now: datetime) -> list[tuple[Key, int]]:
    """Insert every wanted claim in one statement; the rows it returns are the ones this process won."""
    if not wanted:
        return []
    values = [
        {"incident_id": key[0], "kind": key[1], "level": key[2], "due_at": item.due_at, "fired_at": now}
        for key, (_, item) in sorted(wanted.items())
    ]
    table = Escalation.__table__  # type: ignore[attr-defined]
    statement = (
        dialect_insert(session, Escalation)
        .on_conflict_do_nothing()
        .returning(table.c.incident_id, table.c.kind, table.c.level, table.c.id)
    )
    # A list of parameter sets, not .values(list): SQLAlchemy batches them into multi-row
    # INSERTs ("insertmanyvalues") from one cached compiled statement, where .values(list)
    # compiled a fresh statement of a few hundred parameters every pass (cProfile).
    return [((row[0], row[1], row[2]), row[3]) for row in session.execute(statement, values)]


def _announce(
    session: Session,
    won: list[tuple[tuple[Incident, deadlines.Due], int]],
    settings: Settings,
    now: datetime,
) -> None:
    """The winners' timeline entries and outbox rows, written in bulk."""
    if not won:
        return
    policy = settings.policy()
    overrides = oncall_overrides(session, policy.oncall, now)
    entries: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    refreshed: set[str] = set()
    for (incident, item), escalation_id in won:
        if item.kind == EscalationKind.UPDATE_NUDGE:
            # Since the spell began, not since the last nudge: the third one says 1h 30m, not 30m.
            quiet_since = deadlines.quiet_since(deadlines.clock_of(incident)) or now
            text = nudge_text(incident, quiet_since, now)
            entries.append(_entry(incident.id, SystemEvent.NUDGED, text, {"level": item.level}, now))
        else:
            clock = deadlines.clock_of(incident)
            deadline = (
                deadlines.response_deadline(clock, policy)
                if item.kind == EscalationKind.RESPONSE
                else deadlines.resolution_deadline(clock, policy)
            )
            mentions = deadlines.contacts_for_level(
                settings.escalation_contacts, settings.escalation_levels, item.level
            )
            on_call = paging.on_call_people(incident, policy.oncall, overrides, now)
            mentions = mentions + [user for user in on_call if user not in mentions]
            text = escalation_text(incident, item, deadline, mentions, now)
            missed = int((now - deadline).total_seconds())
            data = {"kind": item.kind.value, "level": item.level, "missed_by": missed}
            entries.append(_entry(incident.id, SystemEvent.ESCALATED, text, data, now))
            messages.append(
                _message(OutboxKind.CHANNEL_POST, incident.id, {"channel": settings.alert_channel, "text": text}, now)
            )
            refreshed.add(incident.id)
        messages.append(
            _message(OutboxKind.THREAD_REPLY, incident.id, {"text": text, "escalation_id": escalation_id}, now)
        )
    session.execute(sa.insert(TimelineEntry), entries)
    # Thread replies before cross-posts, as a person would read them.
    messages.sort(key=lambda m: m["kind"] != OutboxKind.THREAD_REPLY.value)
    session.execute(sa.insert(Outbox), messages)
    refresh_cards(session, sorted(refreshed), now=now)  # the card shows the breach


def oncall_overrides(session: Session, config: Any, now: datetime) -> dict[str, Any]:
    """The overrides in force now, when on-call routes exist (whoever is on call is mentioned too)."""
    if config is None or not config.schedules:
        return {}
    return oncall_service.override_indexes(session=session, start=now, end=now + timedelta(seconds=1))


def _entry(incident_id: str, event: SystemEvent, text: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": EntryKind.SYSTEM.value,
        "event": event.value,
        "author": None,
        "text": text,
        "files": [],
        "data": data,
        "deleted": False,
        "key_event": False,
        "occurred_at": now,
    }


def _message(kind: OutboxKind, incident_id: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "incident_id": incident_id,
        "payload": payload,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }


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


def nudge_text(incident: Incident, quiet_since: datetime, now: datetime) -> str:
    who = mrkdwn.user(incident.commander) if incident.commander else "Commander"
    return (
        f":wave: {who}: no update on {incident.id} for {deadlines.format_duration(now - quiet_since)}. "
        'Post what you know in this thread, even if it is "still investigating".'
    )
