"""The human timeline: thread replies, their edits and deletions, and :pushpin: key events.

Slack redelivers events, delivers them out of order, and may send one to two replicas at once.
Every write here is keyed (event id, message ts) so the timeline comes out the same regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import mrkdwn
from bot.incidents import deadlines
from bot.incidents.outbox import insert_ignoring_conflict
from bot.incidents.queries import find_by_thread, reschedule
from storage.models import EntryKind, Incident, PendingPin, ProcessedEvent, TimelineEntry


@dataclass(frozen=True)
class ThreadMessage:
    channel_id: str
    thread_ts: str
    ts: str
    user: str | None
    text: str
    files: list[dict[str, str]]
    edited_ts: str | None = None


def claim_event(session: Session, event_id: str | None, now: datetime) -> bool:
    """True the first time an Events API event id is seen, in this transaction's view.

    Claimed in the same transaction as the work, so a failed attempt leaves the id unclaimed and
    Slack's retry can do it; a replica racing us waits on the key and then backs off.
    """
    if not event_id:
        return True
    return insert_ignoring_conflict(session, ProcessedEvent, {"event_id": event_id, "received_at": now})


def message_row(incident_id: str, message: ThreadMessage, *, deleted: bool = False) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": EntryKind.MESSAGE.value,
        "author": message.user,
        "text": "" if deleted else message.text,
        "slack_ts": message.ts,
        "edited_ts": message.edited_ts,
        "files": [] if deleted else message.files,
        "data": {},
        "deleted": deleted,
        "key_event": False,
        "occurred_at": mrkdwn.ts_to_datetime(message.ts),
    }


@dataclass(frozen=True)
class ThreadIncident:
    """What storing a reply needs to know of its incident: a narrow read, done for every reply."""

    id: str
    severity: str
    acknowledged_at: datetime | None
    resolved_at: datetime | None


def thread_incident(session: Session, channel_id: str, thread_ts: str) -> ThreadIncident | None:
    row = session.execute(
        sa.select(
            col(Incident.id), col(Incident.severity), col(Incident.acknowledged_at), col(Incident.resolved_at)
        ).where(col(Incident.channel_id) == channel_id, col(Incident.card_ts) == thread_ts)
    ).first()
    return ThreadIncident(*row) if row else None


def record_message(
    session: Session,
    message: ThreadMessage,
    *,
    policy: deadlines.Policy,
    now: datetime,
    incident: ThreadIncident | None = None,
) -> bool:
    """Store a thread reply once; False when it is not in an incident thread or already stored."""
    incident = incident or thread_incident(session, message.channel_id, message.thread_ts)
    if incident is None:
        return False
    if not insert_ignoring_conflict(session, TimelineEntry, message_row(incident.id, message)):
        return False
    record_activity(session, incident, policy=policy, now=now)
    return True


def record_activity(session: Session, incident: ThreadIncident, *, policy: deadlines.Policy, now: datetime) -> None:
    """A reply was stored in the incident's thread: move its last activity (and update nudge).

    Activity only matters to the update nudge; most replies (P2/P3, not yet acknowledged) need
    no write to the incident row at all, which a busy thread's replies would otherwise queue on.
    """
    if _nudge_applies(incident, policy) and _lock_for_activity(session, incident.id):
        row = session.get(Incident, incident.id)
        if row is not None:
            row.last_activity_at = max(row.last_activity_at or now, now)
            reschedule(session, row, policy, now)


def _nudge_applies(incident: ThreadIncident, policy: deadlines.Policy) -> bool:
    return (
        incident.severity in policy.update_reminder
        and incident.acknowledged_at is not None
        and incident.resolved_at is None
    )


def _lock_for_activity(session: Session, incident_id: str) -> bool:
    """Lock the incident's row to record a reply's activity, unless another transaction holds it.

    A reply only moves last_activity_at (and with it the next update nudge). When replies pour
    into one thread, each transaction queued on that row until the one ahead had committed, so on
    PostgreSQL a busy thread's replies were stored one commit at a time. Whoever holds the row is
    changing this incident this instant (most often another reply bumping it), so the bump is not
    worth the wait; a reply that lands while the sweep holds the row leaves it to the next one.
    (SQLite has no row locks and lets one writer in at a time anyway: there it is always taken.)
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    # FOR NO KEY UPDATE, the lock the UPDATE itself takes: the foreign-key checks of concurrent
    # timeline inserts (FOR KEY SHARE) do not conflict with it.
    statement = sa.select(col(Incident.id)).where(col(Incident.id) == incident_id)
    return session.execute(statement.with_for_update(key_share=True, skip_locked=True)).first() is not None


