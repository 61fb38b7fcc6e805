"""Exactly once across replicas and restarts: two bots on one PostgreSQL database, and kill -9 mid-page."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import slack_requests as sr
import yaml
from bot_harness import SECRET, Bot, declare_values, poll
from bot_process import bot_env, child_pids, free_port, start_bot, wait_healthy
from fake_slack import FakeSlack
from oncall_bot import ONCALL, dms_to, notices, open_dms, pages, thread_texts, wait_dm
from sqlmodel import select

from bot.ids import Callback
from bot.incidents.outbox import pending_count
from bot.runtime.oncall_jobs import paging_pass
from bot.slack.leases import LEASE
from storage import db
from storage.models import Incident
from storage.oncall import Page


def test_two_replicas_on_postgresql_send_every_notice_once(db_url: str, make_bot: Callable[..., Bot]) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas race on PostgreSQL; SQLite has one writer at a time")
    first, second = make_bot(oncall=ONCALL), make_bot(oncall=ONCALL)  # one database, two bots
    open_dms(first.fake)
    incident = first.declare("Checkout is down", "P0")
    wait_dm(first.fake, "U01ALICE")
    (page,) = pages(first, incident.id)
    rts = [b.service.background.rt for b in (first, second) if b.service.background is not None]
    for minutes in (10, 20, 20, 25):
        # Both replicas sweep the same instant at once, as their schedulers would.
        now = page.started_at + timedelta(minutes=minutes)
        start = threading.Barrier(len(rts))

        def sweep(rt: object, now: object = now, start: threading.Barrier = start) -> None:
            start.wait()
            paging_pass(rt, now=now)  # type: ignore[arg-type]

        threads = [threading.Thread(target=sweep, args=(rt,)) for rt in rts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    poll(lambda: any("<!subteam^S0SRE>" in t for t in thread_texts(first.fake, incident.card_ts or "")))
    poll(lambda: _drained(first.sessions), message="the outbox drained")
    assert len(dms_to(first.fake, "U01ALICE")) == 1
    assert len(dms_to(first.fake, "U0LEAD")) == 1
    assert sum("<!subteam^S0SRE>" in t for t in thread_texts(first.fake, incident.card_ts or "")) == 1
    assert sorted(notices(first, page.id or 0)) == [
        (0, 0, "U01ALICE", "dm"), (0, 1, "U0LEAD", "dm"), (0, 2, "S0SRE", "mention")
    ]


# Real seconds, for a real process: the second step falls due a few seconds after the first.
FAST = {**ONCALL, "policies": {"default": {"steps": [
    {"after": "PT0S", "notify": ["schedule:primary"]},
    {"after": "PT6S", "notify": ["U0LEAD"]},
]}}}


def _drained(sessions: db.SessionFactory) -> bool:
    # A transaction per look: on SQLite (BEGIN at the first read) one transaction sees one snapshot.
    with db.unit_of_work(sessions) as session:
        return pending_count(session) == 0


@pytest.fixture
def fake_slack(recent_slack: FakeSlack) -> FakeSlack:
    return recent_slack  # ts from the real clock, as Slack's: a killed sender's DM is looked for since its row


@pytest.mark.slow
def test_kill_9_during_a_page_resumes_after_restart_with_nothing_doubled(
    db_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"oncall": json.loads(json.dumps(FAST))}))
    open_dms(fake_slack)
    port = free_port()
    env = {**bot_env(db_url, fake_slack, port), "CONFIG_FILE": str(config)}
    log = tmp_path / "bot.log"
    process = start_bot(env, log)
    try:
        wait_healthy(port, process, log)
        request = sr.view_submission(Callback.DECLARE.value, declare_values("Checkout is down", "P0"), secret=SECRET)
        status, _, _ = sr.post(f"http://127.0.0.1:{port}/slack/events", request)
        assert status == 200
        wait_dm(fake_slack, "U01ALICE")
        for pid in [*child_pids(process.pid), process.pid]:  # the worker process too: nothing survives
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(10)
        process = start_bot(env, log)
        wait_healthy(port, process, log)
        poll(lambda: dms_to(fake_slack, "U0LEAD"), timeout=30, message="step 2 after the restart")
        engine = db.create_db_engine(db_url)
        sessions = db.session_factory(engine)
        # A call the killed process had claimed (the card update, say) is taken over once its lease
        # has run out: the restarted process can't tell a dead sender from a slow replica.
        poll(lambda: _drained(sessions), timeout=LEASE.total_seconds() + 30, message="the outbox drained")
        with db.unit_of_work(sessions) as session:
            incident = session.exec(select(Incident)).one()
            page = session.exec(select(Page).where(Page.incident_id == incident.id)).one()
            assert page.next_step_at is None  # no step left
        engine.dispose()
        assert len(dms_to(fake_slack, "U01ALICE")) == 1
        assert len(dms_to(fake_slack, "U0LEAD")) == 1
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
