"""The outbox: Slack calls recorded in the same transaction as the change they announce.

Nothing here talks to Slack (that is bot/delivery.py). Writing the message with the change means
a crash, a 500 or a 429 storm can delay an announcement but never lose it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from storage.models import Incident, Outbox, utcnow


class OutboxKind(StrEnum):
    CARD_POST = "card_post"  # the incident's top-level message; stores channel and ts
    CARD_UPDATE = "card_update"  # re-render the card from the current state (coalesced)
    THREAD_REPLY = "thread_reply"  # a reply in the card's thread
    CHANNEL_POST = "channel_post"  # a top-level post elsewhere (escalation cross-post)
    DIGEST = "digest"  # a report post, with its chart
    PAGE_DM = "page_dm"  # an on-call page: a direct message with an Acknowledge button
    HANDOFF_DM = "handoff_dm"  # "you are on call for primary until Mon 09:00 CET"
    USERGROUP_UPDATE = "usergroup_update"  # a schedule's user group set to whoever is on call


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """An INSERT for `model` that knows ON CONFLICT on this session's backend."""
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignoring_conflict(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on either backend; True when the row went in.

    This is the exactly-once primitive: whichever transaction inserts the key first wins, and
    every other replica's insert becomes a no-op instead of an error.
    """
    statement = dialect_insert(session, model).values(**values).on_conflict_do_nothing()
    # Without preserve_rowcount, SQLAlchemy 2.1 on psycopg reports -1 for an INSERT (truthy even
    # when the conflict made it a no-op), which would let every replica "win".
    result = session.execute(statement.execution_options(preserve_rowcount=True))
    return result.rowcount == 1  # type: ignore[attr-defined]


def enqueue(
    session: Session,
    kind: OutboxKind,
    *,
    incident_id: str | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Add a Slack call to make; with a dedupe_key, a pending call with that key absorbs it."""
    now = now or utcnow()
    return insert_ignoring_conflict(
        session,
        Outbox,
        {
            "kind": kind.value,
            "incident_id": incident_id,
            "payload": payload or {},
            "dedupe_key": dedupe_key,
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
        },
    )


def announce(session: Session, incident_id: str, text: str, *, now: datetime | None = None) -> None:
    """Re-render the card and say what changed in its thread: how every change is shown."""
    enqueue(session, OutboxKind.THREAD_REPLY, incident_id=incident_id, payload={"text": text}, now=now)
    refresh_card(session, incident_id, now=now)


def refresh_card(session: Session, incident_id: str, *, now: datetime | None = None) -> None:
    refresh_cards(session, [incident_id], now=now)


def refresh_cards(session: Session, incident_ids: list[str], *, now: datetime | None = None) -> None:
    """Re-render these incidents' cards, in one statement (the sweep escalates dozens at once).

    One pending re-render per incident is enough (its dedupe key absorbs the rest): it renders
    whatever is current when it is sent.
    """
    if not incident_ids:
        return
    now = now or utcnow()
    rows = [
        {
            "kind": OutboxKind.CARD_UPDATE.value,
            "incident_id": incident_id,
            "payload": {},
            "dedupe_key": f"card_update:{incident_id}",
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
        }
        for incident_id in incident_ids
    ]
    # Parameter sets, not .values(rows): one cached statement, batched by SQLAlchemy (see escalation._claim).
    session.execute(dialect_insert(session, Outbox).on_conflict_do_nothing(), rows)


def pending_count(session: Session) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(Outbox).where(Outbox.delivered_at.is_(None))  # type: ignore[union-attr]
    ).scalar_one()


def dead_letters(session: Session) -> list[Outbox]:
    """Slack calls set aside because Slack refused them for good, oldest first."""
    query = sa.select(Outbox).where(Outbox.dead_at.is_not(None)).order_by(Outbox.id)  # type: ignore[union-attr,arg-type]
    return list(session.scalars(query))


def count_dead_letters(session: Session | sa.Connection) -> int:
    """How many dead letters there are (the /healthz detail, which passes a plain connection)."""
    table = Outbox.__table__  # type: ignore[attr-defined]
    return int(session.execute(sa.select(sa.func.count()).where(table.c.dead_at.is_not(None))).scalar_one())


def retry_dead_letters(session: Session, ids: list[int] | None = None, *, now: datetime) -> int:
    """Queue dead letters again (all of them when `ids` is None); how many were queued.

    They go out in their incident's order again: an earlier row set back to pending holds the
    rows after it, exactly as it would have had Slack taken it the first time.
    """
    statement = sa.update(Outbox).where(Outbox.dead_at.is_not(None))  # type: ignore[union-attr]
    if ids is not None:
        statement = statement.where(Outbox.id.in_(ids))  # type: ignore[union-attr]
    statement = statement.values(dead_at=None, claimed_until=None, next_attempt_at=now, attempts=0)
    return int(session.execute(statement.execution_options(preserve_rowcount=True)).rowcount)  # type: ignore[attr-defined]


def dead_letters_of_commander(session: Session, user: str) -> list[tuple[str, str]]:
    """(incident id, reason) of the dead letters of incidents `user` commands (App Home)."""
    query = (
        sa.select(col(Outbox.incident_id), col(Outbox.last_error))
        .join(Incident, col(Incident.id) == col(Outbox.incident_id))
        .where(col(Outbox.dead_at).is_not(None), col(Incident.commander) == user)
        .order_by(col(Outbox.id))
    )
    return [(str(incident_id), str(reason or "refused")) for incident_id, reason in session.execute(query)]
