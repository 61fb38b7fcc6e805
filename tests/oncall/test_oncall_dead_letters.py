"""Page notices set aside for good: listed by `incident-bot outbox` as page-N, queued again by
`outbox retry`, shown to the commander in App Home, counted in /healthz?detail=1."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from bot_harness import Bot, poll
from oncall_bot import ONCALL, open_dms
from sqlmodel import select
from test_oncall_outbound import page, run
from test_oncall_webhook import NOW, SECRET, Receiver, receiver  # noqa: F401  (the receiver fixture)

from bot.cli import main
from bot.incidents import lifecycle as incidents
from bot.incidents.outbox import OutboxKind, enqueue
from bot.oncall import dead_letters, paging
from bot.oncall.outbound import Senders
from bot.settings import Settings
from storage import db
from storage.models import Incident, Outbox, utcnow
from storage.oncall import PageNotification


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    return db_url


def _refused(sessions: db.SessionFactory, state: Receiver, url: str) -> tuple[Settings, Senders, str, int]:
    """A P0 paged at NOW whose webhook to Alice the relay refused with a 410."""
    state.statuses = [410]
    settings = Settings(oncall=ONCALL)
    senders = Senders(webhook_url=url, webhook_secret=SECRET)
    page(sessions, settings)
    run(sessions, settings, senders, NOW)
    with db.unit_of_work(sessions) as session:
        incident_id = session.exec(select(Incident.id)).one()
        (notice,) = session.exec(select(PageNotification).where(PageNotification.dead_at.is_not(None)))  # type: ignore[union-attr]
        assert notice.id is not None
        return settings, senders, incident_id, notice.id


def _to_alice(state: Receiver) -> int:
    return sum(1 for body in state.received if body["person"]["user_id"] == "U01ALICE")


def test_a_refused_webhook_is_listed_as_page_n_and_sent_again_after_retry(
    cli_db: str, sessions: db.SessionFactory, receiver: tuple[Receiver, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = receiver
    settings, senders, incident_id, notice_id = _refused(sessions, state, url)
    assert main(["outbox"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    label, kind, incident, when, reason = line.split("\t")
    assert (label, kind, incident) == (f"page-{notice_id}", "page_webhook", incident_id)
    assert when == NOW.strftime("%Y-%m-%d %H:%M UTC")
    assert reason == "webhook to U01ALICE: HTTP 410"
    # Queued again: the next sweep sends it (the relay takes it this time), and it is gone from the list.
    assert main(["outbox", "retry", f"page-{notice_id}"]) == 0
    assert "queued 1 dead letter again" in capsys.readouterr().out
    with db.unit_of_work(sessions) as session:
        again = session.get(PageNotification, notice_id)
        assert again is not None and again.dead_at is None and again.attempts == 0 and again.sent_at is None
        assert paging.dead_notices(session) == 0
    swept = run(sessions, settings, senders, utcnow() + timedelta(seconds=1))
    assert [o.claim.id for o in swept.outbound or [] if o.claim.target == "U01ALICE"] == [notice_id]
    assert _to_alice(state) == 2
    with db.unit_of_work(sessions) as session:
        sent = session.get(PageNotification, notice_id)
        assert sent is not None and sent.sent_at is not None and sent.attempts == 1
    assert main(["outbox"]) == 0
    assert capsys.readouterr().out.strip() == "no dead letters"


def test_retry_without_ids_takes_slack_calls_and_page_notices_and_ids_never_collide(
    cli_db: str, sessions: db.SessionFactory, receiver: tuple[Receiver, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = receiver
    _settings, _senders, _incident_id, notice_id = _refused(sessions, state, url)
    with db.unit_of_work(sessions) as session:
        # A dead Slack call whose outbox id is the notice's number: `retry N` means the Slack call.
        while True:
            enqueue(session, OutboxKind.CHANNEL_POST, payload={"text": "x", "channel": "C0ALERTS"})
            session.flush()
            row = session.exec(select(Outbox).order_by(Outbox.id.desc())).first()  # type: ignore[union-attr]
            assert row is not None and row.id is not None
            if row.id >= notice_id:
                break
        row.dead_at, row.last_error = utcnow(), "HTTP 200 channel_not_found"
        session.add(row)
        outbox_id = row.id
    assert main(["outbox", "retry", str(outbox_id)]) == 0
    assert "queued 1 dead letter again" in capsys.readouterr().out
    with db.unit_of_work(sessions) as session:
        assert paging.dead_notices(session) == 1  # the page notice stayed dead
        row = session.get(Outbox, outbox_id)
        assert row is not None and row.dead_at is None
        row.dead_at = utcnow()
        session.add(row)
    assert main(["outbox", "retry"]) == 0
    assert "queued 2 dead letters again" in capsys.readouterr().out
    assert main(["outbox"]) == 0
    assert capsys.readouterr().out.strip() == "no dead letters"


def test_a_notice_of_an_acknowledged_page_is_listed_but_not_queued(
    cli_db: str, sessions: db.SessionFactory, receiver: tuple[Receiver, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = receiver
    settings, _senders, incident_id, notice_id = _refused(sessions, state, url)
    with db.unit_of_work(sessions) as session:
        incidents.acknowledge(session, incident_id, user="U01ALICE", policy=settings.policy(),
                              now=NOW + timedelta(minutes=1))
    assert main(["outbox"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("HTTP 410 (page acknowledged: not sent again)")
    assert main(["outbox", "retry", f"PAGE-{notice_id}"]) == 0
    out = capsys.readouterr().out
    assert "queued 0 dead letters again" in out
    assert f"page-{notice_id}: not queued, its page was acknowledged" in out
    with db.unit_of_work(sessions) as session:
        assert [n.id for n in dead_letters.dead_notices(session)] == [notice_id]


@pytest.mark.parametrize("bad", ["page-x", "page-0", "-3", "p12"])
def test_an_id_that_is_neither_is_one_line_and_exit_2(
    cli_db: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["outbox", "retry", "1", bad]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "page-N" in error and repr(bad) in error


def test_end_to_end_health_app_home_and_cli(
    make_bot: Callable[..., Bot], receiver: tuple[Receiver, str], db_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.slack.listeners.home import home_view

    state, url = receiver
    state.statuses = [410]
    bot = make_bot(oncall=ONCALL, page_webhook_url=url, page_webhook_secret="whsec-" + "0" * 32)
    open_dms(bot.fake)
    incident = bot.declare("Checkout is down", "P0", commander="U0CMDR")
    poll(lambda: _to_alice(state) == 1, message="the webhook call")

    def detail() -> dict[str, Any]:
        status, body = bot.get("/healthz?detail=1")
        assert status == 200
        return dict(json.loads(body))

    poll(lambda: detail()["page_dead_letters"] == 1, message="the dead letter counted")
    view = json.dumps(home_view(bot.service.rt, utcnow(), "U0CMDR"))
    assert "page notice(s) of your incidents could not be delivered" in view
    assert incident.id in view and "webhook to U01ALICE: HTTP 410" in view and "page-" in view
    assert "HTTP 410" not in json.dumps(home_view(bot.service.rt, utcnow(), "U0SOMEONE"))

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["outbox"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("page-") and incident.id in line
    assert main(["outbox", "retry"]) == 0
    assert "queued 1 dead letter again" in capsys.readouterr().out
    poll(lambda: _to_alice(state) == 2, timeout=15, message="the webhook sent again by the running bot")
    poll(lambda: detail()["page_dead_letters"] == 0, message="no dead letter left")
    assert "HTTP 410" not in json.dumps(home_view(bot.service.rt, utcnow(), "U0CMDR"))
