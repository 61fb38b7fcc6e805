"""The outbox sender (bot/delivery.py) at its worst moments: a sender that dies or times out after
its post left, a digest that takes its time, a reply that beats its card's ts into the database."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import slack_requests as sr
from bot_harness import SECRET, TOKEN, Bot, poll, settings_for
from fake_slack import FakeSlack
from slack_sdk import WebClient
from sqlmodel import select

from bot.incidents.outbox import OutboxKind, enqueue, refresh_card
from bot.slack import leases
from bot.slack.context import make_client
from bot.slack.delivery import Deliverer
from bot.slack.sends import Send
from storage import db
from storage.models import Incident, Outbox, TimelineEntry, utcnow


class Died(BaseException):
    """The process ended mid-send (a kill, an OOM): nothing after the request ran."""


def outbox_rows(sessions: db.SessionFactory) -> list[Outbox]:
    with db.unit_of_work(sessions) as session:
        return list(session.exec(select(Outbox).order_by(Outbox.id)))


def incident_row(number: int, **fields: Any) -> Incident:
    return Incident(
        id=f"INC-2026-01-01-{number:03d}",
        title=fields.pop("title", f"incident {number}"),
        severity="P2",
        status="Investigating",
        declared_at=utcnow(),
        started_at=utcnow(),
        declared_by="U0ALICE",
        **fields,
    )


def posts(fake: FakeSlack, text: str) -> list[dict[str, Any]]:
    """The messages Slack holds whose text starts with `text`, in every channel the test uses."""
    return [
        m for channel in ("ops-incidents", "ops-alerts") for m in fake.messages(channel) if m["text"].startswith(text)
    ]


def card_waiting_for_two_senders(
    sessions: db.SessionFactory, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> tuple[WebClient, Deliverer, Deliverer]:
    """Incident 002's card queued, two senders with a short lease, and (client, dying, survivor)."""
    monkeypatch.setattr(leases, "LEASE", timedelta(milliseconds=300))
    settings = settings_for("sqlite://", fake_slack)
    client = make_client(settings)
    earlier = client.chat_postMessage(channel="ops-incidents", text="an earlier card")
    with db.unit_of_work(sessions) as session:
        # An earlier incident's card tells the survivor the incident channel's ID.
        session.add(incident_row(1, channel_id=earlier["channel"], card_ts=earlier["ts"]))
        session.add(incident_row(2, title="Checkout is down"))
        session.flush()
        enqueue(session, OutboxKind.CARD_POST, incident_id="INC-2026-01-01-002")
    return client, Deliverer(sessions, client, settings), Deliverer(sessions, client, settings)


