"""E-mail and webhook notices of a page: claimed by the sweep, sent once, retried with back-off, dead on a 4xx."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_slack import FakeSlack
from oncall_bot import ONCALL
from smtp_server import smtp_server
from test_oncall_webhook import NOW, SECRET, Receiver, receiver  # noqa: F401  (the receiver fixture)

from bot.incidents import lifecycle as incidents
from bot.incidents.forms import DeclareForm
from bot.oncall import paging
from bot.oncall.outbound import Senders, send_outbound
from bot.oncall.service import notifications
from bot.settings import Settings
from bot.slack.context import make_client
from bot.slack.page_delivery import SlackEmails
from storage import db

CONFIG: dict[str, Any] = {**ONCALL, "people": {"U01ALICE": {"email": "alice@example.com", "phone": "+4915100000001"}},
                          "email": {"to": ["ops-oncall@example.com"], "severities": ["P0"]}}
BOTH = paging.Channels(email=True, webhook=True)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Any, str, Any]]:
    with smtp_server(tmp_path, starttls=True) as (recorder, port, context):
        yield recorder, f"smtp://127.0.0.1:{port}", context


def page(sessions: db.SessionFactory, settings: Settings) -> int:
    with db.unit_of_work(sessions) as session:
        incidents.declare(session, DeclareForm(title="Checkout down", severity="P0"), declared_by="U0BOB",
                                     policy=settings.policy(), now=NOW)
        return 1


def run(sessions: db.SessionFactory, settings: Settings, senders: Senders, at: Any) -> paging.Swept:
    swept = paging.sweep(sessions, settings.oncall, now=at, worker="w1", channels=BOTH)
    send_outbound(sessions, settings.oncall, swept.outbound or [], senders, now=at)
    return swept


def test_each_person_gets_one_email_and_one_webhook_and_the_list_one_email(
    sessions: db.SessionFactory, smtp: tuple[Any, str, Any], receiver: tuple[Receiver, str],  # noqa: F811
) -> None:
    recorder, smtp_url, context = smtp
    state, url = receiver
    settings = Settings(oncall=CONFIG)
    senders = Senders(smtp_url=smtp_url, email_from="bot@example.com", webhook_url=url, webhook_secret=SECRET,
                      tls_context=context)
    page(sessions, settings)
    swept = run(sessions, settings, senders, NOW)
    assert swept.queued == 1  # the DM, through the outbox
    recipients = sorted(tuple(e.rcpt_tos) for e in recorder.envelopes)
    assert recipients == [("alice@example.com",), ("ops-oncall@example.com",)]
    (payload,) = state.received
    assert state.verified == [True]
    assert payload["person"] == {"user_id": "U01ALICE", "email": "alice@example.com", "phone": "+4915100000001"}
    assert payload["incident"]["severity"] == "P0" and payload["step"] == 1
    # Again, and a later sweep: nothing more (each notice was claimed once).
    run(sessions, settings, senders, NOW)
    run(sessions, settings, senders, NOW + timedelta(minutes=1))
    assert len(recorder.envelopes) == 2 and len(state.received) == 1
    with db.unit_of_work(sessions) as session:
        rows = notifications(session=session, page_id=1)
    assert {(r.target, r.channel) for r in rows if r.sent_at} == {
        ("U01ALICE", "dm"), ("U01ALICE", "email"), ("U01ALICE", "webhook"), ("oncall.email.to", "email")}


def test_a_failed_webhook_is_retried_after_its_backoff(
    sessions: db.SessionFactory, receiver: tuple[Receiver, str],  # noqa: F811
) -> None:
    state, url = receiver
    state.statuses = [503]
    settings = Settings(oncall=ONCALL)
    senders = Senders(webhook_url=url, webhook_secret=SECRET)
    page(sessions, settings)
    run(sessions, settings, senders, NOW)
    assert len(state.received) == 1
    run(sessions, settings, senders, NOW + timedelta(seconds=10))  # before the 30 s back-off: nothing
    assert len(state.received) == 1
    swept = run(sessions, settings, senders, NOW + timedelta(seconds=31))
    assert [o.claim.attempt for o in swept.outbound or []] == [2]
    assert len(state.received) == 2
    run(sessions, settings, senders, NOW + timedelta(minutes=5))
    assert len(state.received) == 2


def test_a_4xx_is_a_dead_letter_logged_once_and_counted(
    sessions: db.SessionFactory, receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    state, url = receiver
    state.statuses = [410]
    settings = Settings(oncall=ONCALL)
    senders = Senders(webhook_url=url, webhook_secret=SECRET)
    page(sessions, settings)
    caplog.set_level(logging.ERROR)
    run(sessions, settings, senders, NOW)
    run(sessions, settings, senders, NOW + timedelta(minutes=5))  # before step 2: nothing new is due
    assert len(state.received) == 1
    dead = [r.getMessage() for r in caplog.records if "set aside for good" in r.getMessage()]
    assert len(dead) == 1 and f"(webhook to U01ALICE, {_incident_id(sessions)})" in dead[0] and "HTTP 410" in dead[0]
    with db.unit_of_work(sessions) as session:
        assert paging.dead_notices(session) == 1


def _incident_id(sessions: db.SessionFactory) -> str:
    from sqlmodel import select

    from storage.models import Incident

    with db.unit_of_work(sessions) as session:
        return session.exec(select(Incident.id)).one()


def test_an_address_from_the_slack_profile(
    sessions: db.SessionFactory, smtp: tuple[Any, str, Any], fake_slack: FakeSlack
) -> None:
    recorder, smtp_url, context = smtp
    settings = Settings(oncall=ONCALL, slack_bot_token="xoxb-1", slack_api_url=fake_slack.url)
    emails = SlackEmails(make_client(settings))
    senders = Senders(smtp_url=smtp_url, email_from="bot@example.com", email_lookup=emails, tls_context=context)
    page(sessions, settings)
    run(sessions, settings, senders, NOW)
    assert [tuple(e.rcpt_tos) for e in recorder.envelopes] == [("1alice@example.com",)]
    assert emails("U01ALICE") == "1alice@example.com"
    assert len(fake_slack.calls("users.info")) == 1  # remembered


def test_a_webhook_whose_answer_was_lost_is_sent_again_with_the_same_idempotency_key(
    sessions: db.SessionFactory, receiver: tuple[Receiver, str],  # noqa: F811
) -> None:
    state, url = receiver
    state.statuses = [0]  # the relay takes the first call, but its answer never arrives
    settings = Settings(oncall=ONCALL)
    senders = Senders(webhook_url=url, webhook_secret=SECRET)
    page(sessions, settings)
    run(sessions, settings, senders, NOW)
    run(sessions, settings, senders, NOW + timedelta(seconds=31))
    assert len(state.received) == 2
    with db.unit_of_work(sessions) as session:
        (notice,) = [n for n in notifications(session=session, page_id=1) if n.channel == "webhook"]
    key = f"{_incident_id(sessions)}.page-{notice.id}"
    assert state.keys == [key, key]
    assert [body["idempotency_key"] for body in state.received] == [key, key]
    assert notice.sent_at is not None and notice.attempts == 2


def _crash_after_sending(sessions: db.SessionFactory, settings: Settings, senders: Senders) -> None:
    """The sweep claims at NOW and the sender sends, then dies before recording anything."""
    from bot.oncall.outbound import _send

    swept = paging.sweep(sessions, settings.oncall, now=NOW, worker="w1", channels=BOTH)
    for item in swept.outbound or []:
        assert _send(settings.oncall, item, senders, NOW)[0] == "sent"


def test_a_sender_that_died_between_sending_and_recording_repeats_the_call_with_the_same_key(
    sessions: db.SessionFactory, receiver: tuple[Receiver, str],  # noqa: F811
) -> None:
    from bot.oncall.service import DEFAULT_LEASE

    state, url = receiver
    settings = Settings(oncall=ONCALL)
    senders = Senders(webhook_url=url, webhook_secret=SECRET)
    page(sessions, settings)
    _crash_after_sending(sessions, settings, senders)
    # Another replica takes the notice over once the dead sender's lease has run out.
    swept = paging.sweep(sessions, settings.oncall, now=NOW + DEFAULT_LEASE + timedelta(seconds=1), worker="w2",
                         channels=BOTH)
    send_outbound(sessions, settings.oncall, swept.outbound or [], senders, now=NOW + DEFAULT_LEASE)
    to_alice = [k for k, body in zip(state.keys, state.received, strict=True) if body["step"] == 1]
    assert len(to_alice) == 2 and to_alice[0] == to_alice[1] and to_alice[0] is not None
    (webhook,) = [o.claim for o in swept.outbound or [] if o.claim.channel == "webhook"]
    assert webhook.attempt == 2 and to_alice[0] == f"{_incident_id(sessions)}.page-{webhook.id}"


def test_an_email_repeated_after_a_crash_has_the_same_message_id(
    sessions: db.SessionFactory, smtp: tuple[Any, str, Any],
) -> None:
    import email
    import email.policy

    from bot.oncall.service import DEFAULT_LEASE

    recorder, smtp_url, context = smtp
    settings = Settings(oncall=CONFIG)
    senders = Senders(smtp_url=smtp_url, email_from="bot@example.com", tls_context=context)
    page(sessions, settings)
    _crash_after_sending(sessions, settings, senders)
    later = NOW + DEFAULT_LEASE + timedelta(seconds=1)
    swept = paging.sweep(sessions, settings.oncall, now=later, worker="w2", channels=BOTH)
    emails = [item for item in swept.outbound or [] if item.claim.channel == "email"]
    assert len(emails) == 2  # Alice's e-mail and the list's, both taken over
    send_outbound(sessions, settings.oncall, emails, senders, now=later)
    received = [email.message_from_bytes(e.original_content, policy=email.policy.default) for e in recorder.envelopes]
    ids: dict[str, list[str]] = {}
    for message in received:
        ids.setdefault(str(message["To"]), []).append(str(message["Message-ID"]))
    incident_id = _incident_id(sessions)
    assert sorted(ids) == ["alice@example.com", "ops-oncall@example.com"]
    for to, (first, second) in ids.items():
        assert first == second and first.startswith(f"<{incident_id}.page-") and first.endswith("@example.com>"), to
    assert ids["alice@example.com"] != ids["ops-oncall@example.com"]
