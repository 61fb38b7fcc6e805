"""The outbox (bot/delivery.py): each incident's story in order, no incident blocking another,
fenced deliveries, and dead letters for what Slack refuses for good."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from bot_harness import Bot, poll
from fake_slack import FakeSlack
from sqlmodel import select

from bot.ids import Action
from bot.incidents.outbox import OutboxKind, enqueue
from bot.slack import leases
from bot.slack.delivery import Deliverer
from bot.slack.sends import Send
from storage import db
from storage.models import Incident, Outbox, utcnow


def thread_replies(bot: Bot, incident: Incident) -> list[str]:
    return [
        c.params["text"]
        for c in bot.fake.calls("chat.postMessage")
        if c.params.get("thread_ts") == incident.card_ts and c.status == 200  # what Slack took
    ]


def outbox_rows(sessions: db.SessionFactory) -> list[Outbox]:
    with db.unit_of_work(sessions) as session:
        return list(session.exec(select(Outbox).order_by(Outbox.id)))


def test_a_reply_that_failed_holds_back_the_later_ones_so_the_thread_reads_in_order(bot: Bot) -> None:
    incident = bot.declare("Checkout is down", "P2")
    # The first attempt and the client's quick retry both fail: the row backs off for seconds.
    bot.fake.fail("chat.postMessage", 500, times=2)
    # Clicked one after the other, as a person does: each change is stored before the next click.
    bot.click(Action.ACKNOWLEDGE.value, incident.id, card=incident)
    poll(lambda: bot.incidents()[0].acknowledged_at, message="the acknowledgement stored")
    bot.click(Action.MITIGATE.value, incident.id, card=incident)
    poll(lambda: bot.incidents()[0].mitigated_at, message="the mitigation stored")
    bot.click(Action.SEVERITY.value, "", card=incident, selected=f"{incident.id}|P1")
    poll(lambda: len(thread_replies(bot, incident)) >= 3, timeout=20, message="three thread replies")
    texts = thread_replies(bot, incident)
    order = [
        next(i for i, t in enumerate(texts) if "cknowledged" in t),
        next(i for i, t in enumerate(texts) if "itigated" in t),
        next(i for i, t in enumerate(texts) if "P1" in t),
    ]
    assert order == sorted(order), texts


def test_an_incident_whose_card_cannot_be_posted_does_not_stop_the_others(bot: Bot, fake_slack: FakeSlack) -> None:
    healthy = bot.declare("Healthy one", "P3")
    with db.unit_of_work(bot.sessions) as session:
        # 250 rows for an incident with no card (a private channel the bot is not in): more than
        # one batch of candidates.
        other = Incident(
            id="INC-2026-01-01-099",
            title="Card-less",
            severity="P2",
            status="Investigating",
            declared_at=utcnow(),
            started_at=utcnow(),
            declared_by="U0ALICE",
        )
        session.add(other)
        session.flush()
        for n in range(250):
            enqueue(session, OutboxKind.THREAD_REPLY, incident_id=other.id, payload={"text": f"stuck {n}"})
    bot.service.wake()
    bot.click(Action.ACKNOWLEDGE.value, healthy.id, card=healthy)
    poll(lambda: any("cknowledged" in t for t in thread_replies(bot, healthy)), timeout=10, message="the reply")


def test_a_permanent_error_becomes_a_dead_letter_once_and_does_not_block(
    bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    incident = bot.declare("Blocks too big", "P2")
    fake_slack.fail("chat.postMessage", 200, times=1, error="invalid_blocks")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, card=incident)
    poll(lambda: any(r.dead_at for r in outbox_rows(bot.sessions)), timeout=10, message="a dead letter")
    (dead,) = [r for r in outbox_rows(bot.sessions) if r.dead_at]
    assert dead.last_error and "invalid_blocks" in dead.last_error
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "invalid_blocks" in r.getMessage()]
    assert len(errors) == 1
    # What comes after it in the incident's story is not held back by it.
    bot.click(Action.MITIGATE.value, incident.id, card=incident)
    poll(lambda: any("itigated" in t for t in thread_replies(bot, incident)), timeout=10, message="the next reply")
    time.sleep(0.5)
    assert len([r for r in outbox_rows(bot.sessions) if r.dead_at]) == 1  # not retried


def test_a_send_that_outlives_its_lease_is_posted_once(
    sessions: db.SessionFactory, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot_harness import settings_for

    from bot.slack.context import make_client

    # Renewed every LEASE / 3: short enough for a quick test, long enough that a renewal held up
    # by a loaded machine (300 ms was, once, with the suite's six workers) is not a dead replica.
    monkeypatch.setattr(leases, "LEASE", timedelta(milliseconds=900))
    settings = settings_for("sqlite://", fake_slack)
    client = make_client(settings)
    replicas = [Deliverer(sessions, client, settings) for _ in range(2)]
    with db.unit_of_work(sessions) as session:
        enqueue(session, OutboxKind.CHANNEL_POST, payload={"text": "slow one", "channel": "C0ALERTS"})
    fake_slack.delay("chat.postMessage", 3.6)  # four leases long

    first = threading.Thread(target=replicas[0].deliver_pending)
    first.start()
    poll(lambda: outbox_rows(sessions)[0].attempts == 1, timeout=3, message="the first replica's claim")
    time.sleep(1.4)  # past the first lease: only the renewal keeps the row
    replicas[1].deliver_pending()
    first.join(10)
    fake_slack.delay("chat.postMessage", 0)
    assert len(fake_slack.calls("chat.postMessage")) == 1
    (row,) = outbox_rows(sessions)
    assert row.delivered_at is not None and row.attempts == 1


def test_a_delivery_is_recorded_only_by_the_claim_holder(sessions: db.SessionFactory, fake_slack: FakeSlack) -> None:
    from bot_harness import settings_for

    from bot.slack.context import make_client

    settings = settings_for("sqlite://", fake_slack)
    deliverer = Deliverer(sessions, make_client(settings), settings)
    with db.unit_of_work(sessions) as session:
        enqueue(session, OutboxKind.CHANNEL_POST, payload={"text": "fenced", "channel": "C0ALERTS"})
    (row,) = outbox_rows(sessions)
    real_call = deliverer._channel_post

    def stolen(session: Any, outbox_row: Outbox) -> Any:
        send = real_call(session, outbox_row)
        row_id = outbox_row.id

        def call(client: Any) -> Any:
            # Another replica took the row over while we were sending: a new claim token.
            with db.unit_of_work(sessions) as other:
                other.get(Outbox, row_id).claim_token = "someone-else"  # type: ignore[union-attr]
            return send.call(client)

        return Send(call, send.after)

    deliverer.handlers[OutboxKind.CHANNEL_POST.value] = stolen
    assert deliverer.deliver_pending() == 0
    (row,) = outbox_rows(sessions)
    assert row.delivered_at is None  # the other replica records it, not us


def test_dead_letters_are_listed_shown_to_the_commander_counted_and_requeued(
    bot: Bot, fake_slack: FakeSlack, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main
    from bot.slack.listeners.home import home_view

    incident = bot.declare("Private channel", "P2")
    fake_slack.fail("chat.postMessage", 200, times=1, error="channel_not_found")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, card=incident)  # Alice acknowledges: commander
    poll(lambda: any(r.dead_at for r in outbox_rows(bot.sessions)), timeout=10, message="a dead letter")

    status, body = bot.get("/healthz?detail=1")
    assert status == 200 and json.loads(body)["dead_letters"] == 1
    view = json.dumps(home_view(bot.service.rt, utcnow(), "U0ALICE"))
    assert incident.id in view and "channel_not_found" in view
    assert "channel_not_found" not in json.dumps(home_view(bot.service.rt, utcnow(), "U0SOMEONE"))

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["outbox"]) == 0
    listing = capsys.readouterr().out
    assert incident.id in listing and "channel_not_found" in listing
    assert main(["outbox", "retry"]) == 0
    assert "queued 1 dead letter again" in capsys.readouterr().out
    bot.service.wake()
    poll(lambda: sum("cknowledged" in t for t in thread_replies(bot, incident)) == 1, message="the resent reply")
    assert not any(r.dead_at for r in outbox_rows(bot.sessions))
    assert main(["outbox"]) == 0
    assert "no dead letters" in capsys.readouterr().out
