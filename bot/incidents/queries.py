"""Incident lookups, ids and errors: the reads every change and listener starts from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.incidents import deadlines
from storage.models import (
    DayCounter,
    EntryKind,
    Escalation,
    FollowUp,
    Incident,
    Reopen,
    SystemEvent,
    TimelineEntry,
)
from storage.models import Status as S


class IncidentError(Exception):
    """A request the user can fix; the message is shown to them as it is."""


class IncidentNotFound(IncidentError):
    def __init__(self, incident_id: str) -> None:
        super().__init__(f"There is no incident {incident_id}. Try `/incident list`.")
        self.incident_id = incident_id


class InvalidChange(IncidentError):
    pass


def allocate_id(session: Session, when: datetime) -> str:
    """The next `INC-YYYY-MM-DD-NNN` for the UTC day of `when`.

    One upsert on the day's counter row: PostgreSQL locks the row, SQLite the database, so two
    replicas declaring in the same instant get different numbers, never the same one twice.
    """
    day = (when.astimezone(UTC) if when.tzinfo else when).date()
    table = DayCounter.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = (
        insert(table)
        .values(day=day, last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": table.c.last + 1})
        .returning(table.c.last)
    )
    number = session.execute(statement).scalar_one()
    return f"INC-{day:%Y-%m-%d}-{number:03d}"


def get(session: Session, incident_id: str, *, for_update: bool = False) -> Incident:
    incident = session.get(Incident, incident_id, with_for_update=for_update or None)
    if incident is None:
        raise IncidentNotFound(incident_id)
    return incident


def find_by_thread(session: Session, channel_id: str, thread_ts: str) -> Incident | None:
    return session.exec(
        select(Incident).where(Incident.channel_id == channel_id, Incident.card_ts == thread_ts)
    ).first()


def list_open(session: Session, *, limit: int = 50) -> list[Incident]:
    statement = (
        select(Incident)
        .where(Incident.status != S.RESOLVED.value)
        .order_by(Incident.severity, Incident.declared_at)  # type: ignore[arg-type]
        .limit(limit)
    )
    return list(session.exec(statement))


def count_open(session: Session) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(Incident).where(col(Incident.status) != S.RESOLVED.value)
    ).scalar_one()


def count_follow_ups(session: Session, incident_id: str) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(FollowUp).where(col(FollowUp.incident_id) == incident_id)
    ).scalar_one()


def add_system_entry(
    session: Session,
    incident: Incident,
    event: SystemEvent,
    text: str,
    *,
    author: str | None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        incident_id=incident.id,
        kind=EntryKind.SYSTEM.value,
        event=event.value,
        author=author,
        text=text,
        data=data or {},
        occurred_at=now,
    )
    session.add(entry)
    return entry


def fired_escalations(session: Session, incident_id: str) -> list[deadlines.Fired]:
    rows = session.exec(select(Escalation).where(Escalation.incident_id == incident_id))
    return [deadlines.Fired(kind=r.kind, level=r.level, fired_at=r.fired_at) for r in rows]


def reschedule(session: Session, incident: Incident, policy: deadlines.Policy, now: datetime) -> None:
    """Keep `next_check_at` current so the sweep finds due work with one indexed query."""
    due, later = deadlines.plan(deadlines.clock_of(incident), policy, fired_escalations(session, incident.id), now)
    incident.next_check_at = now if due else later
    session.add(incident)


def age(incident: Incident, now: datetime) -> timedelta:
    return (incident.resolved_at or now) - incident.started_at


def current_reopen(session: Session, incident: Incident) -> Reopen | None:
    """The reopening whose spell is the incident's current one, or None before any reopening."""
    if not incident.reopened_count:
        return None
    return session.exec(
        select(Reopen).where(Reopen.incident_id == incident.id, Reopen.seq == incident.reopened_count)
    ).first()
