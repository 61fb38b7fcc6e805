"""The escalation sweep on a large table: N open incidents (about 50 due per pass) among M closed ones.

The closed incidents are bulk-inserted with SQLAlchemy Core once and kept (a SQLite file under
benchmarks/results/, or a PostgreSQL database ib_bench_sweep_<M>); the open ones and everything
the sweep writes are replaced on every run, so each run starts from the same state.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import databases
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.incidents.escalation import due_incident_ids, sweep
from bot.settings import Settings
from storage import db
from storage.models import (
    SEVERITIES,
    AlertNotification,
    Escalation,
    FollowUp,
    Incident,
    Outbox,
    ProcessedEvent,
    RunbookUse,
    Status,
    TimelineEntry,
    utcnow,
)

CHUNK = 10_000
DUE_PER_PASS = 50
PASS_SECONDS = 50  # open incident i is due at base + (i - 49) s: 50 more fall due every pass
PASSES = 8  # the first is a warm-up (statement compilation, caches); the median is of the rest
DUE_QUERIES = 9
CHANNEL = "C0BENCHSWEEP"

INCIDENT = Incident.__table__  # type: ignore[attr-defined]


def _row(incident_id: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {column.name: None for column in INCIDENT.columns}
    row.update(id=incident_id, source="slack", reopened_count=0, channel_id=CHANNEL)
    row.update(values)
    return row


def closed_rows(start: int, stop: int, base: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, stop):
        declared = base - timedelta(days=1100) + timedelta(seconds=i * 90)
        rows.append(
            _row(
                f"INC-BENCH-C{i:07d}",
                title=f"closed benchmark incident {i}",
                severity=SEVERITIES[i % 4],
                status=Status.RESOLVED.value,
                started_at=declared,
                declared_at=declared,
                acknowledged_at=declared + timedelta(minutes=3),
                mitigated_at=declared + timedelta(minutes=20),
                resolved_at=declared + timedelta(minutes=45),
                last_activity_at=declared + timedelta(minutes=45),
                next_check_at=None,
                commander="U0BENCH",
                declared_by="U0BENCH",
                card_ts=f"{declared.timestamp():.6f}",
            )
        )
    return rows


def open_rows(count: int, base: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        declared = base - timedelta(minutes=10 + (i * 37) % 720)
        acknowledged = declared + timedelta(minutes=3) if i % 2 else None
        rows.append(
            _row(
                f"INC-BENCH-O{i:07d}",
                title=f"open benchmark incident {i}",
                severity=SEVERITIES[i % 4],
                status=Status.INVESTIGATING.value,
                started_at=declared,
                declared_at=declared,
                acknowledged_at=acknowledged,
                commander="U0BENCH" if acknowledged else None,
                declared_by="U0BENCH",
                last_activity_at=declared,
                next_check_at=base + timedelta(seconds=i - (DUE_PER_PASS - 1)),
                card_ts=f"{declared.timestamp() + i / 1e6:.6f}",
            )
        )
    return rows


def prepare(backend: str, *, open_count: int, closed_count: int, base: datetime) -> tuple[str, dict[str, Any]]:
    """The database for this size, closed incidents reused when their count matches; returns its URL."""
    name = f"ib_bench_sweep_{closed_count}"
    url = databases.create(backend, name, fresh=False)
    engine = db.create_db_engine(url)
    info: dict[str, Any] = {"database": name if backend == "postgresql" else f"results/{name}.db"}
    try:
        db.upgrade(engine)
        with engine.begin() as connection:
            for model in (Escalation, Outbox, TimelineEntry, ProcessedEvent, FollowUp, RunbookUse, AlertNotification):
                connection.execute(sa.delete(model.__table__))  # type: ignore[attr-defined]
            connection.execute(sa.delete(INCIDENT).where(INCIDENT.c.status != Status.RESOLVED.value))
            have = connection.execute(sa.select(sa.func.count()).select_from(INCIDENT)).scalar_one()
        started = time.perf_counter()
        if have != closed_count:
            with engine.begin() as connection:
                connection.execute(sa.delete(INCIDENT))
            for start in range(0, closed_count, CHUNK):
                with engine.begin() as connection:
                    connection.execute(sa.insert(INCIDENT), closed_rows(start, min(start + CHUNK, closed_count), base))
            info["closed_inserted_s"] = round(time.perf_counter() - started, 1)
        else:
            info["closed_reused"] = True
        with engine.begin() as connection:
            rows = open_rows(open_count, base)
            for start in range(0, len(rows), CHUNK):
                connection.execute(sa.insert(INCIDENT), rows[start : start + CHUNK])
        _analyze(engine)
    finally:
        engine.dispose()
    return url, info


def _analyze(engine: Engine) -> None:
    # As after any bulk load (bot/seed.py does the same): fresh planner statistics.
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("ANALYZE incident"))


def run(backend: str, *, open_count: int, closed_count: int) -> dict[str, Any]:
    base = utcnow().replace(microsecond=0)
    url, info = prepare(backend, open_count=open_count, closed_count=closed_count, base=base)
    engine = db.create_db_engine(url)
    sessions = db.session_factory(engine)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    try:
        due_times, due_found = [], 0
        for _ in range(DUE_QUERIES):
            started = time.perf_counter()
            with db.unit_of_work(sessions) as session:
                due_found = len(due_incident_ids(session, base))
            due_times.append(time.perf_counter() - started)
        sweep_times, claimed = [], []
        for index in range(PASSES):
            now = base + timedelta(seconds=index * PASS_SECONDS)
            started = time.perf_counter()
            won = sweep(sessions, settings, now=now)
            sweep_times.append(time.perf_counter() - started)
            claimed.append(len(won))
    finally:
        engine.dispose()
    return {
        **info,
        "open": open_count,
        "closed": closed_count,
        "due_per_pass": due_found,
        "due_query_ms": round(statistics.median(due_times[1:]) * 1000, 2),
        "sweep_ms": round(statistics.median(sweep_times[1:]) * 1000, 1),
        "sweep_first_ms": round(sweep_times[0] * 1000, 1),
        "sweep_all_ms": [round(t * 1000, 1) for t in sweep_times],
        "claimed_per_pass": claimed,
    }
