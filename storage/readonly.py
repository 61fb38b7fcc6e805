"""An engine for monitoring reads (GET /metrics): its own small pool, and never SQLite's write lock.

The bot's engines (storage/db.py) begin every SQLite transaction with BEGIN IMMEDIATE, reads
included, so a scrape through them would queue the front's inbox INSERT behind it. This one lets
SQLite run each SELECT on its own WAL snapshot (no BEGIN at all) and refuses writes
(`PRAGMA query_only`). On PostgreSQL it is a pool of two connections with short timeouts, apart
from the pool the acks use.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from storage.db import normalise_url

WAIT = 2.0  # seconds a monitoring read may wait for a lock or a connection


def create_read_engine(url: str, *, wait: float = WAIT) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": wait}, pool_pre_ping=True)
        event.listen(engine, "connect", lambda connection, _record: _read_only(connection, int(wait * 1000)))
        return engine
    milliseconds = int(wait * 1000)
    return sa.create_engine(
        url,
        pool_size=1,
        max_overflow=1,
        pool_timeout=wait,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": max(1, int(wait)),
            "options": f"-c statement_timeout={milliseconds} -c default_transaction_read_only=on",
        },
    )


def _read_only(dbapi_connection: Any, busy_ms: int) -> None:
    dbapi_connection.isolation_level = None  # autocommit: each SELECT alone, no BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA query_only=1")
    cursor.close()
