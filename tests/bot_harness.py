"""Runs the real bot (bot.service.Service) on loopback against the fake Slack Web API."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import slack_requests as sr
from fake_slack import FakeSlack

from bot.ids import Block, Callback
from bot.runtime import http as bot_http
from bot.runtime.intake import request_key
from bot.runtime.service import Service
from bot.settings import Settings
from bot.slack import delivery
from storage import db, inbox
from storage.models import Incident, utcnow

SECRET = "3f2b8c1d9e7a4b6c5d0e1f2a3b4c5d6e"  # the shape of a real one: 32 lowercase hex
TOKEN = "xoxb-test-token-0000"


def settings_for(db_url: str, fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake.url,
        "database_url": db_url,
        "host": "127.0.0.1",
        "port": 0,
        "escalation_check_interval": 0.5,
        "digest_cron": "",
        "monthly_digest_cron": "",
        "quarterly_digest_cron": "",
        # One process, so tests can reach the scheduler and the deliverer; tests/test_worker_process.py
        # and the subprocess tests (tests/bot_process.py) run the default two-process layout.
        "worker_process": False,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Bot:
    service: Service
    fake: FakeSlack
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.port}"

    _engine: Any = field(default=None, repr=False)

    @property
    def sessions(self) -> db.SessionFactory:
        """The test's own way into the bot's database, with the default 30 s wait for locks.

        Not the front's engine: it waits at most 2 s (the ack path's budget), and on a loaded
        machine a read of the test's could time out behind one slow write of the bot's own.
        """
        if self._engine is None:
            self._engine = db.create_db_engine(self.service.settings.database_url)
        return db.session_factory(self._engine)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.service.stop()
        if self._engine is not None:
            self._engine.dispose()

    def send(self, request: sr.SignedRequest) -> tuple[int, bytes, dict[str, str]]:
        return sr.post(self.url + "/slack/events", request)

    def send_ok(self, request: sr.SignedRequest) -> dict[str, Any]:
        status, body, _ = self.send(request)
        assert status == 200, (status, body)
        return json.loads(body) if body.strip() else {}

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    # -- scenario steps -------------------------------------------------------------------------

    def submit_declare(
        self, title: str = "API returns 502s", severity: str = "P1", *, user: str = "U0ALICE", **fields: Any
    ) -> dict[str, Any]:
        values = declare_values(title=title, severity=severity, **fields)
        return self.send_ok(sr.view_submission(Callback.DECLARE.value, values, secret=SECRET, user_id=user))

    def declare(self, title: str = "API returns 502s", severity: str = "P1", **fields: Any) -> Incident:
        """Declare through the modal and wait for the card; returns the stored incident."""
        before = len(self.fake.calls("chat.postMessage"))
        answer = self.submit_declare(title, severity, **fields)
        assert answer == {} or "errors" not in answer, answer
        self.fake.wait_for("chat.postMessage", count=before + 1)
        return self.wait_incident(lambda i: i.title == " ".join(title.split()) and i.card_ts is not None)

    def incidents(self) -> list[Incident]:
        with db.unit_of_work(self.sessions) as session:
            from sqlmodel import select

            return list(session.exec(select(Incident).order_by(Incident.id)))

    def wait_incident(self, predicate: Callable[[Incident], bool], timeout: float = 10) -> Incident:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for incident in self.incidents():
                if predicate(incident):
                    return incident
            time.sleep(0.05)
        raise AssertionError(f"no incident matched; have {[i.id for i in self.incidents()]}")

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0ALICE",
        card: Incident | None = None,
        selected: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"secret": SECRET, "user_id": user}
        if card is not None and card.card_ts:
            kwargs.update(channel_id=card.channel_id, message_ts=card.card_ts)
        if selected is not None:
            kwargs["selected_option"] = selected
        else:
            kwargs["value"] = value
        self.send_ok(sr.block_action(action_id, **kwargs))

    def reply(self, incident: Incident, ts: str, text: str, *, user: str = "U0BOB", **kwargs: Any) -> None:
        assert incident.channel_id and incident.card_ts
        event = sr.thread_reply(incident.channel_id, incident.card_ts, ts, user, text)
        self.send_ok(sr.event(event, secret=SECRET, **kwargs))


def declare_values(title: str = "API returns 502s", severity: str | None = "P1", **fields: Any) -> dict[str, Any]:
    def block(name: Block, element: dict[str, Any]) -> dict[str, Any]:
        return {name.value: {name.value + "_input": element}}

    values: dict[str, Any] = {}
    values |= block(Block.TITLE, sr.plain(title))
    values |= block(Block.SEVERITY, sr.select(severity))
    values |= block(Block.AFFECTED, sr.plain(fields.get("affected")))
    values |= block(Block.AFFECTED_USERS, sr.number(fields.get("affected_users")))
    values |= block(Block.DETECTION, sr.plain(fields.get("detection")))
    values |= block(Block.CATEGORY, sr.select(fields.get("category")))
    values |= block(Block.COMMANDER, sr.user(fields.get("commander")))
    return values


def poll(predicate: Callable[[], Any], timeout: float = 10, message: str = "condition") -> Any:
    """Wait for the bot's background work (not for a deadline: those are frozen in unit tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


# In-process bots retry a failed Slack call after 0.5 s, 1 s, 2 s … instead of 2 s, 4 s, 8 s: the
# tests wait for retries (a 500, a 429, an outage) and assert on what was sent, never on how long
# the wait was (tests/slack/test_outbox_delivery.py holds the real curve). Spawned workers and bot
# processes keep the real one.
TEST_FIRST_RETRY = timedelta(seconds=0.5)


@pytest.fixture
def make_bot(db_url: str, fake_slack: FakeSlack) -> Iterator[Callable[..., Bot]]:
    with mock.patch.object(delivery, "FIRST_RETRY", TEST_FIRST_RETRY):
        yield from _make_bot(db_url, fake_slack)


def _make_bot(db_url: str, fake_slack: FakeSlack) -> Iterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(**overrides: Any) -> Bot:
        service = Service(settings_for(overrides.pop("database_url", db_url), fake_slack, **overrides)).start()
        bot = Bot(service=service, fake=fake_slack)
        bots.append(bot)
        return bot

    yield make
    # The test is over: no request can still be on its way, so the server's drain grace (0.3 s
    # that lets a kept-alive request in flight at a SIGTERM finish) is skipped; a bot the test
    # stops itself (bot.stop()) keeps it, as do the bot processes.
    with mock.patch.object(bot_http, "DRAIN_GRACE", 0):
        for bot in bots:
            bot.stop()


@pytest.fixture
def bot(make_bot: Callable[..., Bot]) -> Bot:
    return make_bot()


def store_in_inbox(engine: Any, *requests: sr.SignedRequest) -> None:
    """Put signed requests into the inbox as the front stores them after its ack (each one new)."""
    with engine.begin() as connection:
        for request in requests:
            key = request_key(request.payload)
            assert key is not None
            assert inbox.record(
                connection,
                key=key,
                mode="http",
                body=request.text,
                headers={"content-type": request.headers["Content-Type"]},
                now=utcnow(),
            )
