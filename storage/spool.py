"""SQLite only: the intake's spool, a file beside the database where acked requests wait to be moved to the inbox.

SQLite lets one writer in at a time, per file. With the inbox in the main database the ack's INSERT
queued behind the worker's transactions (its work holds the lock while it runs Python, niced, and
SQLite's busy handler sleeps 1, 2, 5, 10… ms between tries): ack p99s of 0.5-0.9 s and 503s. Here
the fronts are the spool's writers, and each write is one autocommitted statement, so the lock is
held only inside SQLite's C code, never while Python runs.

A worker moves what the spool holds into the inbox (`move`, in the transaction of its claim:
storage/inbox.py), and only once that committed deletes what it moved (`forget`). Killed between
the two, the rows are moved again and their keys, already in the inbox, insert nothing: a request
is never lost (it is in one file or the other, or both) and is in the inbox once. Row ids only grow
(AUTOINCREMENT: a deleted id is never handed out again), and SQLite's single writer assigns them in
commit order, so `forget(up_to)` never deletes a row that was not moved.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import Connection, Engine

from storage.models import InboxRequest

TABLE = InboxRequest.__table__  # type: ignore[attr-defined]
SUFFIX = ".spool"
# Rows moved per claim transaction: the inbox's own claims are at most a worker's threads.
MOVE_LIMIT = 500
SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    body TEXT NOT NULL,
    headers TEXT NOT NULL,
    received_at TEXT NOT NULL
)
"""


class Spool:
    """The spool of one SQLite database; thread-safe (a connection per caller at a time)."""

    def __init__(self, path: str, *, wait: float) -> None:
        self.path = path
        self.wait = wait
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._created = False

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._pid != os.getpid():
                # Forked (the worker process): a SQLite connection must not cross a fork. Drop
                # the parent's, unclosed (closing would touch the parent's file locks).
                self._idle, self._pid = [], os.getpid()
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            # Autocommit (isolation_level None): every statement is its own transaction.
            connection = sqlite3.connect(self.path, timeout=self.wait, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # as the main database (storage/db.py)
            if not self._created:
                connection.execute(SCHEMA)
                self._created = True
        try:
            yield connection
        except sqlite3.Error:
            connection.close()  # in an unknown state: a new one next time
            raise
        with self._lock:
            self._idle.append(connection)

    def record(self, *, key: str, mode: str, body: str, headers: dict[str, Any], now: datetime) -> bool:
        """Store the request unless the spool holds its key already; True when it is new.

        (A key already moved to the inbox is spooled again, and the move inserts nothing.)
        """
        with self._connection() as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO spool (key, mode, body, headers, received_at) VALUES (?, ?, ?, ?, ?)",
                (key, mode, body, json.dumps(headers), now.isoformat()),
            )
            return cursor.rowcount == 1

    def move(self, connection: Connection, *, limit: int = MOVE_LIMIT) -> int:
        """Copy the oldest spooled requests into the inbox, in the caller's transaction (on the main
        database); the last id copied, to `forget` once that transaction committed (0: none)."""
        with self._connection() as spool:
            rows = spool.execute(
                "SELECT id, key, mode, body, headers, received_at FROM spool ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        if not rows:
            return 0
        values = [
            {
                "key": key,
                "mode": mode,
                "body": body,
                "headers": json.loads(headers),
                "received_at": datetime.fromisoformat(received_at),
                "attempts": 0,
            }
            for _, key, mode, body, headers, received_at in rows
        ]
        connection.execute(insert(TABLE).on_conflict_do_nothing(index_elements=["key"]), values)
        return int(rows[-1][0])

    def forget(self, up_to: int) -> None:
        """Delete what was moved (its inbox transaction committed)."""
        with self._connection() as connection:
            connection.execute("DELETE FROM spool WHERE id <= ?", (up_to,))

    def pending(self) -> int:
        with self._connection() as connection:
            return int(connection.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


# One spool per engine (and so per process: an engine is not shared across a fork), gone with it.
_SPOOLS: weakref.WeakKeyDictionary[Engine, Spool] = weakref.WeakKeyDictionary()
_SPOOLS_LOCK = threading.Lock()


def for_engine(engine: Engine, *, wait: float = 30.0) -> Spool | None:
    """The spool beside a SQLite database file; None for PostgreSQL (its writers do not queue on
    one lock) and for an in-memory SQLite (no other process can share it)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    with _SPOOLS_LOCK:
        spool = _SPOOLS.get(engine)
        if spool is None:
            spool = _SPOOLS[engine] = Spool(database + SUFFIX, wait=wait)
        return spool
