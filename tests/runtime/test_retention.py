"""Retention: finished rows older than RETENTION are pruned in batches; work and recent rows stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from freezegun import freeze_time
from sqlmodel import select

from bot.runtime import retention
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import AlertNotification, InboxRequest, Outbox, ProcessedEvent

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


def _outbox(key: str, *, delivered: datetime | None, dead: datetime | None = None) -> Outbox:
    return Outbox(
        kind="thread_reply",
        dedupe_key=key,
        payload={},
        created_at=OLD,
        next_attempt_at=OLD,
        delivered_at=delivered,
        dead_at=dead,
    )


def _inbox(key: str, *, done: datetime | None) -> InboxRequest:
    return InboxRequest(key=key, mode="http", body="{}", headers={}, received_at=OLD, done_at=done)


def _history(sessions: SessionFactory, copies: int = 3) -> None:
    with unit_of_work(sessions) as session:
        for n in range(copies):
            session.add(_outbox(f"old-{n}", delivered=OLD))
            session.add(ProcessedEvent(event_id=f"Ev-old-{n}", received_at=OLD))
            session.add(AlertNotification(dedupe_key=f"old-{n}", group_key="g", status="firing", received_at=OLD))
            session.add(_inbox(f"old-{n}", done=OLD))
        session.add(_outbox("recent", delivered=RECENT))
        session.add(_outbox("pending", delivered=None))  # still to send, however old
        session.add(_outbox("dead", delivered=None, dead=OLD))  # a dead letter: an operator may retry it
        session.add(ProcessedEvent(event_id="Ev-recent", received_at=RECENT))
        session.add(AlertNotification(dedupe_key="recent", group_key="g", status="firing", received_at=RECENT))
        session.add(_inbox("recent", done=RECENT))
        session.add(_inbox("waiting", done=None))  # not done yet: work, not history


def _left(sessions: SessionFactory) -> dict[str, list[Any]]:
    with unit_of_work(sessions) as session:
        return {
            "outbox": sorted(session.exec(select(Outbox.dedupe_key))),
            "processed_event": sorted(session.exec(select(ProcessedEvent.event_id))),
            "alert_notification": sorted(session.exec(select(AlertNotification.dedupe_key))),
            "inbox": sorted(session.exec(select(InboxRequest.key))),
        }


def test_prune_deletes_only_finished_rows_older_than_retention_in_batches(sessions: SessionFactory) -> None:
    _history(sessions, copies=5)
    statements: list[str] = []
    engine = sessions().get_bind()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        deleted = retention.prune(sessions, retention=timedelta(days=90), now=NOW, batch=2)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert deleted == {"outbox": 5, "processed_event": 5, "alert_notification": 5, "inbox": 5}
    assert len(statements) == 4 * 3  # 2 + 2 + 1 per table: bounded batches
    assert _left(sessions) == {
        "outbox": ["dead", "pending", "recent"],
        "processed_event": ["Ev-recent"],
        "alert_notification": ["recent"],
        "inbox": ["recent", "waiting"],
    }
    assert retention.prune(sessions, retention=timedelta(days=90), now=NOW) == dict.fromkeys(deleted, 0)


def test_the_daily_job_uses_the_retention_setting(sessions: SessionFactory) -> None:
    settings = Settings(_env_file=None, retention=timedelta(days=30))  # type: ignore[call-arg]
    _history(sessions, copies=1)
    with freeze_time(NOW):
        retention.retention_job(SimpleNamespace(settings=settings, sessions=sessions))  # type: ignore[arg-type]
    # 30 days: the 89-day-old rows go too.
    assert _left(sessions) == {
        "outbox": ["dead", "pending"],
        "processed_event": [],
        "alert_notification": [],
        "inbox": ["waiting"],
    }


def test_the_scheduler_runs_retention_daily() -> None:
    from bot.runtime.scheduler import build_scheduler

    rt = SimpleNamespace(settings=Settings(_env_file=None, timeline_backfill_interval=0))  # type: ignore[call-arg]
    job = build_scheduler(rt).get_job("retention")  # type: ignore[arg-type]
    assert job is not None and job.func is retention.retention_job
    assert job.trigger.interval == timedelta(days=1)
