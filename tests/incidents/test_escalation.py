"""End to end: lapsed targets are escalated on time, exactly once, across failures, restarts and replicas."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bot_harness import SECRET, TOKEN, Bot, poll
from bot_process import free_port, start_bot, wait_healthy
from fake_slack import Call, FakeSlack
from sqlmodel import select

from bot.ids import Action
from bot.incidents import lifecycle as incidents
from storage.db import unit_of_work
from storage.models import Escalation, Incident, TimelineEntry

FAST = {
    "response_targets": {"P0": 2},
    "resolution_targets": {"P0": 30},
    "escalation_contacts": ["U0ONCALL", "S0SRE"],
    "escalation_check_interval": 0.5,
    "escalation_max_repeats": 0,
}


def escalated(call: Call) -> bool:
    return "Escalated" in str(call.params.get("text", ""))


def in_thread(incident: Incident) -> Callable[[Call], bool]:
    return lambda c: escalated(c) and c.params.get("thread_ts") == incident.card_ts


def cross_posts(call: Call) -> bool:
    return escalated(call) and call.params.get("channel") == "ops-alerts"


def escalations(bot: Bot) -> list[Escalation]:
    with unit_of_work(bot.sessions) as session:
        return list(session.exec(select(Escalation)))


def test_response_target_escalates_once_on_time(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**FAST)
    incident = bot.declare("Checkout down", "P0")
    deadline = incident.declared_at.timestamp() + 2
    reply = bot.fake.wait_for("chat.postMessage", where=in_thread(incident), timeout=10)[0]
    # On time: within ESCALATION_CHECK_INTERVAL + 2 s of the deadline.
    assert time.time() - deadline < 0.5 + 2
    text = reply.params["text"]
    assert "response target" in text and "missed by" in text
    assert "<@U0ONCALL>" in text and "<!subteam^S0SRE>" in text
    cross = bot.fake.wait_for("chat.postMessage", where=cross_posts)[0]
    assert (
        f"https://slack.com/archives/{incident.channel_id}/p{incident.card_ts.replace('.', '')}"
        in (cross.params["text"])
    )
    # The card shows the breach.
    poll(
        lambda: any("lapsed" in str(c.params.get("blocks")) for c in bot.fake.calls("chat.update")),
        message="card shows the lapsed target",
    )
    # Exactly once, even though the sweep keeps running.
    bot.fake.assert_no_more("chat.postMessage", 1, settle=2.0, where=in_thread(incident))
    [row] = escalations(bot)
    assert (row.kind, row.level, row.incident_id) == ("response", 0, incident.id)
    assert row.fired_at >= row.due_at and row.delivered_at is not None
    with unit_of_work(bot.sessions) as session:
        entries = session.exec(select(TimelineEntry).where(TimelineEntry.event == "escalated")).all()
    assert len(entries) == 1 and entries[0].data["kind"] == "response"


def test_no_escalation_after_acknowledgement(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**FAST)
    incident = bot.declare("Checkout down", "P0")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, card=incident)
    poll(
        lambda: any("Acknowledged" in str(c.params.get("text")) for c in bot.fake.calls("chat.postMessage")),
        message="ack announced",
    )
    time.sleep(3.0)  # past the 2 s response target, with several sweeps run
    assert [c for c in bot.fake.calls("chat.postMessage") if escalated(c)] == []
    assert escalations(bot) == []


def test_repeats_widen_to_later_levels(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(
        **{**FAST, "escalation_max_repeats": 1, "escalation_repeat": 1.5, "escalation_levels": [["U0LEAD"], ["U0VP"]]}
    )
    incident = bot.declare("Checkout down", "P0")
    first, second = bot.fake.wait_for("chat.postMessage", count=2, where=in_thread(incident), timeout=15)[:2]
    assert "<@U0LEAD>" in first.params["text"] and "<@U0VP>" not in first.params["text"]
    assert "again" in second.params["text"] and "<@U0VP>" in second.params["text"]
    bot.fake.assert_no_more("chat.postMessage", 2, settle=2.5, where=in_thread(incident))
    # The repeat is due one repeat (1.5 s) after the first was announced, and neither fires early.
    # (Not the gap between the two posts: a first post that waited on a busy machine narrows it.)
    first_row, repeat_row = sorted(escalations(bot), key=lambda row: row.level)
    assert (first_row.level, repeat_row.level) == (0, 1)
    assert (repeat_row.due_at - first_row.fired_at).total_seconds() >= 1.5 - 0.001
    assert first_row.fired_at >= first_row.due_at and repeat_row.fired_at >= repeat_row.due_at


def test_web_api_500_on_first_post_still_delivers_exactly_once(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**FAST)
    incident = bot.declare("Checkout down", "P0")
    # Every post fails for a while (the client's own retry included), then Slack recovers.
    bot.fake.fail("chat.postMessage", status=500, times=3)
    delivered = bot.fake.wait_for(
        "chat.postMessage", timeout=20, where=lambda c: in_thread(incident)(c) and c.status == 200
    )
    assert len(delivered) == 1
    failed = [c for c in bot.fake.calls("chat.postMessage") if in_thread(incident)(c) and c.status == 500]
    assert failed, "the first attempt should have hit the 500"
    bot.fake.assert_no_more(
        "chat.postMessage", 1, settle=2.5, where=lambda c: in_thread(incident)(c) and c.status == 200
    )
    [row] = escalations(bot)
    assert row.delivered_at is not None


def test_two_replicas_on_postgres_escalate_once(make_bot: Callable[..., Bot], db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas share one PostgreSQL database")
    first = make_bot(**{**FAST, "escalation_check_interval": 0.2})
    second = make_bot(**{**FAST, "escalation_check_interval": 0.2})
    incident = first.declare("Checkout down", "P0")
    assert second.service.port != first.service.port
    first.fake.wait_for("chat.postMessage", where=in_thread(incident), timeout=10)
    first.fake.assert_no_more("chat.postMessage", 1, settle=2.0, where=in_thread(incident))
    first.fake.assert_no_more("chat.postMessage", 1, settle=0.1, where=cross_posts)
    assert len(escalations(first)) == 1


# -- restart after SIGKILL -----------------------------------------------------------------------


@pytest.mark.slow
def test_escalation_survives_sigkill_and_restart(db_url: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    import slack_requests as sr
    from bot_harness import declare_values

    from bot.ids import Callback

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))},
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.url,
        "DATABASE_URL": db_url,
        "PORT": str(port),
        "RESPONSE_TARGETS": '{"P0": 3}',
        "RESOLUTION_TARGETS": '{"P0": 60}',
        "ESCALATION_CHECK_INTERVAL": "1",
        "ESCALATION_MAX_REPEATS": "0",
        "DIGEST_CRON": "",
        "MONTHLY_DIGEST_CRON": "",
        "QUARTERLY_DIGEST_CRON": "",
    }
    log = tmp_path / "bot.log"
    process = start_bot(env, log)
    try:
        wait_healthy(port, process, log)
        request = sr.view_submission(Callback.DECLARE.value, declare_values("Checkout down", "P0"), secret=SECRET)
        status, body, _ = sr.post(f"http://127.0.0.1:{port}/slack/events", request)
        assert status == 200, body
        fake_slack.wait_for("chat.postMessage", timeout=10)
        # Kill once the card's ts is stored: a kill between Slack's answer and that commit is a
        # different story (the claim's lease), not this test's.
        from storage.db import create_db_engine, session_factory

        engine = create_db_engine(db_url)
        poll(lambda: _card_stored(session_factory(engine)), message="card ts stored")
        engine.dispose()
        process.send_signal(signal.SIGKILL)  # no goodbye: the deadline passes while it is dead
        process.wait(10)
        time.sleep(3.5)
        assert not any(escalated(c) for c in fake_slack.calls("chat.postMessage"))
        restarted_at = time.monotonic()
        process = start_bot(env, log)
        wait_healthy(port, process, log)
        try:
            posts = fake_slack.wait_for("chat.postMessage", timeout=15, where=escalated)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- bot log ---\n{log.read_text()}") from None
        # Within one interval of start-up (plus process start), once, in the card's thread.
        assert posts[0].at - restarted_at < 15
        fake_slack.assert_no_more("chat.postMessage", 2, settle=2.5, where=escalated)  # thread + alert channel
        assert sum(1 for c in fake_slack.calls("chat.postMessage") if escalated(c) and c.params.get("thread_ts")) == 1
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                assert process.wait(15) == 0
            except subprocess.TimeoutExpired:
                process.kill()


def _card_stored(sessions: Any) -> bool:
    with unit_of_work(sessions) as session:
        return any(i.card_ts for i in session.exec(select(Incident)))


def test_sweep_looks_only_at_due_incidents(sessions: Any) -> None:
    """The sweep's query is one range scan on next_check_at, whatever the closed history holds."""
    from datetime import timedelta

    from bot.incidents import escalation
    from bot.incidents.forms import DeclareForm
    from bot.settings import Settings
    from storage.models import utcnow

    settings = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s")
    now = utcnow()
    with unit_of_work(sessions) as session:
        due = incidents.declare(
            session,
            DeclareForm(title="due", severity="P0"),
            declared_by="U1",
            policy=settings.policy(),
            now=now - timedelta(minutes=6),
        )
        fresh = incidents.declare(
            session, DeclareForm(title="fresh", severity="P3"), declared_by="U1", policy=settings.policy(), now=now
        )
    with unit_of_work(sessions) as session:
        assert escalation.due_incident_ids(session, now) == [due.id]
        assert fresh.next_check_at is not None and fresh.next_check_at > now
    claimed = escalation.sweep(sessions, settings, now=now)
    assert [(c.incident_id, c.kind) for c in claimed] == [(due.id, "response"), (due.id, "resolution")] or [
        (c.incident_id, c.kind) for c in claimed
    ] == [(due.id, "response")]
    assert escalation.sweep(sessions, settings, now=now) == []  # claimed once only


