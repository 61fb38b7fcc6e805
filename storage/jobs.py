"""The job_run table: each scheduled job's latest run, written by the worker, read by /metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage.service_state import JobRun

TABLE = JobRun.__table__  # type: ignore[attr-defined]
SWEEP = "escalation-sweep"  # the escalation sweep: its APScheduler job id and its row here


@dataclass(frozen=True)
class LastRun:
    finished_at: datetime
    duration_seconds: float


def record_run(connection: Connection, *, name: str, finished_at: datetime, duration_seconds: float) -> None:
    """Upsert the job's latest run: one row per job, whichever replica ran it."""
    values = {"name": name, "finished_at": finished_at, "duration_seconds": duration_seconds}
    # Both dialects spell the upsert alike; Any, as their two Insert classes share no base for it.
    insert: Any = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(TABLE).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"finished_at": statement.excluded.finished_at, "duration_seconds": statement.excluded.duration_seconds},
        # Two replicas finishing out of order: the later finish wins.
        where=TABLE.c.finished_at <= statement.excluded.finished_at,
    )
    connection.execute(statement)


def last_run(connection: Connection, name: str) -> LastRun | None:
    row = connection.execute(
        sa.select(TABLE.c.finished_at, TABLE.c.duration_seconds).where(TABLE.c.name == name)
    ).first()
    if row is None:
        return None
    return LastRun(finished_at=row.finished_at, duration_seconds=float(row.duration_seconds))
