"""The durable intake: what Slack was answered 200 for is done once, whatever dies or races.

Each test breaks one guarantee at its worst moment: a worker stalled then the whole bot killed,
work interrupted before its commit, a worker whose lease ran out while it worked, a slow request
that must keep its lease, redeliveries and resubmissions, two replicas taking the same requests,
and a database that makes the ack path wait.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot, declare_values, poll, store_in_inbox
from bot_process import bot_env, child_pids, free_port, start_bot, wait_healthy
from cli_process import ForkedProcess
from fake_slack import FakeSlack
from sqlmodel import select

from bot.ids import Action, Callback
from bot.incidents import lifecycle as incidents
from bot.runtime.inbox_worker import InboxWorker
from bot.runtime.intake import request_key
from bot.slack.app import create_app
from bot.slack.context import Runtime
from bot.slack.listeners import Stage
from storage import db, inbox
from storage.models import InboxRequest, Incident, RunbookUse, TimelineEntry, utcnow


def acknowledged(bot: Bot) -> list[Incident]:
    return [i for i in bot.incidents() if i.acknowledged_at is not None]


def ack_entries(sessions: db.SessionFactory, incident_id: str) -> list[TimelineEntry]:
    with db.unit_of_work(sessions) as session:
        query = select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id, TimelineEntry.event == "acknowledged"
        )
        return list(session.exec(query))


def inbox_rows(sessions: db.SessionFactory) -> list[InboxRequest]:
    with db.unit_of_work(sessions) as session:
        return list(session.exec(select(InboxRequest).order_by(InboxRequest.id)))


def ack_click(incident: Incident, user: str = "U0ALICE") -> sr.SignedRequest:
    assert incident.channel_id and incident.card_ts
    return sr.block_action(
        Action.ACKNOWLEDGE.value,
        value=incident.id,
        secret=SECRET,
        user_id=user,
        channel_id=incident.channel_id,
        message_ts=incident.card_ts,
    )


# -- keys ---------------------------------------------------------------------------------------


def test_redeliveries_share_a_key_and_distinct_requests_do_not() -> None:
    event = sr.event(sr.thread_reply("C0INC", "1.000001", "1.000002", "U0BOB", "hi"), secret=SECRET, event_id="Ev1")
    again = sr.event(
        sr.thread_reply("C0INC", "1.000001", "1.000002", "U0BOB", "hi"),
        secret=SECRET,
        event_id="Ev1",
        retry_num=1,
        retry_reason="http_timeout",
    )
    assert request_key(event.payload) == request_key(again.payload) == "event:Ev1"
    click = sr.block_action(Action.ACKNOWLEDGE.value, value="INC-1", secret=SECRET, channel_id="C1", message_ts="1.1")
    other = sr.block_action(Action.ACKNOWLEDGE.value, value="INC-1", secret=SECRET, channel_id="C1", message_ts="1.1")
    assert request_key(click.payload) != request_key(other.payload)  # a second click has its own action_ts
    assert request_key(sr.view_submission(Callback.DECLARE.value, {}, secret=SECRET).payload) is None
    command = sr.slash_command("list", secret=SECRET).payload
    assert request_key(command) == f"trigger:/incident:{command['trigger_id']}"


# -- in-process: redelivered, resubmitted, raced ------------------------------------------------


def test_a_redelivered_click_is_done_once(bot: Bot) -> None:
    incident = bot.declare("Checkout is down", "P1")
    click = ack_click(incident)
    for _ in range(3):  # Slack's retry after a slow answer carries the very same payload
        assert bot.send(click)[0] == 200
    poll(lambda: acknowledged(bot), message="the acknowledgement")
    time.sleep(0.3)  # the redeliveries had the time to do harm
    assert len(ack_entries(bot.sessions, incident.id)) == 1
    assert len(inbox_rows(bot.sessions)) >= 1
    # Done once means no "already acknowledged" told to the user either.
    assert bot.fake.calls("chat.postEphemeral") == []


def test_a_resubmitted_view_opens_one_incident(bot: Bot) -> None:
    # Slack resubmits a view whose ack was slow; a double click submits it twice: same view.id.
    values = declare_values("Payments time out", "P0")
    first = sr.view_submission(Callback.DECLARE.value, values, secret=SECRET, view_id="V0SAMEVIEW")
    second = sr.view_submission(Callback.DECLARE.value, values, secret=SECRET, view_id="V0SAMEVIEW")
    assert bot.send_ok(first) == {}
    assert bot.send_ok(second) == {}  # the same answer: the modal closes
    bot.fake.wait_for("chat.postMessage")
    time.sleep(0.3)
    assert [i.title for i in bot.incidents()] == ["Payments time out"]


def test_a_view_refused_with_errors_can_still_be_submitted_corrected(bot: Bot) -> None:
    bad = sr.view_submission(Callback.DECLARE.value, declare_values("", "P1"), secret=SECRET, view_id="V0FIXED")
    assert "errors" in bot.send_ok(bad)
    good = sr.view_submission(
        Callback.DECLARE.value, declare_values("Fixed title", "P1"), secret=SECRET, view_id="V0FIXED"
    )
    assert bot.send_ok(good) == {}
    assert bot.wait_incident(lambda i: i.title == "Fixed title")


def test_resubmissions_racing_each_other_open_one_incident(bot: Bot) -> None:
    values = declare_values("Raced twice", "P2")
    requests = [sr.view_submission(Callback.DECLARE.value, values, secret=SECRET, view_id="V0RACED") for _ in range(6)]
    threads = [threading.Thread(target=bot.send_ok, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bot.fake.wait_for("chat.postMessage")
    time.sleep(0.3)
    assert [i.title for i in bot.incidents()] == ["Raced twice"]


def test_two_replicas_given_the_same_clicks_do_each_once(make_bot: Any) -> None:
    first, second = make_bot(), make_bot()
    declared = [first.declare(f"Incident {n}", "P2") for n in range(6)]
    clicks = [ack_click(incident) for incident in declared]
    threads = [threading.Thread(target=replica.send_ok, args=(c,)) for c in clicks for replica in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    poll(lambda: len(acknowledged(first)) == 6, message="six acknowledgements")
    time.sleep(0.3)
    for incident in declared:
        assert len(ack_entries(first.sessions, incident.id)) == 1
    assert first.fake.calls("chat.postEphemeral") == []


# -- the inbox worker, driven directly -----------------------------------------------------------


class Crash(BaseException):
    """Stands for the process dying where it is raised: nothing below it runs, nothing commits."""


@pytest.fixture
def work_runtime(engine: Any, fake_slack: FakeSlack) -> Runtime:
    from bot_harness import settings_for

    settings = settings_for(str(engine.url.render_as_string(hide_password=False)), fake_slack)
    return Runtime.build(settings, engine)


def declare_one(rt: Runtime) -> Incident:
    from bot.slack.forms import parse_declare

    form = parse_declare(declare_values("Stored directly", "P1"))
    with db.unit_of_work(rt.sessions) as session:
        incident = incidents.declare(session, form, declared_by="U0ALICE", policy=rt.settings.policy(), now=utcnow())
        incident.channel_id, incident.card_ts = "C0INCIDENTS", "1700000000.000100"
        session.add(incident)
        return incident


def store(rt: Runtime, request: sr.SignedRequest) -> None:
    store_in_inbox(rt.engine, request)


def test_work_interrupted_before_its_commit_is_done_by_the_next_worker_once(
    work_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = work_runtime
    incident = declare_one(rt)
    store(rt, ack_click(incident))
    real = incidents.acknowledge
    crashes = [True]

    def acknowledge_then_die(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)  # written in the transaction, not yet committed
        if crashes:
            crashes.clear()
            raise Crash
        return result

    monkeypatch.setattr(incidents, "acknowledge", acknowledge_then_die)
    app = create_app(rt, Stage.WORK)
    dying = InboxWorker(rt, app, threads=1, lease=timedelta(milliseconds=300), poll_seconds=0.05)
    (claim,) = dying._claim()
    with pytest.raises(Crash):
        dying._run(claim)
    assert ack_entries(rt.sessions, incident.id) == []  # rolled back with the crash
    assert inbox_rows(rt.sessions)[0].done_at is None

    # Another replica's worker takes it once the lease has run out, and does it once.
    survivor = InboxWorker(rt, app, threads=2, lease=timedelta(seconds=30), poll_seconds=0.05).start()
    try:
        poll(lambda: inbox_rows(rt.sessions)[0].done_at is not None, message="the takeover")
    finally:
        survivor.stop()
    assert len(ack_entries(rt.sessions, incident.id)) == 1
    assert inbox_rows(rt.sessions)[0].claimed_by == survivor.worker_id


def test_work_committed_before_the_crash_is_not_done_again(
    work_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = work_runtime
    incident = declare_one(rt)
    store(rt, ack_click(incident))
    app = create_app(rt, Stage.WORK)
    dying = InboxWorker(rt, app, threads=1, lease=timedelta(milliseconds=200), poll_seconds=0.05)
    # Die right after the work's transaction committed (the kick that follows it never runs).
    monkeypatch.setattr(rt.deliverer, "kick", lambda: (_ for _ in ()).throw(Crash()))
    (claim,) = dying._claim()
    with pytest.raises(Crash):
        dying._run(claim)
    assert len(ack_entries(rt.sessions, incident.id)) == 1
    assert inbox_rows(rt.sessions)[0].done_at is not None  # marked in the work's own transaction
    time.sleep(0.3)  # the lease is over: were the row still pending, it would be taken again
    with rt.engine.begin() as connection:
        assert inbox.claim(connection, worker="other", limit=10, lease=timedelta(seconds=30), now=utcnow()) == []


def test_a_worker_whose_lease_was_taken_over_cannot_commit(
    work_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A runbook click records one use per click: done twice, it would count twice (unlike an
    # acknowledgement, which the domain itself refuses the second time).
    rt = work_runtime
    incident = declare_one(rt)
    assert incident.channel_id and incident.card_ts
    click = sr.block_action(
        Action.RUNBOOK.value,
        value=f"{incident.id}|Database failover",
        secret=SECRET,
        channel_id=incident.channel_id,
        message_ts=incident.card_ts,
    )
    store(rt, click)
    inside, resume = threading.Event(), threading.Event()
    real = incidents.record_runbook_use
    paused = [True]

    def record_slowly(*args: Any, **kwargs: Any) -> Any:
        # The first worker stalls here (SIGSTOP, a long GC pause) past its lease, before its
        # transaction began (SQLite's writer lock would otherwise keep everyone else waiting).
        if paused:
            paused.clear()
            inside.set()
            resume.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(incidents, "record_runbook_use", record_slowly)
    app = create_app(rt, Stage.WORK)
    stalled = InboxWorker(rt, app, threads=1, lease=timedelta(milliseconds=200), poll_seconds=0.05)
    (claim,) = stalled._claim()
    runner = threading.Thread(target=stalled._run, args=(claim,))
    runner.start()
    assert inside.wait(5)
    time.sleep(0.3)  # its lease runs out (it renews nothing: its claim loop is not running)
    other = InboxWorker(rt, app, threads=1, lease=timedelta(seconds=30), poll_seconds=0.05).start()
    try:
        poll(lambda: inbox_rows(rt.sessions)[0].done_at is not None, message="the takeover")
    finally:
        other.stop()
    resume.set()  # the stalled worker wakes up and tries to commit its copy of the work
    runner.join(10)
    with db.unit_of_work(rt.sessions) as session:
        assert len(list(session.exec(select(RunbookUse)))) == 1
    assert inbox_rows(rt.sessions)[0].claimed_by == other.worker_id


def test_a_slow_request_keeps_its_lease_and_is_done_once(work_runtime: Runtime, fake_slack: FakeSlack) -> None:
    rt = work_runtime
    fake_slack.delay("views.open", 1.5)  # longer than the lease: only renewing keeps it
    store(rt, sr.slash_command("", secret=SECRET))
    app = create_app(rt, Stage.WORK)
    lease = timedelta(milliseconds=450)
    first = InboxWorker(rt, app, threads=2, lease=lease, poll_seconds=0.05).start()
    poll(lambda: first.in_hand() == 1, message="the first claim")
    second = InboxWorker(rt, app, threads=2, lease=lease, poll_seconds=0.05).start()
    try:
        poll(lambda: inbox_rows(rt.sessions)[0].done_at is not None, timeout=10, message="the request done")
    finally:
        first.stop()
        second.stop()
    assert len(fake_slack.calls("views.open")) == 1
    assert inbox_rows(rt.sessions)[0].attempts == 1


# -- the ack path under a busy database ---------------------------------------------------------


def test_a_locked_sqlite_gets_slack_a_503_in_time_and_the_retry_is_stored(db_url: str, make_bot: Any) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer lock")
    bot = make_bot()
    incident = bot.declare("Locked out", "P2")
    # The file the ack writes: the intake's spool beside the database (storage/spool.py).
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///") + ".spool", timeout=1, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for longer than Slack waits
    try:
        started = time.monotonic()
        status, _, _ = bot.send(ack_click(incident))
        assert time.monotonic() - started < 3
        assert status == 503  # not a 200 for a request that is not stored: Slack tries again
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    bot.click(Action.ACKNOWLEDGE.value, incident.id, card=incident)  # the retry
    poll(lambda: acknowledged(bot), message="the acknowledgement")


# -- as real processes: stalled, then killed -----------------------------------------------------


@pytest.mark.slow
def test_clicks_acked_while_the_worker_stalled_survive_a_kill_of_the_whole_bot(
    db_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    env = bot_env(db_url, fake_slack, port)

    def start() -> ForkedProcess:
        return start_bot(env, log, start_new_session=True)  # its own process group, as under a supervisor

    process = start()
    try:
        wait_healthy(port, process, log)
        url = f"http://127.0.0.1:{port}/slack/events"
        for n in range(4):
            values = declare_values(f"Killed {n}", "P1")
            status, body, _ = sr.post(url, sr.view_submission(Callback.DECLARE.value, values, secret=SECRET))
            assert status == 200, body
        sessions = db.session_factory(db.create_db_engine(db_url))

        def cards() -> list[Incident]:
            with db.unit_of_work(sessions) as session:
                return [i for i in session.exec(select(Incident)) if i.card_ts]

        poll(lambda: len(cards()) == 4, timeout=20, message="four cards")
        (worker,) = child_pids(process.pid)
        declared = cards()  # read before the stop: a worker stopped inside a write holds SQLite's lock
        os.kill(worker, signal.SIGSTOP)
        for incident in declared:
            status, body, _ = sr.post(url, ack_click(incident))
            assert status == 200, body  # told "done"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        assert all(i.acknowledged_at is None for i in cards())

        process = start()
        wait_healthy(port, process, log)
        poll(lambda: all(i.acknowledged_at is not None for i in cards()), timeout=20, message="four acks")
        for incident in cards():
            assert len(ack_entries(sessions, incident.id)) == 1
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