def record_edit(session: Session, message: ThreadMessage, *, now: datetime) -> TimelineEntry | None:
    """Apply an edit; an edit that arrives before its message creates the entry with the new text."""
    incident = find_by_thread(session, message.channel_id, message.thread_ts)
    if incident is None:
        return None
    entry = _entry(session, incident.id, message.ts, for_update=True)
    if entry is None:
        if insert_ignoring_conflict(session, TimelineEntry, message_row(incident.id, message)):
            return _entry(session, incident.id, message.ts)
        entry = _entry(session, incident.id, message.ts, for_update=True)
        if entry is None:
            return None
    # A deletion is final, whatever order Slack delivers things in; and edits may arrive out of
    # order, so only a newer edit replaces the text.
    if entry.deleted or _ts_value(message.edited_ts) < _ts_value(entry.edited_ts):
        return entry
    entry.text = message.text
    entry.edited_ts = message.edited_ts or entry.edited_ts
    if message.files:
        entry.files = message.files
    session.add(entry)
    return entry


def _ts_value(ts: str | None) -> float:
    try:
        return float(ts) if ts else 0.0
    except ValueError:
        return 0.0


def record_delete(session: Session, message: ThreadMessage) -> TimelineEntry | None:
    incident = find_by_thread(session, message.channel_id, message.thread_ts)
    if incident is None:
        return None
    entry = _entry(session, incident.id, message.ts, for_update=True)
    if entry is None:
        # Deleted before we saw it: keep a tombstone so the late original is not resurrected.
        insert_ignoring_conflict(session, TimelineEntry, message_row(incident.id, message, deleted=True))
        entry = _entry(session, incident.id, message.ts, for_update=True)
        if entry is None:
            return None
    entry.deleted = True
    session.add(entry)
    return entry


def set_key_event(
    session: Session, *, channel_id: str, ts: str, key_event: bool, now: datetime
) -> TimelineEntry | None:
    """:pushpin: on a thread reply marks it a key event in the postmortem.

    A pin on a reply not stored yet is kept aside and applied when the reply arrives (or by the
    sweep's reconciliation, should the two race in separate transactions).
    """
    entry = session.exec(
        select(TimelineEntry)
        .join(Incident, Incident.id == TimelineEntry.incident_id)  # type: ignore[arg-type]
        .where(Incident.channel_id == channel_id, TimelineEntry.slack_ts == ts)
    ).first()
    if entry is None:
        pending = session.get(PendingPin, (channel_id, ts))
        if pending is None:
            session.add(PendingPin(channel_id=channel_id, ts=ts, key_event=key_event, received_at=now))
        else:
            pending.key_event = key_event
            session.add(pending)
        return None
    entry.key_event = key_event
    session.add(entry)
    return entry


def apply_pending_pins(session: Session, *, older_than: datetime | None = None) -> int:
    """Apply pins whose reply has arrived since; drop those older than `older_than` (never matched)."""
    rows = session.execute(
        sa.select(PendingPin, TimelineEntry)
        .join(Incident, Incident.channel_id == PendingPin.channel_id)  # type: ignore[arg-type]
        .join(
            TimelineEntry,
            sa.and_(TimelineEntry.incident_id == Incident.id, TimelineEntry.slack_ts == PendingPin.ts),  # type: ignore[arg-type]
        )
    ).all()
    for pending, entry in rows:
        entry.key_event = pending.key_event
        session.add(entry)
        session.delete(pending)
    if older_than is not None:
        session.execute(sa.delete(PendingPin).where(col(PendingPin.received_at) < older_than))
    return len(rows)


def _entry(session: Session, incident_id: str, ts: str, *, for_update: bool = False) -> TimelineEntry | None:
    statement = select(TimelineEntry).where(TimelineEntry.incident_id == incident_id, TimelineEntry.slack_ts == ts)
    if for_update:
        statement = statement.with_for_update()
    # populate_existing: the row may have changed under this session (a racing replica).
    return session.exec(statement.execution_options(populate_existing=True)).first()


def timeline(session: Session, incident_id: str) -> list[TimelineEntry]:
    statement = (
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id)
        .order_by(TimelineEntry.occurred_at, TimelineEntry.id)  # type: ignore[arg-type]
    )
    return list(session.exec(statement))


KEY_EVENT_REACTION = "pushpin"


class Change(StrEnum):
    POSTED = "posted"
    EDITED = "edited"
    DELETED = "deleted"


def ingest(
    session: Session,
    change: Change,
    message: ThreadMessage,
    *,
    event_id: str | None,
    policy: deadlines.Policy,
    now: datetime,
) -> bool:
    """Apply one thread event, once per event id; messages outside incident threads are ignored
    (and leave no trace, so the dedupe table only grows with incident traffic).

    A :pushpin: that came before its reply is applied by the sweep's apply_pending_pins, within
    one ESCALATION_CHECK_INTERVAL, rather than by a lookup on every reply.
    """
    incident = thread_incident(session, message.channel_id, message.thread_ts)
    if incident is None or not claim_event(session, event_id, now):
        return False
    if change is Change.POSTED:
        return record_message(session, message, policy=policy, now=now, incident=incident)
    if change is Change.EDITED:
        return record_edit(session, message, now=now) is not None
    return record_delete(session, message) is not None
