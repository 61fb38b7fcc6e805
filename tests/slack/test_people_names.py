"""users.info fills the names of unknown ids: a bounded number per run, and a 429 holds it back."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import slack_requests as sr
from bot_harness import SECRET, Bot, poll
from fake_slack import FakeSlack
from incident_rows import incident, store
from slack_sdk import WebClient

from bot.incidents import people
from bot.slack.people import PeopleFiller
from storage.db import SessionFactory, unit_of_work

NOW = datetime.now(UTC).replace(microsecond=0)


def history(sessions: SessionFactory, *ids: str) -> None:
    store(sessions, *(incident(NOW, declared_by=user_id) for user_id in ids))


def known(sessions: SessionFactory, *ids: str) -> dict[str, str]:
    with unit_of_work(sessions) as session:
        return people.names(session, ids)


def test_a_run_asks_for_a_bounded_number_of_unknown_ids(sessions: SessionFactory) -> None:
    history(sessions, "U0ALICE", "U0BOB", "U0CAROL")
    users = {"U0BOB": {"profile": {"display_name": "", "real_name": "Bob Builder"}}}
    with FakeSlack(users=users) as fake:
        client = WebClient(token="xoxb-test", base_url=fake.url)
        filler = PeopleFiller(per_run=2)
        assert filler.run(sessions, client) == 2
        assert [c.params["user"] for c in fake.calls("users.info")] == ["U0ALICE", "U0BOB"]
        assert filler.run(sessions, client) == 1
        assert filler.run(sessions, client) == 0  # everyone known: no call at all
        assert len(fake.calls("users.info")) == 3
    assert known(sessions, "U0ALICE", "U0BOB", "U0CAROL") == {
        "U0ALICE": "alice",
        "U0BOB": "Bob Builder",
        "U0CAROL": "carol",
    }


def test_a_429_ends_the_run_and_the_next_waits_out_retry_after(sessions: SessionFactory) -> None:
    history(sessions, "U0ALICE", "U0BOB")
    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.url)
        filler = PeopleFiller()
        fake.fail("users.info", status=429, retry_after=30)
        assert filler.run(sessions, client) == 0
        assert len(fake.calls("users.info")) == 1  # stopped at the first 429
        assert filler.run(sessions, client) == 0
        assert len(fake.calls("users.info")) == 1  # still inside Retry-After: not asked again
        filler.resume_at = time.monotonic()  # Retry-After over
        assert filler.run(sessions, client) == 2


def test_an_unknown_user_is_remembered_without_a_name_and_not_asked_again(sessions: SessionFactory) -> None:
    history(sessions, "U0GONE")
    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.url)
        filler = PeopleFiller()
        fake.fail("users.info", status=200, error="user_not_found")
        assert filler.run(sessions, client) == 1
        assert filler.run(sessions, client) == 0
        assert len(fake.calls("users.info")) == 1
    assert known(sessions, "U0GONE") == {}


def test_a_thread_replys_user_profile_names_its_author(bot: Bot) -> None:
    incident = bot.declare("Checkout down", "P1")
    assert incident.channel_id and incident.card_ts
    event = sr.thread_reply(incident.channel_id, incident.card_ts, sr.new_ts(), "U0ERIN", "on it")
    event["user_profile"] = {"display_name": "Erin (payload)", "real_name": "Erin Example", "name": "erin"}
    bot.send_ok(sr.event(event, secret=SECRET))
    poll(lambda: known(bot.sessions, "U0ERIN") == {"U0ERIN": "Erin (payload)"}, message="the payload's name stored")
    assert not [c for c in bot.fake.calls("users.info") if c.params.get("user") == "U0ERIN"]
