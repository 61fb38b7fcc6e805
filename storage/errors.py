"""What a scheduled job does with a database error: "unavailable" is expected, anything else is a bug."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import sqlalchemy as sa

T = TypeVar("T")

# SQLite's ways of saying "not now": another writer holds the file, or the file cannot be reached.
# Its other OperationalErrors ("no such table", "no such column") are mistakes in the code or schema.
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open database", "disk i/o error")


def database_unavailable(exc: BaseException) -> bool:
    """A connection-level failure: the database is down, restarting, unreachable or busy.

    Only these are worth a one-line warning and a retry at the next interval. An IntegrityError,
    a ProgrammingError or a SQLite "no such table" will fail the same way next time: a bug.
    """
    if isinstance(exc, sa.exc.TimeoutError):  # the pool had no connection free in time
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:  # SQLAlchemy recognised a disconnect
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    if isinstance(exc.orig, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(exc.orig, sqlite3.OperationalError):
        reason = str(exc.orig).lower()
        return any(text in reason for text in _SQLITE_UNAVAILABLE)
    return False


@contextmanager
def database_errors(log: logging.Logger, what: str) -> Iterator[None]:
    """Log a database error of the block the way a job must, then let the job carry on.

    Unavailable: one WARNING line (the next run finds the same work). Anything else: ERROR with
    the traceback, because it will not go away by itself. Other exceptions propagate.
    """
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        if database_unavailable(exc):
            log.warning("%s skipped: database unavailable (%s)", what, type(exc).__name__)
        else:
            log.error("%s failed: %s", what, type(exc).__name__, exc_info=exc)


def run_logged(log: logging.Logger, what: str, job: Callable[[], T]) -> T | None:
    """`job()`, or None after `database_errors` has logged its database error."""
    with database_errors(log, what):
        return job()
    return None
