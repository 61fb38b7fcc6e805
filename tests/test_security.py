"""Who may talk to the bot, how much they may send, and what its logs must never hold.

Each refusal is checked twice: the status code, and that nothing was stored or sent to Slack
(with a genuine request afterwards, so the checks are seen to notice an effect when there is one).
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import slack_requests as sr
from bot_harness import SECRET, TOKEN, Bot, declare_values, poll
from bot_process import bot_env, free_port, wait_healthy
from cli_process import start_cli
from fake_slack import FakeSlack
from fault_helpers import FAST, in_thread_of, pending
from sqlmodel import select

from bot.ids import Action, Callback
from bot.incidents import timeline
from bot.runtime import alert_route
from bot.runtime.http import MAX_BODY
from storage.db import unit_of_work
from storage.models import Incident, ProcessedEvent, TimelineEntry

ALERTMANAGER_TOKEN = "am-secret-7f3a9c1e5b"


# ---------------------------------------------------------------------- helpers


def stored(bot: Bot) -> tuple[list[tuple[str, Any]], int, int]:
    """(incident ids with their acknowledgement, timeline messages, processed event ids)."""
    with unit_of_work(bot.sessions) as session:
        incidents = [(i.id, i.acknowledged_at) for i in session.exec(select(Incident).order_by(Incident.id))]
        messages = len(session.exec(select(TimelineEntry).where(TimelineEntry.kind == "message")).all())
        events = len(session.exec(select(ProcessedEvent)).all())
    return incidents, messages, events


# Reads the bot's own jobs make whenever they run (start-up identity, the timeline backfill, the
# people-names job): not the effect of any request, so a test of "changes nothing" leaves them out.
BACKGROUND_READS = {"auth.test", "conversations.replies", "conversations.history", "users.info"}


def slack_calls(bot: Bot) -> list[str]:
    return [c.method for c in bot.fake.calls() if c.method not in BACKGROUND_READS]


def genuine_requests(incident: Incident, team_id: str = sr.DEFAULT_TEAM_ID) -> dict[str, sr.SignedRequest]:
    """One of each kind of Slack request, correctly signed, each with a visible effect."""
    assert incident.channel_id and incident.card_ts
    reply = sr.thread_reply(incident.channel_id, incident.card_ts, sr.new_ts(), "U0BOB", "genuine", team_id=team_id)
    return {
        "command": sr.slash_command("", secret=SECRET, team_id=team_id),
        "declare": sr.view_submission(
            Callback.DECLARE.value, declare_values("Genuine declaration", "P2"), secret=SECRET, team_id=team_id
        ),
        "action": sr.block_action(
            Action.ACKNOWLEDGE.value,
            value=incident.id,
            secret=SECRET,
            team_id=team_id,
            channel_id=incident.channel_id,
            message_ts=incident.card_ts,
        ),
        "event": sr.event(reply, secret=SECRET, team_id=team_id),
    }


def genuine_applied(bot: Bot, incident: Incident) -> bool:
    """Every effect of `genuine_requests`; the click and the event are handled after their acks."""
    incidents, messages, events = stored(bot)
    return len(incidents) == 2 and dict(incidents)[incident.id] is not None and (messages, events) == (1, 1)


def resigned(request: sr.SignedRequest, **headers: str) -> sr.SignedRequest:
    kept = {k: v for k, v in request.headers.items() if not k.startswith("X-Slack-")}
    return sr.SignedRequest(body=request.body, headers={**kept, **headers})


def forgeries(request: sr.SignedRequest) -> dict[str, sr.SignedRequest]:
    now = int(time.time())
    return {
        "wrong secret": resigned(request, **sr.sign(request.body, "not-the-signing-secret")),
        "replayed (10 min old)": resigned(request, **sr.sign(request.body, SECRET, now - 600)),
        "from the future (10 min)": resigned(request, **sr.sign(request.body, SECRET, now + 600)),
        "unsigned": resigned(request),
        "signature of another body": resigned(request, **sr.sign(request.body + b"&x=1", SECRET)),
        "timestamp swapped": resigned(
            request,
            **{**sr.sign(request.body, SECRET, now - 1), "X-Slack-Request-Timestamp": str(now)},
        ),
        "garbage signature": resigned(request, **{"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v0="}),
    }


@pytest.fixture
def incident(bot: Bot) -> Incident:
    declared = bot.declare("Existing incident", "P2")
    # The card's delivery ends with joining the channel, after the card's ts is on record: wait for
    # it, or a test's "no Slack calls" snapshot can be taken before the join lands.
    poll(lambda: "conversations.join" in [c.method for c in bot.fake.calls()], message="the bot to join the channel")
    return declared


# ---------------------------------------------------------------------- signatures


def test_forged_replayed_and_unsigned_requests_get_401_and_change_nothing(bot: Bot, incident: Incident) -> None:
    before, calls_before = stored(bot), slack_calls(bot)
    for kind, request in genuine_requests(incident).items():
        for how, forged in forgeries(request).items():
            status, body, _ = bot.send(forged)
            assert status == 401, (kind, how, status, body)
            assert b"Traceback" not in body
    time.sleep(0.5)  # anything wrongly accepted would be acted on in the background by now
    assert stored(bot) == before
    assert slack_calls(bot) == calls_before

    # The same requests, genuinely signed, do change things: the checks above can see an effect.
    for kind, request in genuine_requests(incident).items():
        assert bot.send(request)[0] == 200, kind

    poll(lambda: genuine_applied(bot, incident), message="the genuine requests applied")
    bot.fake.wait_for("views.open")


def test_bodies_over_one_mebibyte_get_413(bot: Bot) -> None:
    with socket.create_connection(("127.0.0.1", bot.service.port), timeout=5) as connection:
        head = (
            "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {MAX_BODY + 1}\r\n\r\n"
        )
        connection.sendall(head.encode())
        # The server answers from the declared length alone: it never reads (or buffers) the body.
        response = connection.recv(4096).decode("latin-1")
    assert response.startswith("HTTP/1.1 413"), response

    for length in ("-1", "lots"):
        with socket.create_connection(("127.0.0.1", bot.service.port), timeout=5) as connection:
            head = f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n"
            connection.sendall(head.encode())
            assert connection.recv(4096).startswith(b"HTTP/1.1 400"), length

    # A body really sent, signed and all, is refused as well, and the sender gets to read why.
    text = "x" * (MAX_BODY + 1)
    status, _, _ = send_big(bot, sr.slash_command(text, secret=SECRET))
    assert status == 413

    # Exactly at the limit is still read, and answered like any too-long title.
    fields = {"token": "t", "team_id": sr.DEFAULT_TEAM_ID, "user_id": "U0ALICE", "command": "/incident"}
    fields |= {"trigger_id": sr.new_trigger_id(), "response_url": bot.fake.response_url(), "text": ""}
    padding = MAX_BODY - len(urlencode(fields).encode())
    body = urlencode({**fields, "text": "y" * padding}).encode()
    assert len(body) == MAX_BODY
    at_limit = sr.SignedRequest(
        body=body, headers={"Content-Type": "application/x-www-form-urlencoded", **sr.sign(body, SECRET)}
    )
    status, answer, _ = bot.send(at_limit)
    assert status == 200 and "150" in json.loads(answer)["text"]
    assert bot.incidents() == []
    assert slack_calls(bot) == []


def send_big(bot: Bot, request: sr.SignedRequest) -> tuple[int, bytes, dict[str, str]]:
    """Post a body the server may refuse before reading; a reset after its answer still counts."""
    try:
        return bot.send(request)
    except OSError as exc:  # the answer came before the body was fully sent
        reason = getattr(exc, "reason", exc)
        raise AssertionError(f"no answer to an oversized body: {reason!r}") from exc


# ---------------------------------------------------------------------- workspaces


def test_requests_from_another_workspace_get_403_and_change_nothing(bot: Bot, incident: Incident) -> None:
    poll(lambda: bot.service.rt.identity.team_id == "T0TEAM", message="the bot to learn its workspace")
    before, calls_before = stored(bot), slack_calls(bot)
    for kind, request in genuine_requests(incident, team_id="T0OTHER").items():
        status, body, _ = bot.send(request)
        assert status == 403, (kind, status, body)
    time.sleep(0.5)
    assert stored(bot) == before
    assert slack_calls(bot) == calls_before
    # From our own workspace the same requests go through.
    for kind, request in genuine_requests(incident).items():
        assert bot.send(request)[0] == 200, kind
    poll(lambda: genuine_applied(bot, incident), message="the genuine requests applied")


# ---------------------------------------------------------------------- secrets in logs


def leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


SECRETS = {"bot token": TOKEN, "signing secret": SECRET, "alertmanager token": ALERTMANAGER_TOKEN}


def test_secrets_never_reach_the_logs(
    make_bot: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = make_bot(**FAST, alertmanager_token=ALERTMANAGER_TOKEN, log_level="DEBUG")
    fake = bot.fake
    other = bot.declare("Search slow", "P3")
    incident = bot.declare("Checkout down", "P0")  # escalates 2 s later

    # Slack failing in every way while work is queued.
    fake.fail("chat.postMessage", status=500, times=3)
    fake.fail("chat.update", status=429, times=1, retry_after=1)
    fake.fail("views.open", status=200, error="expired_trigger_id")
    bot.submit_declare("Queue backlog", "P2")
    bot.send_ok(sr.slash_command("", secret=SECRET))
    fake.refuse()
    bot.click(Action.ACKNOWLEDGE.value, other.id, user="U0BOB", card=other)
    bot.send_ok(sr.slash_command("list", secret=SECRET, response_url=fake.response_url()))
    time.sleep(1.0)
    fake.accept()

    # Bad signatures, and a handler that raises.
    bad = sr.slash_command("", secret="wrong")
    assert bot.send(bad)[0] == 401

    # A bug in a handler: the :pushpin: listener raises.
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("simulated bug in a listener")

    monkeypatch.setattr(timeline, "set_key_event", broken)
    assert other.channel_id and other.card_ts
    pin = sr.reaction_added(other.channel_id, other.card_ts, "U0BOB")
    assert bot.send(sr.event(pin, secret=SECRET))[0] == 200

    # The Alertmanager endpoint, with a wrong token, a malformed body and a good one.
    if any(path == alert_route.PATH for _, path in bot.service.server.routes):
        alert_url = bot.url + alert_route.PATH
        for token, body in ((f"{ALERTMANAGER_TOKEN}x", b"{}"), (ALERTMANAGER_TOKEN, b"{not json")):
            request = sr.SignedRequest(body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            assert sr.post(alert_url, request)[0] in (400, 401)

    escalated = in_thread_of(incident, "Escalated")
    fake.wait_for("chat.postMessage", where=lambda c: c.status == 200 and escalated(c), timeout=20)
    poll(lambda: pending(bot) == 0, 30, "the outbox to drain")

    records = caplog.records
    # The scenario really produced the failures whose logging is under test.
    assert any(r.levelno >= logging.WARNING and r.name.startswith("bot.slack.") for r in records)
    assert any(r.exc_info and "simulated bug" in str(r.exc_info[1]) for r in records), "no handler exception logged"
    assert any("signature" in r.getMessage().lower() for r in records)
    for record in records:
        texts = [record.getMessage()]
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            texts.append(record.exc_text)
        if record.stack_info:
            texts.append(record.stack_info)
        for text in texts:
            assert not leaks(text), (record.name, record.levelname, leaks(text), text[:500])


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_secrets_never_reach_the_stderr_of_the_running_bot(db_url: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    port = free_port()
    env = {**bot_env(db_url, fake_slack, port), "LOG_LEVEL": "DEBUG", "ALERTMANAGER_TOKEN": ALERTMANAGER_TOKEN}
    env |= {"RESPONSE_TARGETS": '{"P0": 1}', "ESCALATION_CONTACTS": '["U0ONCALL"]'}
    # Both processes (the front and its worker) ask auth.test at start-up, each with one retry.
    fake_slack.fail("auth.test", status=500, times=4)
    fake_slack.fail("chat.postMessage", status=500, times=2)
    # An answer that quotes the token back (a misbehaving proxy): only the redaction keeps it out.
    fake_slack.respond_with("views.open", {"ok": False, "error": "invalid_auth", "detail": f"token {TOKEN} rejected"})
    stderr = tmp_path / "stderr.log"
    process = start_cli(["run"], env=env, stderr=stderr)
    try:
        wait_healthy(port, process, stderr)
        url = f"http://127.0.0.1:{port}"
        assert sr.post(url + "/slack/events", sr.slash_command("", secret="wrong"))[0] == 401
        assert sr.post(url + "/slack/events", sr.slash_command("", secret=SECRET))[0] == 200
        declare = sr.view_submission(Callback.DECLARE.value, declare_values("Checkout down", "P0"), secret=SECRET)
        assert sr.post(url + "/slack/events", declare)[0] == 200
        for token in (f"{ALERTMANAGER_TOKEN}x", ALERTMANAGER_TOKEN):
            request = sr.SignedRequest(b"{", {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            assert sr.post(url + alert_route.PATH, request)[0] in (400, 401, 404)
        fake_slack.wait_for("chat.postMessage", where=lambda c: c.status == 200, timeout=15)
        fake_slack.refuse()
        time.sleep(1.5)  # the escalation comes due and cannot be delivered
        fake_slack.accept()
        fake_slack.wait_for("chat.postMessage", where=lambda c: "Escalated" in str(c.params.get("text")), timeout=20)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    text = stderr.read_text(errors="replace")
    # The failures were logged (this is the output under test) ...
    assert "auth.test failed" in text and "Slack call" in text and "DEBUG" in text, text[-3000:]
    # ... and no secret is in it.
    assert not leaks(text), [line for line in text.splitlines() if leaks(line)][:5]
