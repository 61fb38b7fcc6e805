"""PostgreSQL: the acks' inbox INSERTs, many to a transaction (group commit), by one writer thread.

Each ack used to take a pooled connection (and its pre-ping), and run its own INSERT and COMMIT:
at 32 requests at once, ~1.4 ms of the front's CPU per ack (the bare Bolt app's whole ack is
0.5 ms), 3 round trips, and a commit each for the server, whose processes compete for the same
cores. Here the requests that arrive while one batch is being written go together in the next:
one statement and one commit for all of them. Each request still waits until its row is
committed before it is answered, so what is acked is stored, as before.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage import db, inbox

log = logging.getLogger(__name__)

BATCH_LIMIT = 64  # the front serves at most that many requests at once (bot/runtime/http.py)


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

    def record(self, *, key: str, mode: str, body: str, headers: dict[str, Any], now: Any) -> bool:
        """Store the request unless its key is there already; True when it is new. NotStored when
        it could not be stored within `wait` (it may still be, later: Slack's retry then finds it)."""
        pending = _Pending({"key": key, "mode": mode, "body": body, "headers": headers, "received_at": now})
        with self._ready:
            if self._thread is None:
                # Started on the first request, so never before the worker process is forked.
                self._thread = threading.Thread(target=self._write_forever, name="inbox-writer", daemon=True)
                self._thread.start()
            self._queue.append(pending)
            self._ready.notify()
        if not pending.done.wait(self.wait):
            raise NotStored("the inbox write did not finish in time")
        if pending.error is not None:
            raise NotStored(str(pending.error)) from pending.error
        return pending.new

    def _write_forever(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch, self._queue = self._queue[:BATCH_LIMIT], self._queue[BATCH_LIMIT:]
            try:
                self._write(batch)
            except Exception as exc:  # never let the writer die: every waiter must hear back
                log.exception("the inbox writer failed")
                for pending in batch:
                    pending.error = pending.error or exc
                    pending.done.set()

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
            with self.engine.begin() as connection:
                new = inbox.record_many(connection, [pending.row for pending in leaders])
        except sa.exc.SQLAlchemyError as exc:
            if len(leaders) == 1 or db.is_disconnect(exc):
                for pending in leaders:
                    pending.error = exc
                return
            # One row PostgreSQL refuses (a NUL in a body) must not fail the others: each alone.
            for pending in leaders:
                self._insert([pending])
            return
        for pending in leaders:
            pending.new = pending.row["key"] in new
