"""Retention: delete, once older than RETENTION, the rows kept only to recognise repeats and retries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.slack.context import Runtime
from storage.db import SessionFactory, unit_of_work
from storage.errors import database_errors
from storage.models import AlertNotification, InboxRequest, Outbox, ProcessedEvent, utcnow

log = logging.getLogger(__name__)

# Rows per DELETE, each in its own transaction: a first run over months of history must not hold
# the outbox or the inbox (which the request path writes) locked for the whole clean-up.
BATCH = 1000


@dataclass(frozen=True)
class Prunable:
    name: str
    model: Any
    key: Any  # the primary key column
    stamp: Any  # the time the row stops mattering from


# Only what is finished: an outbox row not yet delivered (a dead letter included: an operator may
# retry it) or an inbox request not yet done is work, whatever its age.
PRUNABLE = (
    Prunable("outbox", Outbox, Outbox.id, Outbox.delivered_at),
    Prunable("processed_event", ProcessedEvent, ProcessedEvent.event_id, ProcessedEvent.received_at),
    Prunable("alert_notification", AlertNotification, AlertNotification.dedupe_key, AlertNotification.received_at),
    Prunable("inbox", InboxRequest, InboxRequest.id, InboxRequest.done_at),
)


def prune(sessions: SessionFactory, *, retention: timedelta, now: datetime, batch: int = BATCH) -> dict[str, int]:
    """Delete every finished row older than `retention`, `batch` rows per transaction; counts by table."""
    cutoff = now - retention
    deleted: dict[str, int] = {}
    for table in PRUNABLE:
        deleted[table.name] = 0
        # The subquery bounds each DELETE on both backends (neither takes DELETE … LIMIT as standard).
        oldest = sa.select(table.key).where(table.stamp.is_not(None), table.stamp < cutoff).limit(batch)
        statement = sa.delete(table.model).where(table.key.in_(oldest.scalar_subquery()))
        while True:
            with unit_of_work(sessions) as session:
                # A DELETE's result is a CursorResult, with a rowcount; SQLModel types execute() as Result.
                count = session.execute(statement).rowcount  # type: ignore[attr-defined]
            deleted[table.name] += count
            if count < batch:
                break
    return deleted


def retention_job(rt: Runtime) -> None:
    """The daily job (bot/scheduler.py)."""
    with database_errors(log, "retention clean-up"):
        deleted = prune(rt.sessions, retention=rt.settings.retention, now=utcnow())
        if any(deleted.values()):
            log.info("retention: deleted %s", ", ".join(f"{n} {name}" for name, n in deleted.items() if n))