def test_concurrent_sweepers_claim_each_escalation_once(sessions: Any, db_url: str) -> None:
    """Several sweepers racing over the same due incidents (replicas): every escalation is won once."""
    import threading
    from datetime import timedelta

    from bot.incidents import escalation
    from bot.incidents.forms import DeclareForm
    from bot.incidents.outbox import OutboxKind
    from bot.settings import Settings
    from storage.models import Outbox, utcnow

    settings = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s", escalation_max_repeats=0)
    now = utcnow()
    with unit_of_work(sessions) as session:
        for n in range(20):
            incidents.declare(
                session,
                DeclareForm(title=f"due {n}", severity="P0"),
                declared_by="U1",
                policy=settings.policy(),
                now=now - timedelta(minutes=6),
            )
    for _round in range(3):
        barrier = threading.Barrier(4)
        results: list[list[escalation.Claimed]] = []
        errors: list[BaseException] = []

        def sweeper(
            barrier: threading.Barrier = barrier,
            results: list[list[escalation.Claimed]] = results,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait()
                results.append(escalation.sweep(sessions, settings, now=now))
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=sweeper) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        won = [(c.incident_id, c.kind, c.level) for claimed in results for c in claimed]
        assert len(won) == len(set(won))  # nobody won anything twice
        if _round == 0:
            assert len(won) == 20  # one response escalation per due incident, by whoever won it
        else:
            assert won == []
    with unit_of_work(sessions) as session:
        rows = session.exec(select(Escalation)).all()
        replies = [
            o
            for o in session.exec(select(Outbox)).all()
            if o.kind == OutboxKind.THREAD_REPLY.value and "escalation_id" in o.payload
        ]
    assert len(rows) == 20 and len(replies) == 20