def test_a_card_whose_sender_died_after_posting_is_found_by_its_metadata_not_posted_twice(
    sessions: db.SessionFactory, recent_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_slack = recent_slack
    _client, dying, survivor = card_waiting_for_two_senders(sessions, fake_slack, monkeypatch)
    real_card_post = dying._card_post

    def post_then_die(session: Any, row: Outbox) -> Send | None:
        send = real_card_post(session, row)
        assert send is not None

        def call(client: WebClient) -> Any:
            send.call(client)
            raise Died  # the card is in Slack; its ts never reaches the database

        return Send(call, send.after, send.posted, send.then)

    dying.handlers[OutboxKind.CARD_POST.value] = post_then_die
    with pytest.raises(Died):
        dying.deliver_pending()
    time.sleep(0.4)  # the dead sender's claim expires
    assert survivor.deliver_pending() == 1

    cards = posts(fake_slack, "INC-2026-01-01-002")
    assert len(cards) == 1, cards
    assert fake_slack.last("conversations.history").params["include_all_metadata"] in ("1", "true", True)
    with db.unit_of_work(sessions) as session:
        incident = session.get(Incident, "INC-2026-01-01-002")
        assert incident is not None and incident.card_ts == cards[0]["ts"]
    (_card_row,) = [r for r in outbox_rows(sessions) if r.kind == OutboxKind.CARD_POST.value]
    assert _card_row.delivered_at is not None


def test_another_installations_post_under_the_same_row_id_is_not_taken_for_ours(
    sessions: db.SessionFactory, recent_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staging beside production, or a database started afresh: their outbox row 1 is not ours.
    fake_slack = recent_slack
    client, dying, survivor = card_waiting_for_two_senders(sessions, fake_slack, monkeypatch)
    (row,) = outbox_rows(sessions)
    theirs = {
        "event_type": "incident_bot_outbox",
        "event_payload": {"outbox_id": row.id, "created": "2026-01-01T00:00:00.000000"},
    }
    client.chat_postMessage(channel="ops-incidents", text="staging: its own card", metadata=theirs)

    def die_before_sending(session: Any, row: Outbox) -> Send | None:
        raise Died  # the claim is left to expire: the next sender is unsure and looks

    dying.handlers[OutboxKind.CARD_POST.value] = die_before_sending
    with pytest.raises(Died):
        dying.deliver_pending()
    time.sleep(0.4)
    assert survivor.deliver_pending() == 1

    assert fake_slack.calls("conversations.history")  # it did look
    cards = posts(fake_slack, "INC-2026-01-01-002")
    assert len(cards) == 1, cards
    with db.unit_of_work(sessions) as session:
        incident = session.get(Incident, "INC-2026-01-01-002")
        assert incident is not None and incident.card_ts == cards[0]["ts"]


def test_a_reply_whose_answer_timed_out_is_found_in_the_thread_not_posted_twice(
    sessions: db.SessionFactory, recent_slack: FakeSlack
) -> None:
    fake_slack = recent_slack
    settings = settings_for("sqlite://", fake_slack)
    # No retry handlers and a short timeout: the request reaches Slack, its answer never comes back.
    impatient = WebClient(token=TOKEN, base_url=fake_slack.url, timeout=1)
    card = make_client(settings).chat_postMessage(channel="ops-incidents", text="the card")
    with db.unit_of_work(sessions) as session:
        session.add(incident_row(3, channel_id=card["channel"], card_ts=card["ts"]))
        session.flush()
        enqueue(session, OutboxKind.THREAD_REPLY, incident_id="INC-2026-01-01-003", payload={"text": "Escalated: P2"})
    fake_slack.delay("chat.postMessage", 2)
    assert Deliverer(sessions, impatient, settings).deliver_pending() == 0
    fake_slack.delay("chat.postMessage", 0)
    (row,) = outbox_rows(sessions)
    assert row.delivered_at is None and row.last_error
    with db.unit_of_work(sessions) as session:
        stored = session.get(Outbox, row.id)
        assert stored is not None
        stored.next_attempt_at = utcnow()  # skip the back-off

    assert Deliverer(sessions, make_client(settings), settings).deliver_pending() == 1
    replies = [m for m in fake_slack.messages("ops-incidents") if m.get("thread_ts") == card["ts"]]
    assert [m["text"] for m in replies] == ["Escalated: P2"]
    created = row.created_at.replace(tzinfo=None).isoformat(timespec="microseconds")
    assert replies[0]["metadata"] == {
        "event_type": "incident_bot_outbox",
        "event_payload": {"outbox_id": row.id, "created": created},
    }
    assert fake_slack.calls("conversations.replies")
    (row,) = outbox_rows(sessions)
    assert row.delivered_at is not None


def test_a_slow_digest_never_delays_an_escalation(sessions: db.SessionFactory, fake_slack: FakeSlack) -> None:
    settings = settings_for("sqlite://", fake_slack)
    deliverer = Deliverer(sessions, make_client(settings), settings)
    started, finish = threading.Event(), threading.Event()

    def slow_digest(_session: Any, _row: Outbox) -> Send:
        def call(_client: WebClient) -> Any:
            started.set()  # the chart is being drawn, then uploaded in three calls
            assert finish.wait(10)
            return {"ok": True}

        return Send(call)

    deliverer.handlers[OutboxKind.DIGEST.value] = slow_digest
    deliverer.start()
    try:
        with db.unit_of_work(sessions) as session:
            enqueue(session, OutboxKind.DIGEST, payload={"period": "weekly"})
        deliverer.kick()
        assert started.wait(5)
        with db.unit_of_work(sessions) as session:
            enqueue(session, OutboxKind.CHANNEL_POST, payload={"text": "Escalated: P0", "channel": "C0ALERTS"})
        deliverer.kick()
        fake_slack.wait_for("chat.postMessage", timeout=3)
        assert not finish.is_set()  # the digest is still going
    finally:
        finish.set()
        deliverer.stop()
    assert all(r.delivered_at is not None for r in outbox_rows(sessions))


def test_an_escalation_cross_post_does_not_wait_on_a_card_that_cannot_be_posted(
    sessions: db.SessionFactory, fake_slack: FakeSlack
) -> None:
    settings = settings_for("sqlite://", fake_slack)
    with db.unit_of_work(sessions) as session:
        session.add(incident_row(4))  # its card never made it (a private channel, a refused post)
        session.flush()
        enqueue(session, OutboxKind.THREAD_REPLY, incident_id="INC-2026-01-01-004", payload={"text": "Escalated"})
        payload = {"text": "Escalated: INC-2026-01-01-004", "channel": "C0ALERTS"}
        enqueue(session, OutboxKind.CHANNEL_POST, incident_id="INC-2026-01-01-004", payload=payload)
    assert Deliverer(sessions, make_client(settings), settings).deliver_pending() == 1
    (cross_post,) = fake_slack.messages("C0ALERTS")
    assert cross_post["text"] == "Escalated: INC-2026-01-01-004"  # without the thread link it cannot have


def test_a_reply_that_comes_before_the_card_ts_is_recorded_is_kept(bot: Bot, fake_slack: FakeSlack) -> None:
    # Joining the channel is slow: the reply's event comes while it runs, once the card is in Slack.
    fake_slack.delay("conversations.join", 3)
    bot.submit_declare("Replies race the card", "P2")
    fake_slack.wait_for("chat.postMessage")
    (card,) = fake_slack.messages("ops-incidents")
    fake_slack.wait_for("conversations.join")
    event = sr.thread_reply("C0INCIDENTS", card["ts"], "1764170000.000200", "U0BOB", "I see 502s from the LB")
    bot.send_ok(sr.event(event, secret=SECRET))

    def stored() -> list[TimelineEntry]:
        with db.unit_of_work(bot.sessions) as session:
            return list(session.exec(select(TimelineEntry).where(TimelineEntry.slack_ts == "1764170000.000200")))

    (entry,) = poll(stored, timeout=8, message="the early reply in the timeline")
    assert entry.text == "I see 502s from the LB"


def test_two_senders_never_have_one_incidents_card_in_flight_twice(
    sessions: db.SessionFactory, fake_slack: FakeSlack
) -> None:
    # A re-render renders when it is taken: had a second sender taken the next one while the
    # first was still on its way, Slack could get them in the wrong order and keep the older card.
    settings = settings_for("sqlite://", fake_slack)
    slow, quick = (Deliverer(sessions, make_client(settings), settings) for _ in range(2))
    sending, release = threading.Event(), threading.Event()
    render = slow.handlers[OutboxKind.CARD_UPDATE.value]

    def held(session: Any, row: Outbox) -> Send:
        send = render(session, row)  # the card as it is now, before the change below
        original = send.call

        def call(client: WebClient) -> Any:
            sending.set()
            assert release.wait(10)
            return original(client)

        return Send(call)

    slow.handlers[OutboxKind.CARD_UPDATE.value] = held
    incident_id = "INC-2026-01-01-007"
    with db.unit_of_work(sessions) as session:
        session.add(incident_row(7, channel_id="C0INCIDENTS", card_ts="1764168000.000100"))
        session.flush()
        refresh_card(session, incident_id)
    first = threading.Thread(target=slow.deliver_pending)
    first.start()
    try:
        assert sending.wait(5)
        with db.unit_of_work(sessions) as session:
            session.get(Incident, incident_id).status = "Mitigated"  # type: ignore[union-attr]
            refresh_card(session, incident_id)
        assert quick.deliver_pending() == 0  # the newer re-render waits for the one in flight
    finally:
        release.set()
        first.join(10)
    assert quick.deliver_pending() == 1
    updates = fake_slack.calls("chat.update")
    assert len(updates) == 2 and "Mitigated" in str(updates[-1].params["text"])


def test_a_failed_call_is_retried_after_2_4_8_seconds_up_to_5_minutes_and_never_given_up() -> None:
    from bot.slack.delivery import FIRST_RETRY, MAX_BACKOFF, retry_backoff

    assert timedelta(seconds=2) == FIRST_RETRY and timedelta(minutes=5) == MAX_BACKOFF
    assert [retry_backoff(n).total_seconds() for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert retry_backoff(10_000) == MAX_BACKOFF
