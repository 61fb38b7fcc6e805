"""Many thread replies stored in one transaction: the timeline's path for a busy thread.

Storing replies one transaction each cost a commit, five statements and their ORM overhead per
reply, so a busy incident thread outran the worker (about 100 replies/s on SQLite). Here a batch
is a handful of statements whatever its size. The outcome is the one `timeline.ingest` gives each
reply on its own: keyed by event id and by (incident, ts), so a redelivery, a reply already stored
by an edit that came first, or a replica racing us changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.incidents import deadlines, timeline
from bot.incidents.outbox import dialect_insert
from storage.models import ProcessedEvent, TimelineEntry


@dataclass(frozen=True)
class Reply:
    """One posted thread reply, and the Events API event id it came with (None: no dedupe)."""

    message: timeline.ThreadMessage
    event_id: str | None


def record_replies(
    session: Session, replies: Sequence[Reply], *, policy: deadlines.Policy, now: datetime
) -> list[Reply]:
    """Store the replies that belong to an incident thread and are new; those, in the given order."""
    incidents = _thread_incidents(session, replies)
    in_threads = [r for r in replies if (r.message.channel_id, r.message.thread_ts) in incidents]
    fresh = _claim_events(session, in_threads, now)
    stored_keys = _insert_messages(session, fresh, incidents)
    stored = [
        r for r in fresh if (incidents[(r.message.channel_id, r.message.thread_ts)].id, r.message.ts) in stored_keys
    ]
    # By id: two batches touching the same incidents lock their rows in the same order.
    for incident in sorted(
        {incidents[(r.message.channel_id, r.message.thread_ts)] for r in stored}, key=lambda i: i.id
    ):
        timeline.record_activity(session, incident, policy=policy, now=now)
    return stored


def _thread_incidents(session: Session, replies: Sequence[Reply]) -> dict[tuple[str, str], timeline.ThreadIncident]:
    # A batch is nearly always one busy thread, so one narrow read per distinct thread is cheap.
    found: dict[tuple[str, str], timeline.ThreadIncident] = {}
    for key in dict.fromkeys((r.message.channel_id, r.message.thread_ts) for r in replies):
        incident = timeline.thread_incident(session, *key)
        if incident is not None:
            found[key] = incident
    return found


def _claim_events(session: Session, replies: list[Reply], now: datetime) -> list[Reply]:
    """The replies whose event id is seen for the first time (claimed in this transaction)."""
    ids = sorted({r.event_id for r in replies if r.event_id})
    claimed: set[str] = set()
    if ids:
        # Key order, so two replicas' batches lock the same keys in the same order.
        statement = (
            dialect_insert(session, ProcessedEvent)
            .on_conflict_do_nothing()
            .returning(ProcessedEvent.__table__.c.event_id)  # type: ignore[attr-defined]
        )
        rows = [{"event_id": event_id, "received_at": now} for event_id in ids]
        claimed = set(session.execute(statement, rows).scalars())
    fresh, seen = [], set()
    for reply in replies:
        if reply.event_id is None:
            fresh.append(reply)
        elif reply.event_id in claimed and reply.event_id not in seen:
            seen.add(reply.event_id)
            fresh.append(reply)
    return fresh


def _insert_messages(
    session: Session, replies: list[Reply], incidents: dict[tuple[str, str], timeline.ThreadIncident]
) -> set[tuple[str, str]]:
    """Insert the replies' timeline entries, skipping those already there; the (incident, ts) stored."""
    if not replies:
        return set()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for reply in replies:
        incident = incidents[(reply.message.channel_id, reply.message.thread_ts)]
        rows.setdefault((incident.id, reply.message.ts), timeline.message_row(incident.id, reply.message))
    table = TimelineEntry.__table__  # type: ignore[attr-defined]
    statement = (
        dialect_insert(session, TimelineEntry).on_conflict_do_nothing().returning(table.c.incident_id, table.c.slack_ts)
    )
    # A list of parameters: one statement, sent as a multi-row INSERT ("insertmanyvalues").
    result = session.execute(statement, [rows[key] for key in sorted(rows)])
    return {(incident_id, ts) for incident_id, ts in result.all()}
