"""PostgreSQL's ack-path writer (storage/inbox_batch.py): what it stores, once, and its connection.

The writer holds one connection of its own in autocommit: these tests drop it under the writer,
refuse one row of a batch, and close the writer, on a real server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import slack_requests as sr
import sqlalchemy as sa
from bot_harness import SECRET
from conftest import _truncate_all, require_postgres
from sqlalchemy.engine import Engine

from storage import db
from storage.inbox_batch import InboxBatcher, NotStored

WRITER = "%json_to_recordset%"  # how the writer's connection is told apart in pg_stat_activity


# PostgreSQL only: SQLite's acks go to the spool (tests/runtime/test_intake_spool.py).
@pytest.fixture
def pg_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    require_postgres()
    url = request.getfixturevalue("_migrated_pg_url")
    engine = db.create_db_engine(url, wait=2.0)
    _truncate_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def batcher(pg_engine: Engine) -> Iterator[InboxBatcher]:
    batcher = InboxBatcher(pg_engine, wait=5.0)
    yield batcher
    batcher.close()


def record(batcher: InboxBatcher, key: str, body: str = "payload=%7B%7D") -> bool:
    return batcher.record(key=key, mode="http", body=body, headers={"content-type": "x"}, now=datetime.now(UTC))


def stored(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT key, body, headers, attempts FROM inbox")).all()
    return {key: (body, headers, attempts) for key, body, headers, attempts in rows}


def writer_pids(engine: Engine, *, at_most: int = 1) -> list[int]:
    """The backends that ran the writer's statement. A backend whose client just closed is still
    listed a moment later (the server notices the closed socket): wait, up to 5 s, until no more
    than `at_most` are."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE :writer"
    deadline = time.monotonic() + 5
    while True:
        with engine.connect() as connection:
            pids = list(connection.execute(sa.text(query), {"writer": WRITER}).scalars())
        if len(pids) <= at_most or time.monotonic() > deadline:
            return pids
        time.sleep(0.02)


def test_concurrent_acks_are_stored_once_each_and_a_redelivery_is_not_new(
    batcher: InboxBatcher, pg_engine: Engine
) -> None:
    keys = [f"event:Ev{n:03d}" for n in range(40)] * 2  # every request delivered twice, at once
    with ThreadPoolExecutor(32) as pool:
        new = list(pool.map(lambda key: record(batcher, key, body=f'{{"k": "{key}", "q": "\\" é"}}'), keys))
    assert sum(new) == 40
    assert {key for key, is_new in zip(keys, new, strict=True) if is_new} == set(keys)
    rows = stored(pg_engine)
    assert sorted(rows) == sorted(set(keys))
    body, headers, attempts = rows["event:Ev007"]
    assert body == '{"k": "event:Ev007", "q": "\\" é"}' and headers == {"content-type": "x"} and attempts == 0


def test_one_row_the_server_refuses_fails_only_itself(batcher: InboxBatcher, pg_engine: Engine) -> None:
    # Hold the writer on its first INSERT (a lock on the table) so the others queue behind it and
    # go together in its next batch, with the row PostgreSQL cannot store (a NUL in its body).
    record(batcher, "warm-up")
    blocker = pg_engine.connect()
    transaction = blocker.begin()
    blocker.execute(sa.text("LOCK TABLE inbox IN EXCLUSIVE MODE"))
    outcomes: dict[str, Any] = {}

    def send(key: str, body: str) -> None:
        try:
            outcomes[key] = record(batcher, key, body=body)
        except NotStored as exc:
            outcomes[key] = exc

    first = threading.Thread(target=send, args=("held", "x"))
    first.start()
    time.sleep(0.2)  # the writer is now inside the held INSERT
    others = [threading.Thread(target=send, args=(f"k{n}", "bad\x00body" if n == 3 else "ok")) for n in range(8)]
    for thread in others:
        thread.start()
    time.sleep(0.2)  # all queued behind the held batch
    transaction.rollback()
    blocker.close()
    for thread in [first, *others]:
        thread.join(10)
    assert isinstance(outcomes.pop("k3"), NotStored)
    assert outcomes == {"held": True, **{f"k{n}": True for n in range(8) if n != 3}}
    assert "k3" not in stored(pg_engine) and "k4" in stored(pg_engine)


def test_a_connection_the_server_dropped_is_replaced_without_failing_the_ack(
    batcher: InboxBatcher, pg_engine: Engine
) -> None:
    assert record(batcher, "before")
    (pid,) = writer_pids(pg_engine)
    with pg_engine.connect() as connection:  # what a server restart or a failover does to it
        assert connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    assert record(batcher, "after")  # stored and new, on a new connection: no 503 for Slack
    assert record(batcher, "after") is False
    assert {"before", "after"} <= set(stored(pg_engine))
    assert writer_pids(pg_engine) not in ([], [pid])


def test_the_connection_is_replaced_once_it_is_old(batcher: InboxBatcher, pg_engine: Engine) -> None:
    assert record(batcher, "first")
    (first,) = writer_pids(pg_engine)
    assert record(batcher, "second")
    assert writer_pids(pg_engine) == [first]  # kept while it is young
    batcher.recycle = 0.0  # every connection is old now
    assert record(batcher, "third")
    assert writer_pids(pg_engine) not in ([], [first])
    assert {"first", "second", "third"} <= set(stored(pg_engine))


def test_a_statement_out_of_time_answers_in_time_and_keeps_the_connection(pg_engine: Engine) -> None:
    # statement_timeout is the ack path's wait (storage/db.py): a table locked for longer makes the
    # ack give up in time (Slack retries), and the connection, still open, is kept, not replaced.
    batcher = InboxBatcher(db.create_db_engine(pg_engine.url.render_as_string(hide_password=False), wait=1.0), wait=1.0)
    try:
        assert record(batcher, "before")
        (pid,) = writer_pids(pg_engine)
        with pg_engine.connect() as blocker, blocker.begin():
            blocker.execute(sa.text("LOCK TABLE inbox IN EXCLUSIVE MODE"))
            started = time.monotonic()
            with pytest.raises(NotStored):
                record(batcher, "while locked")
            assert time.monotonic() - started < 2.0
            time.sleep(0.3)  # the statement's own timeout (1 s) has passed too by now
        assert record(batcher, "after")
        assert writer_pids(pg_engine) == [pid]
        assert "while locked" not in stored(pg_engine)
    finally:
        batcher.close()
        batcher.engine.dispose()


def test_a_stopped_service_leaves_no_writer_connection(db_url: str, make_bot: Any) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the batched writer is PostgreSQL's")
    pg_engine = db.create_db_engine(db_url)
    bot = make_bot()
    status, _, _ = bot.send(sr.slash_command("list", secret=SECRET))
    assert status == 200
    assert len(writer_pids(pg_engine)) == 1
    bot.stop()
    assert writer_pids(pg_engine, at_most=0) == []
    pg_engine.dispose()


def test_close_writes_nothing_more_and_leaves_no_connection(batcher: InboxBatcher, pg_engine: Engine) -> None:
    assert record(batcher, "one")
    assert len(writer_pids(pg_engine)) == 1
    batcher.close()
    assert writer_pids(pg_engine, at_most=0) == []
    with pytest.raises(NotStored):
        record(batcher, "two")
    assert "two" not in stored(pg_engine)
