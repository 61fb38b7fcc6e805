"""SQLite's intake spool (storage/spool.py): acks are not held up by the database's writers, and a
worker killed between moving requests into the inbox and clearing them from the spool loses
nothing and does nothing twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bot_harness import poll
from fake_slack import FakeSlack
from test_intake import ack_click, ack_entries, acknowledged, declare_one, inbox_rows

from bot.runtime.inbox_worker import InboxWorker
from bot.runtime.intake import request_key
from bot.slack.app import create_app
from bot.slack.context import Runtime
from bot.slack.listeners import Stage
from storage import inbox, spool
from storage.models import utcnow

ROOT = Path(__file__).resolve().parent.parent

# The worker's claim, in a process of its own that SIGKILLs itself at the worst moment: the
# spooled requests are in the inbox (committed, claimed) and still in the spool.
DIE_AFTER_THE_MOVE = textwrap.dedent(
    """
    import os, signal, sys
    from types import SimpleNamespace
    from bot.runtime.inbox_worker import InboxWorker
    from storage import db

    engine = db.create_db_engine(sys.argv[1])
    worker = InboxWorker(SimpleNamespace(engine=engine), None, worker_id="doomed", threads=4)
    worker._spool.forget = lambda up_to: os.kill(os.getpid(), signal.SIGKILL)
    worker._claim()
    sys.exit(3)  # not reached
    """
)


@pytest.fixture
def work_runtime(engine: Any, fake_slack: FakeSlack) -> Runtime:
    from bot_harness import settings_for

    if engine.dialect.name != "sqlite":
        pytest.skip("the spool is SQLite's")
    settings = settings_for(str(engine.url.render_as_string(hide_password=False)), fake_slack)
    return Runtime.build(settings, engine)


def test_a_worker_killed_between_the_move_and_the_clearing_loses_nothing_and_does_it_once(
    work_runtime: Runtime,
) -> None:
    rt = work_runtime
    incident = declare_one(rt)
    click = ack_click(incident)
    spooled = spool.for_engine(rt.engine)
    assert spooled is not None
    key = request_key(click.payload)
    assert key is not None
    headers = {"content-type": click.headers["Content-Type"]}
    assert spooled.record(key=key, mode="http", body=click.text, headers=headers, now=utcnow())

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    url = rt.engine.url.render_as_string(hide_password=False)
    child = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_THE_MOVE, url], env=env, capture_output=True, timeout=60, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert spooled.pending() == 1  # still spooled...
    (row,) = inbox_rows(rt.sessions)  # ...and in the inbox, claimed by the dead worker, not done
    assert row.claimed_by == "doomed" and row.done_at is None

    with rt.engine.begin() as connection:
        assert inbox.release(connection, worker="doomed") == 1  # as the front does for a dead worker
    app = create_app(rt, Stage.WORK)
    survivor = InboxWorker(rt, app, threads=2, lease=timedelta(seconds=30), poll_seconds=0.05).start()
    try:
        poll(lambda: inbox_rows(rt.sessions)[0].done_at is not None, message="the request done")
        poll(lambda: spooled.pending() == 0, message="the spool cleared")
        # Slack redelivers it (its ack was late): spooled again, under the same key.
        assert spooled.record(key=key, mode="http", body=click.text, headers=headers, now=utcnow())
        survivor.wake()
        poll(lambda: spooled.pending() == 0, message="the redelivery cleared")
        time.sleep(0.2)  # had the redelivery made a second request, it would be claimed by now
    finally:
        survivor.stop()
    assert len(inbox_rows(rt.sessions)) == 1
    assert len(ack_entries(rt.sessions, incident.id)) == 1


def test_the_ack_path_does_not_wait_for_the_databases_writer(db_url: str, make_bot: Any) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer lock")
    bot = make_bot()
    incident = bot.declare("Busy database", "P2")
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=1, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a writer (the worker, its work) holds the database's lock
    try:
        started = time.monotonic()
        status, _, _ = bot.send(ack_click(incident))
        assert status == 200
        assert time.monotonic() - started < 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    poll(lambda: acknowledged(bot), message="the acknowledgement")  # done once the lock is free
