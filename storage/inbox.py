"""The inbox table's operations: record a request, claim a batch, renew, settle, release.

A claim is fenced: `claimed_by` (the worker) together with `attempts` (bumped by every claim)
names one claim only, so a worker whose lease ran out and was taken over can no longer mark the
row done: its write fails and its transaction rolls back (see `settle`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.models import InboxRequest

TABLE = InboxRequest.__table__  # type: ignore[attr-defined]


class ClaimLost(RuntimeError):
    """Another worker holds this request now (our lease ran out): our work must not commit."""


@dataclass(frozen=True)
class Claim:
    """One claimed request: what to run, and the fence that proves it is still ours."""

    id: int
    mode: str
    body: str
    headers: dict[str, Any]
    worker: str
    attempt: int


def record(connection: Connection, *, key: str, mode: str, body: str, headers: dict[str, Any], now: datetime) -> bool:
    """Insert the request unless its key is there already; True when it is new.

    This is the only database work on the ack path, so it is one statement in its own transaction.
    """
    values = {"key": key, "mode": mode, "body": body, "headers": headers, "received_at": now, "attempts": 0}
    statement: sa.Executable
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(TABLE).values(**values).on_conflict_do_nothing(index_elements=["key"])
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(TABLE).values(**values).on_conflict_do_nothing(index_elements=["key"])
    result = connection.execute(statement.execution_options(preserve_rowcount=True))
    return bool(result.rowcount == 1)


# PostgreSQL: many requests in one statement, skipping keys already there, for a raw psycopg
# connection (the intake's writer, storage/inbox_batch.py). The rows go as one JSON document:
# one text whatever the batch's size, so the server prepares it once, and encoded by the json
# module's C code (as arrays of text, psycopg quoted every body with a regular expression, in the
# front's Python, on the ack path).
RECORD_MANY_SQL = """
INSERT INTO inbox (key, mode, body, headers, received_at, attempts)
SELECT key, mode, body, headers, received_at, 0
FROM json_to_recordset(%s::json) AS row (key text, mode text, body text, headers json, received_at timestamptz)
ORDER BY key
ON CONFLICT (key) DO NOTHING
RETURNING key
"""


def record_many(connection: psycopg.Connection[Any], rows: list[dict[str, Any]]) -> set[str]:
    """Insert the rows whose keys are new, on a psycopg connection in autocommit; the new keys.

    One round trip and no SQLAlchemy on the ack path. Rows go in key order, so two replicas'
    batches never wait on each other in turn."""
    encodable = [{**row, "received_at": row["received_at"].isoformat()} for row in rows]
    document = json.dumps(encodable, ensure_ascii=False)  # UTF-8 as it came, no escaping to do
    with connection.cursor() as cursor:
        cursor.execute(RECORD_MANY_SQL, (document,))
        return {key for (key,) in cursor.fetchall()}


def claim(connection: Connection, *, worker: str, limit: int, lease: timedelta, now: datetime) -> list[Claim]:
    """Claim up to `limit` requests that are not done and not leased, oldest first.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas claiming at once take different rows.
    SQLite: the transaction is BEGIN IMMEDIATE (storage/db.py), so there is one claimer at a time.
    """
    pending = (
        sa.select(TABLE.c.id)
        .where(TABLE.c.done_at.is_(None), sa.or_(TABLE.c.lease_until.is_(None), TABLE.c.lease_until < now))
        .order_by(TABLE.c.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    statement = (
        TABLE.update()
        .where(TABLE.c.id.in_(pending.scalar_subquery()))
        .values(claimed_by=worker, lease_until=now + lease, attempts=TABLE.c.attempts + 1)
        .returning(TABLE.c.id, TABLE.c.mode, TABLE.c.body, TABLE.c.headers, TABLE.c.attempts)
    )
    rows = connection.execute(statement).all()
    claims = [
        Claim(id=r.id, mode=r.mode, body=r.body, headers=r.headers, worker=worker, attempt=r.attempts) for r in rows
    ]
    return sorted(claims, key=lambda c: c.id)


def _fenced(claim: Claim) -> Any:
    return sa.and_(
        TABLE.c.id == claim.id,
        TABLE.c.claimed_by == claim.worker,
        TABLE.c.attempts == claim.attempt,
        TABLE.c.done_at.is_(None),
    )


def settle(connection: Connection, claim: Claim, *, now: datetime, error: str | None = None) -> None:
    """Mark the claimed request done, in the caller's transaction; ClaimLost if it is not ours."""
    statement = TABLE.update().where(_fenced(claim)).values(done_at=now, lease_until=None, error=error)
    result = connection.execute(statement.execution_options(preserve_rowcount=True))
    if result.rowcount != 1:
        raise ClaimLost(f"inbox request {claim.id} was taken over by another worker")


def settle_many(connection: Connection, claims: list[Claim], *, now: datetime) -> None:
    """Mark all the claimed requests done in one statement; ClaimLost (and nothing marked, once the
    caller rolls back) unless every one of them is still ours."""
    if claims:
        keys = [(c.id, c.attempt) for c in claims]
        result = connection.execute(_SETTLE_MANY, {"worker": claims[0].worker, "keys": keys, "now": now})
        if result.rowcount != len(claims):
            raise ClaimLost(f"{len(claims) - result.rowcount} of {len(claims)} inbox requests were taken over")


# Fences many claims of one worker in one compiled statement, whatever their number.
_HELD = sa.and_(
    TABLE.c.claimed_by == sa.bindparam("worker"),
    TABLE.c.done_at.is_(None),
    sa.tuple_(TABLE.c.id, TABLE.c.attempts).in_(sa.bindparam("keys", expanding=True)),
)
_SETTLE_MANY = (
    TABLE.update()
    .where(_HELD)
    .values(done_at=sa.bindparam("now"), lease_until=None, error=None)
    .execution_options(preserve_rowcount=True)
)


def renew(connection: Connection, claims: list[Claim], *, lease: timedelta, now: datetime) -> None:
    """Push the lease of requests still being worked on (slow Web API calls must not lose them)."""
    by_worker: dict[str, list[tuple[int, int]]] = {}
    for claim in claims:
        by_worker.setdefault(claim.worker, []).append((claim.id, claim.attempt))
    for worker, keys in by_worker.items():
        connection.execute(_RENEW, {"worker": worker, "keys": keys, "until": now + lease})


_RENEW = TABLE.update().where(_HELD).values(lease_until=sa.bindparam("until"))


def release(connection: Connection, *, worker: str) -> int:
    """Give back what a dead worker held, at once instead of after its lease; how many rows."""
    statement = (
        TABLE.update()
        .where(TABLE.c.claimed_by == worker, TABLE.c.done_at.is_(None))
        .values(lease_until=None)
        .execution_options(preserve_rowcount=True)
    )
    return int(connection.execute(statement).rowcount)


def backlog(connection: Connection) -> int:
    """Requests not done yet (the health detail)."""
    return int(connection.execute(sa.select(sa.func.count()).where(TABLE.c.done_at.is_(None))).scalar_one())