def test_a_severity_raise_committed_mid_sweep_is_not_overwritten(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep must not write next_check_at from a copy read before a concurrent change committed."""
    import threading
    from datetime import timedelta

    from bot.incidents import escalation
    from bot.incidents.forms import DeclareForm
    from bot.settings import Settings
    from storage.models import utcnow

    settings = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s")
    now = utcnow()
    with unit_of_work(sessions) as session:
        p2 = incidents.declare(
            session,
            DeclareForm(title="slow search", severity="P2"),
            declared_by="U1",
            policy=settings.policy(),
            now=now - timedelta(minutes=61),  # its P2 response target just lapsed: the sweep reads it
        )

    def raise_to_p0() -> None:
        with unit_of_work(sessions) as session:
            incidents.change_severity(session, p2.id, "P0", user="U2", policy=settings.policy(), now=now)

    real = escalation._fired_by_incident
    raiser = threading.Thread(target=raise_to_p0)

    def read_then_let_the_raise_commit(session: Any, incident_ids: list[str]) -> Any:
        if not raiser.is_alive() and raiser.ident is None:
            raiser.start()
            raiser.join(0.7)  # commits now, unless the sweep's lock makes it wait for the sweep
        return real(session, incident_ids)

    monkeypatch.setattr(escalation, "_fired_by_incident", read_then_let_the_raise_commit)
    escalation.sweep(sessions, settings, now=now)
    raiser.join(10)
    with unit_of_work(sessions) as session:
        incident = session.get(Incident, p2.id)
        assert incident is not None and incident.severity == "P0"
        # P0's targets (5 and 10 minutes) lapsed long ago: it is due now, not in 59 minutes.
        assert incident.next_check_at is not None and incident.next_check_at <= now + timedelta(minutes=1)


def test_an_idle_acknowledged_p0_is_nudged_at_most_max_repeats_plus_one_times(sessions: Any) -> None:
    """Through the sweep and the database: three nudges per quiet spell, none once Mitigated."""
    from datetime import UTC, datetime, timedelta

    from bot.incidents import escalation
    from bot.incidents.forms import DeclareForm
    from bot.settings import Settings
    from storage.models import SystemEvent

    settings = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s")  # MAX_REPEATS 2, P0 nudge 30 min
    policy = settings.policy()
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with unit_of_work(sessions) as session:
        idle = incidents.declare(
            session, DeclareForm(title="idle", severity="P0"), declared_by="U1", policy=policy, now=t0
        )
        calm = incidents.declare(
            session, DeclareForm(title="calm", severity="P0"), declared_by="U1", policy=policy, now=t0
        )
    with unit_of_work(sessions) as session:
        incidents.acknowledge(session, idle.id, user="U1", policy=policy, now=t0 + timedelta(minutes=1))
        incidents.acknowledge(session, calm.id, user="U1", policy=policy, now=t0 + timedelta(minutes=1))
    with unit_of_work(sessions) as session:
        incidents.mitigate(session, calm.id, user="U1", policy=policy, now=t0 + timedelta(minutes=2))

    def sweep_until(end: datetime) -> None:
        # Every sweep the scheduler would run, taken at the moments the incidents ask to be looked at.
        while True:
            with unit_of_work(sessions) as session:
                due = [i.next_check_at for i in session.exec(select(Incident)) if i.next_check_at is not None]
            if not due or min(due) > end:
                return
            escalation.sweep(sessions, settings, now=min(due))

    def nudges(incident_id: str) -> list[TimelineEntry]:
        with unit_of_work(sessions) as session:
            statement = select(TimelineEntry).where(
                TimelineEntry.incident_id == incident_id, TimelineEntry.event == SystemEvent.NUDGED.value
            )
            return list(session.exec(statement.order_by(TimelineEntry.id)))  # type: ignore[arg-type]

    sweep_until(t0 + timedelta(hours=8))
    assert [e.occurred_at - t0 for e in nudges(idle.id)] == [timedelta(minutes=m) for m in (31, 61, 91)]
    assert "for 1h 30m" in nudges(idle.id)[-1].text  # counted from the start of the quiet spell
    assert nudges(calm.id) == []
    # A severity change is activity in the thread: a new spell, and nudges again.
    with unit_of_work(sessions) as session:
        incidents.change_severity(session, idle.id, "P1", user="U1", policy=policy, now=t0 + timedelta(hours=8))
    sweep_until(t0 + timedelta(hours=16))
    assert len(nudges(idle.id)) == 6


def test_an_acknowledgement_committed_mid_sweep_is_not_announced_as_missing(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An escalation saying "no acknowledgement yet" may only be claimed before the acknowledgement."""
    import threading
    from datetime import timedelta

    from bot.incidents import escalation
    from bot.incidents.forms import DeclareForm
    from bot.settings import Settings
    from storage.models import utcnow

    settings = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s")
    now = utcnow()
    with unit_of_work(sessions) as session:
        p0 = incidents.declare(
            session,
            DeclareForm(title="checkout down", severity="P0"),
            declared_by="U1",
            policy=settings.policy(),
            now=now - timedelta(minutes=6),  # its response target lapsed a minute ago
        )
    acked_mid_sweep = threading.Event()

    def acknowledge() -> None:
        with unit_of_work(sessions) as session:
            incidents.acknowledge(session, p0.id, user="U2", policy=settings.policy(), now=now)
        acked_mid_sweep.set()

    real = escalation._fired_by_incident
    acker = threading.Thread(target=acknowledge)

    def read_then_let_the_ack_commit(session: Any, incident_ids: list[str]) -> Any:
        if acker.ident is None:
            acker.start()
            acker.join(0.7)  # commits now, unless the sweep's lock makes it wait for the sweep
        return real(session, incident_ids)

    monkeypatch.setattr(escalation, "_fired_by_incident", read_then_let_the_ack_commit)
    claimed = escalation.sweep(sessions, settings, now=now)
    committed_during_sweep = acked_mid_sweep.is_set()
    acker.join(10)
    assert acked_mid_sweep.is_set()  # the acknowledgement went through, after the sweep
    response = [c for c in claimed if c.kind == "response"]
    # Announcing the lapse is right only if the sweep owned the row while it decided.
    assert not (committed_during_sweep and response), "announced a missing acknowledgement that had committed"
    with unit_of_work(sessions) as session:
        incident = session.get(Incident, p0.id)
        assert incident is not None and incident.acknowledged_at == now
