"""Scheduled jobs and database errors: an unreachable database is a warning, any other error a bug."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from conftest import create_pg_database, drop_pg_database

from bot.runtime import digest_jobs, scheduler
from bot.runtime.retention import retention_job
from bot.settings import Settings
from bot.slack.backfill import backfill_job
from storage import db
from storage.errors import database_unavailable


def _wrapped(kind: type[sa.exc.DBAPIError], orig: Exception, **kw: Any) -> sa.exc.DBAPIError:
    return kind("SELECT 1", {}, orig, **kw)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (_wrapped(sa.exc.OperationalError, psycopg.OperationalError("connection refused")), True),
        (_wrapped(sa.exc.InterfaceError, psycopg.InterfaceError("the connection is closed")), True),
        (_wrapped(sa.exc.OperationalError, sqlite3.OperationalError("database is locked")), True),
        (_wrapped(sa.exc.OperationalError, sqlite3.OperationalError("unable to open database file")), True),
        (_wrapped(sa.exc.ProgrammingError, Exception("gone"), connection_invalidated=True), True),
        (sa.exc.TimeoutError("QueuePool limit reached"), True),
        (_wrapped(sa.exc.OperationalError, sqlite3.OperationalError("no such table: incident")), False),
        (_wrapped(sa.exc.ProgrammingError, psycopg.errors.UndefinedTable("relation does not exist")), False),
        (_wrapped(sa.exc.IntegrityError, psycopg.errors.UniqueViolation("duplicate key")), False),
        (sa.exc.ArgumentError("bad statement"), False),
    ],
)
def test_only_connection_level_failures_count_as_unavailable(error: Exception, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable


class _Deliverer:
    def kick(self) -> None:
        pass


def _runtime(url: str) -> Any:
    engine = db.create_db_engine(url, wait=1, poolclass=sa.pool.NullPool)
    settings = Settings(_env_file=None, database_url=url, slack_bot_token="xoxb-x")  # type: ignore[call-arg]
    return SimpleNamespace(
        engine=engine, sessions=db.session_factory(engine), settings=settings, deliverer=_Deliverer()
    )


JOBS: dict[str, Callable[[Any], object]] = {
    "sweep": scheduler.sweep_job,
    "event clean-up": scheduler.forget_old_events,
    "backfill": backfill_job,
    "digest": lambda rt: digest_jobs.run_digest(rt, "weekly"),
    "retention": retention_job,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that answers but has no tables: every statement is a mistake, not an outage."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = create_pg_database("ib_jobs")
    yield url
    drop_pg_database(url)


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_bug_is_logged_as_an_error_with_its_traceback(
    job: str, unmigrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    rt = _runtime(unmigrated_url)
    try:
        with caplog.at_level(logging.WARNING):
            JOBS[job](rt)
    finally:
        rt.engine.dispose()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.thread == threading.get_ident()]
    assert errors and errors[0].exc_info is not None, caplog.text
    assert "database unavailable" not in caplog.text


@pytest.mark.parametrize("job", sorted(JOBS))
def test_an_unreachable_database_is_one_warning_line(job: str, caplog: pytest.LogCaptureFixture) -> None:
    rt = _runtime("postgresql://postgres@127.0.0.1:9/nowhere")  # nothing listens on the discard port
    try:
        with caplog.at_level(logging.WARNING):
            JOBS[job](rt)
    finally:
        rt.engine.dispose()
    # Only this thread's records: a Slack client left over from another test may log in the background.
    mine = [r for r in caplog.records if r.thread == threading.get_ident()]
    warnings = [r for r in mine if r.levelno >= logging.WARNING]
    assert [r.levelno for r in warnings] == [logging.WARNING], caplog.text
    assert "database unavailable" in warnings[0].getMessage() and warnings[0].exc_info is None
    assert "\n" not in warnings[0].getMessage()
