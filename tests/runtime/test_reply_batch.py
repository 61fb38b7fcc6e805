"""Thread replies stored many to a transaction (bot/slack/reply_batch.py): still each exactly once.

The batch path skips Bolt, so each test here breaks what Bolt and the one-request path gave for
free: a crash before the batch's commit, a claim inside the batch taken over by another worker,
a kill -9 of the worker process in the middle of a stream of replies, and the requests the batch must
leave to Bolt (edits, bot messages, another workspace, another thread).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import slack_requests as sr
import sqlalchemy as sa
from bot_harness import SECRET, declare_values, poll, settings_for, store_in_inbox
from bot_process import bot_env, child_pids, free_port, start_bot, wait_healthy
from cli_process import ForkedProcess
from fake_slack import FakeSlack
from sqlmodel import select

from bot.ids import Callback
from bot.incidents import lifecycle, timeline, timeline_batch
from bot.runtime.inbox_worker import InboxWorker
from bot.slack import reply_batch
from bot.slack.app import create_app
from bot.slack.context import Runtime
from bot.slack.forms import parse_declare
from bot.slack.listeners import Stage
from storage import db, inbox
from storage.models import InboxRequest, Incident, ProcessedEvent, TimelineEntry, utcnow

CHANNEL, CARD_TS = "C0INCIDENTS", "1700000000.000100"


class Crash(BaseException):
    """Stands for the process dying where it is raised: nothing below it runs, nothing commits."""


@pytest.fixture
def rt(engine: Any, fake_slack: FakeSlack) -> Runtime:
    runtime = Runtime.build(settings_for(str(engine.url.render_as_string(hide_password=False)), fake_slack), engine)
    runtime.identity.team_id = sr.DEFAULT_TEAM_ID  # learnt from auth.test at start-up in a real worker
    return runtime


def declare(rt: Runtime, severity: str = "P2", card_ts: str = CARD_TS) -> Incident:
    form = parse_declare(declare_values("Busy thread", severity))
    with db.unit_of_work(rt.sessions) as session:
        incident = lifecycle.declare(session, form, declared_by="U0ALICE", policy=rt.settings.policy(), now=utcnow())
        incident.channel_id, incident.card_ts = CHANNEL, card_ts
        session.add(incident)
        return incident


def reply(ts: str, text: str = "looking", *, thread_ts: str = CARD_TS, **options: Any) -> sr.SignedRequest:
    return sr.event(sr.thread_reply(CHANNEL, thread_ts, ts, "U0BOB", text), secret=SECRET, **options)


def store(rt: Runtime, *requests: sr.SignedRequest) -> None:
    store_in_inbox(rt.engine, *requests)


def messages(rt: Runtime) -> Counter[str]:
    with db.unit_of_work(rt.sessions) as session:
        rows = session.exec(select(TimelineEntry).where(TimelineEntry.kind == "message"))
        return Counter(e.text for e in rows)


def pending(rt: Runtime) -> list[InboxRequest]:
    with db.unit_of_work(rt.sessions) as session:
        return list(session.exec(select(InboxRequest).where(InboxRequest.done_at.is_(None))))  # type: ignore[union-attr]


def ts(n: int) -> str:
    return f"1700000100.{n:06d}"


def worker(rt: Runtime, **options: Any) -> InboxWorker:
    return InboxWorker(rt, create_app(rt, Stage.WORK), poll_seconds=0.05, **options)


def drain(rt: Runtime, message: str = "the inbox to drain") -> InboxWorker:
    """Run a worker until nothing is pending; the stopped worker, to look at."""
    running = worker(rt).start()
    try:
        poll(lambda: not pending(rt), message=message)
    finally:
        running.stop()
    return running


# -- which requests the batch takes ---------------------------------------------------------------


def test_only_plain_replies_of_our_workspace_are_taken_by_the_batch(rt: Runtime) -> None:
    def claim_of(request: sr.SignedRequest) -> inbox.Claim:
        return inbox.Claim(id=1, mode="http", body=request.text, headers={}, worker="w", attempt=1)

    assert reply_batch.reply_of(rt, claim_of(reply(ts(1)))) is not None
    edited = sr.thread_reply(CHANNEL, CARD_TS, ts(2), "U0BOB", "new text")
    edit = {"type": "message", "subtype": "message_changed", "channel": CHANNEL, "message": edited}
    not_batched = {
        "an edit": sr.event(edit, secret=SECRET),
        "another workspace": reply(ts(3), team_id="T0OTHER"),
        "a bot's message": sr.event(sr.bot_message(CHANNEL, CARD_TS, ts(4)), secret=SECRET),
        "a click": sr.block_action("acknowledge", value="INC-1", secret=SECRET),
        "a command": sr.slash_command("list", secret=SECRET),
    }
    for what, request in not_batched.items():
        assert reply_batch.reply_of(rt, claim_of(request)) is None, what
    rt.identity.team_id = None  # not known yet: Bolt decides
    assert reply_batch.reply_of(rt, claim_of(reply(ts(5)))) is None


def test_a_batch_stores_each_reply_once_and_leaves_the_rest_to_bolt(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(rt)
    batches: list[int] = []
    real = reply_batch.store
    monkeypatch.setattr(reply_batch, "store", lambda rt, queued: (batches.append(len(queued)), real(rt, queued)))
    requests = [reply(ts(n), f"reply {n}") for n in range(40)]
    requests.append(reply(ts(0), "reply 0", event_id="Ev-redelivered-under-a-new-id"))
    requests.append(reply(ts(99), "elsewhere", thread_ts="1700000000.999999"))  # no incident's thread
    edited = {**sr.thread_reply(CHANNEL, CARD_TS, ts(1), "U0BOB", "reply 1, edited"), "edited": {"ts": ts(500)}}
    requests.append(
        sr.event(
            {"type": "message", "subtype": "message_changed", "channel": CHANNEL, "message": edited}, secret=SECRET
        )
    )
    store(rt, *requests)
    drain(rt)
    assert batches == [42]  # the replies in one transaction (one ignored: no incident's); the edit through Bolt
    stored = messages(rt)
    assert set(stored.values()) == {1}
    assert len(stored) == 40 and "elsewhere" not in stored
    assert "reply 1, edited" in stored


def test_a_reply_raises_the_activity_of_an_acknowledged_incident_once_per_batch(rt: Runtime) -> None:
    incident = declare(rt, "P1")
    acknowledged_at = utcnow() - timedelta(hours=1)
    with db.unit_of_work(rt.sessions) as session:
        row = session.get(Incident, incident.id)
        assert row is not None
        row.acknowledged_at, row.last_activity_at = acknowledged_at, acknowledged_at
    now = datetime.now(UTC)
    replies = [timeline_batch.Reply(_message(ts(n)), f"Ev{n}") for n in range(3)]
    with db.unit_of_work(rt.sessions) as session:
        stored = timeline_batch.record_replies(session, replies, policy=rt.settings.policy(), now=now)
    assert len(stored) == 3
    with db.unit_of_work(rt.sessions) as session:
        row = session.get(Incident, incident.id)
        assert row is not None and row.last_activity_at is not None
        assert abs(row.last_activity_at.replace(tzinfo=UTC) - now) < timedelta(seconds=1)
        # The same replies again (a redelivery under the same ids) store nothing.
        assert timeline_batch.record_replies(session, replies, policy=rt.settings.policy(), now=now) == []
        assert len(list(session.exec(select(ProcessedEvent)))) == 3


def _message(reply_ts: str) -> timeline.ThreadMessage:
    return timeline.ThreadMessage(
        channel_id=CHANNEL, thread_ts=CARD_TS, ts=reply_ts, user="U0BOB", text=f"at {reply_ts}", files=[]
    )


# -- crashes and takeovers ----------------------------------------------------------------------


def test_a_batch_that_dies_before_its_commit_is_stored_by_the_next_worker_once(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(rt)
    store(rt, *(reply(ts(n), f"reply {n}") for n in range(20)))
    real = timeline_batch.record_replies

    def store_then_die(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # written in the transaction, not committed
        raise Crash

    monkeypatch.setattr(timeline_batch, "record_replies", store_then_die)
    dying = worker(rt, lease=timedelta(milliseconds=300))
    claims = dying._claim()
    assert len(claims) == 20
    queued = [reply_batch.reply_of(rt, claim) for claim in claims]
    with pytest.raises(Crash):
        dying._run_replies([q for q in queued if q is not None])
    assert messages(rt) == Counter() and len(pending(rt)) == 20

    monkeypatch.setattr(timeline_batch, "record_replies", real)
    drain(rt, "the takeover")
    assert len(messages(rt)) == 20 and set(messages(rt).values()) == {1}


def test_a_batch_with_one_request_taken_over_stores_the_others_and_not_that_one(rt: Runtime) -> None:
    declare(rt)
    store(rt, *(reply(ts(n), f"reply {n}") for n in range(5)))
    slow = worker(rt)
    claims = slow._claim()
    queued = [q for q in (reply_batch.reply_of(rt, c) for c in claims) if q is not None]
    # While `slow` stalled, its lease on the third request ran out and another worker took it.
    taken = claims[2]
    table = InboxRequest.__table__  # type: ignore[attr-defined]
    with rt.engine.begin() as connection:
        connection.execute(
            table.update().where(table.c.id == taken.id).values(claimed_by="other", attempts=taken.attempt + 1)
        )
    slow._run_replies(queued)
    stored = messages(rt)
    assert "reply 2" not in stored and len(stored) == 4
    with db.unit_of_work(rt.sessions) as session:
        row = session.get(InboxRequest, taken.id)
        assert row is not None and row.done_at is None and row.claimed_by == "other"
    assert [r.id for r in pending(rt)] == [taken.id]
    assert slow.in_hand() == 0  # nothing left renewed for ever


def test_a_batch_that_fails_is_stored_one_at_a_time_not_set_aside(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # A deadlock or a lock timeout is an OperationalError, like an outage: the batch must not take
    # it for one and defer its replies (each deferral is an attempt, and attempts run out).
    declare(rt)
    store(rt, *(reply(ts(n), f"reply {n}") for n in range(6)))

    def deadlocked(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("INSERT", {}, Exception("deadlock detected"))

    monkeypatch.setattr(timeline_batch, "record_replies", deadlocked)
    running = drain(rt)
    assert len(messages(rt)) == 6 and set(messages(rt).values()) == {1}
    assert running.in_hand() == 0


def test_replies_acked_while_the_worker_is_killed_mid_stream_are_each_stored_once(
    db_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    env = bot_env(db_url, fake_slack, port)
    engine = db.create_db_engine(db_url)
    sessions = db.session_factory(engine)

    def start() -> ForkedProcess:
        return start_bot(env, log, start_new_session=True)

    def stored(incident_id: str) -> tuple[int, int]:
        with engine.connect() as connection:
            table = TimelineEntry.__table__  # type: ignore[attr-defined]
            query = sa.select(sa.func.count(), sa.func.count(sa.distinct(table.c.slack_ts))).where(
                table.c.incident_id == incident_id, table.c.kind == "message"
            )
            total, distinct = connection.execute(query).one()
            return int(total), int(distinct)

    process = start()
    try:
        wait_healthy(port, process, log)
        url = f"http://127.0.0.1:{port}/slack/events"
        status, body, _ = sr.post(
            url, sr.view_submission(Callback.DECLARE.value, declare_values("Busy", "P1"), secret=SECRET)
        )
        assert status == 200, body

        def card() -> Incident | None:
            with db.unit_of_work(sessions) as session:
                return next((i for i in session.exec(select(Incident)) if i.card_ts), None)

        poll(lambda: card() is not None, timeout=20, message="the card")
        incident = card()
        assert incident is not None and incident.channel_id and incident.card_ts
        acked: list[str] = []
        for n in range(300):
            reply_ts = sr.new_ts()
            request = sr.event(
                sr.thread_reply(incident.channel_id, incident.card_ts, reply_ts, "U0BOB", f"reply {n}"), secret=SECRET
            )
            if sr.post(url, request)[0] == 200:
                acked.append(reply_ts)
            if n == 150:
                # Mid-stream, while batches are being stored: the worker process dies at once. The
                # front goes on acking, restarts it, and gives back what the dead one held.
                (worker_pid,) = child_pids(process.pid)
                os.kill(worker_pid, signal.SIGKILL)
        assert len(acked) >= 299  # only the request in flight at the kill may go unanswered
        poll(lambda: stored(incident.id)[0] >= len(acked), timeout=30, message="every acked reply")
        time.sleep(0.5)  # a duplicate would land now
        total, distinct = stored(incident.id)
        assert total == distinct and distinct >= len(acked)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        engine.dispose()
