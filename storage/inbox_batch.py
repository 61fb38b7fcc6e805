"""PostgreSQL: the acks' inbox INSERTs, many to a statement (group commit), by one writer thread.

Each ack used to take a pooled connection (and its pre-ping), and run its own INSERT and COMMIT:
at 32 requests at once, ~1.4 ms of the front's CPU per ack (the bare Bolt app's whole ack is
0.5 ms), 3 round trips, and a commit each for the server, whose processes compete for the same
cores. Here the requests that arrive while one batch is being written go together in the next:
one statement and one commit for all of them. Each request still waits until its row is
committed before it is answered, so what is acked is stored, as before.

The writer keeps one connection of its own, in autocommit, and sends one fixed statement per
batch, the rows as one JSON document (`inbox.record_many`): one round trip, where a pooled
connection in a transaction took four (the pool's pre-ping, BEGIN, the INSERT, COMMIT), each a
wake-up of a PostgreSQL process on the cores the acks share. Its text never changes, so psycopg
prepares it once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from storage import inbox

log = logging.getLogger(__name__)

BATCH_LIMIT = 64  # the front serves at most that many requests at once (bot/runtime/http.py)
# The writer's connection is replaced after this long, as the pool's are (pool_recycle in
# storage/db.py): a server or proxy that drops connections idle or old drops none in use.
RECYCLE_SECONDS = 1800.0


class NotStored(RuntimeError):
    """The request could not be stored in time (the caller answers Slack with a retry)."""


@dataclass
class _Pending:
    row: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    new: bool = False
    error: BaseException | None = None


class InboxBatcher:
    def __init__(self, engine: Engine, *, wait: float) -> None:
        self.engine = engine
        self.wait = wait
        self._queue: list[_Pending] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        # The writer thread's own connection, checked out of the engine's pool (so it has the
        # engine's connect arguments: timeouts, lock_timeout) and never handed back to it.
        self._held: Any = None
        self._held_since = 0.0
        self.recycle = RECYCLE_SECONDS

    def record(self, *, key: str, mode: str, body: str, headers: dict[str, Any], now: Any) -> bool:
        """Store the request unless its key is there already; True when it is new. NotStored when
        it could not be stored within `wait` (it may still be, later: Slack's retry then finds it)."""
        pending = _Pending({"key": key, "mode": mode, "body": body, "headers": headers, "received_at": now})
        with self._ready:
            if self._closed:
                raise NotStored("the intake is closed")
            if self._thread is None:
                # Started on the first request, so never before the worker process is forked.
                self._thread = threading.Thread(target=self._write_forever, name="inbox-writer", daemon=True)
                self._thread.start()
            self._queue.append(pending)
            self._ready.notify()
        if not pending.done.wait(self.wait):
            raise NotStored("the inbox write did not finish in time")
        if pending.error is not None:
            # Not the server's message: its CONTEXT quotes the statement's data, Slack's request.
            raise NotStored(f"the inbox write failed ({type(pending.error).__name__})") from pending.error
        return pending.new

    def close(self) -> None:
        """Write what is queued, then stop the writer and close its connection."""
        with self._ready:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=self.wait)

    def _write_forever(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._closed:
                        self._ready.wait()
                    if not self._queue:
                        return  # closed, and nothing left to write
                    batch, self._queue = self._queue[:BATCH_LIMIT], self._queue[BATCH_LIMIT:]
                try:
                    self._write(batch)
                except Exception as exc:  # never let the writer die: every waiter must hear back
                    log.exception("the inbox writer failed")
                    for pending in batch:
                        pending.error = pending.error or exc
                        pending.done.set()
        finally:
            self._disconnect()

    def _write(self, batch: list[_Pending]) -> None:
        first: dict[str, _Pending] = {}
        for pending in batch:
            first.setdefault(pending.row["key"], pending)
        self._insert(list(first.values()))
        for pending in batch:
            leader = first[pending.row["key"]]
            if pending is not leader:  # a redelivery in the same batch: stored with it, not new
                pending.error = leader.error
            pending.done.set()

    def _insert(self, leaders: list[_Pending]) -> None:
        try:
            new = self._send([pending.row for pending in leaders])
        except psycopg.Error as exc:
            # Unavailable, out of time, locked (OperationalError): not a row's fault, and the
            # rows one by one would only wait 64 times over.
            if len(leaders) == 1 or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                for pending in leaders:
                    pending.error = exc
                return
            # One row PostgreSQL refuses (a NUL in a body) must not fail the others: each alone.
            for pending in leaders:
                self._insert([pending])
            return
        for pending in leaders:
            pending.new = pending.row["key"] in new

    def _send(self, rows: list[dict[str, Any]]) -> set[str]:
        """The rows stored, on the held connection; once more on a new one if the server had
        dropped the held one while it sat idle (a restart, a failover): what the pool's pre-ping
        caught before is caught here."""
        reused = self._held is not None
        try:
            return self._record(rows)
        except psycopg.Error:
            if not reused or self._held is not None:
                raise  # a new connection that failed, or a statement refused on a live one
        # Keys already there insert nothing, so a first try that did commit stores nothing twice;
        # but its rows then come back as not new, and whether they were is unknown: all count as
        # new, for a wake-up of the worker too many rather than one too few.
        self._record(rows)
        return {row["key"] for row in rows}

    def _record(self, rows: list[dict[str, Any]]) -> set[str]:
        if self._held is not None and time.monotonic() - self._held_since > self.recycle:
            self._disconnect()
        if self._held is None:
            try:
                held = self.engine.raw_connection()
            except Exception as exc:  # SQLAlchemy wraps the connect error: keep psycopg's
                raise psycopg.OperationalError(f"could not connect to the database: {type(exc).__name__}") from exc
            connection = held.driver_connection
            assert isinstance(connection, psycopg.Connection)  # a postgresql:// engine is psycopg 3's
            connection.autocommit = True  # one statement, its own transaction
            self._held, self._held_since = held, time.monotonic()
        try:
            return inbox.record_many(self._held.driver_connection, rows)
        except psycopg.Error:
            # Decided by the connection, not the error's class: a statement_timeout or a lock
            # timeout is an OperationalError too, and leaves the connection open and idle.
            if self._held.driver_connection.closed or self._held.driver_connection.broken:
                self._disconnect()
            raise

    def _disconnect(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            try:
                held.invalidate()  # closed, never back in the pool (it is in autocommit)
            except Exception:  # already broken: nothing left to close
                log.debug("closing the inbox writer's connection failed", exc_info=True)
