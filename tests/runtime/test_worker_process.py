"""The default layout: the front process acks, a worker process does the work.

(bot/runtime/worker_process.py; the requests reach it through the inbox, bot/runtime/intake.py.)

Most tests run the bot in one process (tests/bot_harness.py, WORKER_PROCESS=false) so they can reach
its scheduler; these run the layout operators get, in-process (the worker from multiprocessing's
forkserver, as after a restart) and as `python -m bot run` (the worker forked).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import slack_requests as sr
from alert_payloads import TOKEN as ALERT_TOKEN
from alert_payloads import alert, cards, notification
from alert_payloads import post as post_alert
from bot_harness import SECRET, Bot, declare_values, poll
from bot_process import bot_env, child_pids, free_port, start_bot, wait_healthy
from cli_process import ForkedProcess
from fake_slack import FakeSlack
from slack_bolt import BoltRequest
from sqlmodel import select

from bot.ids import Callback
from bot.runtime import worker_process
from storage.db import unit_of_work
from storage.models import InboxRequest, TimelineEntry


@pytest.fixture
def split_bot(make_bot: Any) -> Bot:
    return make_bot(worker_process=True)


def entries(bot: Bot, incident_id: str) -> list[TimelineEntry]:
    with unit_of_work(bot.sessions) as session:
        query = select(TimelineEntry).where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "message")
        return list(session.exec(query))


def test_the_work_after_the_ack_runs_in_the_worker_process(split_bot: Bot) -> None:
    worker = split_bot.service.worker
    assert worker is not None and worker.pid not in (None, os.getpid())

    incident = split_bot.declare("Checkout is down", "P1")
    assert incident.card_ts is not None
    split_bot.reply(incident, sr.new_ts(), "restarted the pods")
    poll(lambda: entries(split_bot, incident.id), message="the reply in the timeline")
    assert [e.text for e in entries(split_bot, incident.id)] == ["restarted the pods"]
    # The reply's request went through the inbox, and the worker process took it from there.
    with unit_of_work(split_bot.sessions) as session:
        stored = [r for r in session.exec(select(InboxRequest)) if "restarted the pods" in r.body]
    assert [(r.claimed_by, r.done_at is not None) for r in stored] == [(worker.worker_id, True)]
    # And when the cores are busy, the kernel runs the front first.
    assert niceness(worker.pid) == min(niceness(os.getpid()) + worker_process.NICENESS, 19)


def stat(pid: int | None) -> list[str]:
    """/proc/PID/stat's fields after the command name (state, ppid, …), as proc(5) numbers them from 3."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def niceness(pid: int | None) -> int:
    return int(stat(pid)[16])


def test_a_redelivered_event_is_stored_once(split_bot: Bot) -> None:
    incident = split_bot.declare()
    assert incident.channel_id and incident.card_ts
    message = sr.thread_reply(incident.channel_id, incident.card_ts, sr.new_ts(), "U0BOB", "rolled back")
    for retry in (None, 1, 2):
        kwargs: dict[str, Any] = {"event_id": "Ev0REDELIVERED"}
        if retry is not None:
            kwargs |= {"retry_num": retry, "retry_reason": "http_timeout"}
        split_bot.send_ok(sr.event(message, secret=SECRET, **kwargs))
    poll(lambda: entries(split_bot, incident.id), message="the reply in the timeline")
    time.sleep(0.5)  # the redeliveries were handed off too; give them the time to do harm
    assert len(entries(split_bot, incident.id)) == 1


def test_stop_finishes_the_work_already_acked(split_bot: Bot, fake_slack: FakeSlack) -> None:
    fake_slack.delay("response_url", 1.0)
    url = fake_slack.response_url("list")
    for _ in range(5):
        split_bot.send_ok(sr.slash_command("list", secret=SECRET, response_url=url))
    split_bot.stop()  # while the five answers are still being sent
    assert len(fake_slack.calls("response_url")) == 5
    assert not split_bot.service.worker.alive()  # type: ignore[union-attr]


def test_an_alert_stored_by_the_front_is_posted_by_the_worker_at_once(make_bot: Any) -> None:
    # The sweep would also deliver it, but not for a minute: the front's kick reaches the worker.
    bot = make_bot(worker_process=True, alertmanager_token=ALERT_TOKEN, escalation_check_interval=60)
    status, answer = post_alert(bot, notification(alert(instance="db-1", severity="critical")))
    assert status == 200, answer
    # Well inside the sweep's minute, with room for a worker process still starting on a busy machine.
    bot.fake.wait_for("chat.postMessage", where=cards, timeout=20)


def test_a_dead_worker_is_replaced_and_what_was_acked_meanwhile_is_done(
    split_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_process, "RESTART_DELAY", 2.0)
    worker = split_bot.service.worker
    assert worker is not None
    first = worker.pid
    assert first is not None
    assert split_bot.get("/healthz")[0] == 200

    os.kill(first, signal.SIGKILL)
    poll(lambda: not worker.alive(), timeout=5, message="the worker's death")
    # Acked meanwhile (the front goes on answering Slack): stored, and done by the next worker.
    url = split_bot.fake.response_url("list")
    split_bot.send_ok(sr.slash_command("list", secret=SECRET, response_url=url))
    assert not worker.alive()  # still waiting out RESTART_DELAY: the answer above is in the inbox

    poll(lambda: worker.alive() and worker.pid != first, timeout=20, message="a new worker")
    assert worker.restarts == 1
    split_bot.fake.wait_for("response_url", timeout=20)
    assert split_bot.get("/healthz")[0] == 200
    incident = split_bot.declare("After the restart")
    assert incident.card_ts is not None


def test_the_forkserver_s_death_is_not_taken_for_the_worker_s(split_bot: Bot) -> None:
    # A front that runs threads (this one: it is inside a test) gets its worker from the
    # forkserver. A SIGTERM to the process group kills the forkserver and not the worker (which
    # ignores it until STOP): the front must go on with the worker it has, not release its
    # requests, start a second one, or stop without waiting for it (bot/runtime/worker_exit.py).
    worker = split_bot.service.worker
    assert worker is not None and worker.pid is not None
    first = worker.pid
    forkserver = parent_of(first)
    assert forkserver != os.getpid(), "the worker should come from the forkserver here"
    os.kill(forkserver, signal.SIGTERM)
    poll(lambda: not alive(forkserver), timeout=10, message="the forkserver's end")

    incident = split_bot.declare("Checkout is down", "P1")
    assert incident.card_ts is not None  # posted by the worker, which still runs
    assert worker.alive() and worker.pid == first and worker.restarts == 0
    split_bot.stop()
    assert not alive(first)  # stop() waited for the worker itself


def test_a_worker_that_does_not_stop_in_time_is_killed(split_bot: Bot) -> None:
    worker = split_bot.service.worker
    assert worker is not None and worker.pid is not None
    first = worker.pid
    os.kill(first, signal.SIGSTOP)  # hung: it will never act on STOP (and it ignores SIGTERM)
    try:
        worker.stop(timeout=0.5)
        assert not alive(first)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first, signal.SIGKILL)


def parent_of(pid: int) -> int:
    return int(stat(pid)[1])


def alive(pid: int) -> bool:
    try:
        state = stat(pid)[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; its parent has not reaped it yet


@pytest.mark.slow
def test_the_real_process_forks_its_worker_and_both_go_on_sigterm(
    db_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    process = start_bot(bot_env(db_url, fake_slack, port), log)
    try:
        wait_healthy(port, process, log)
        assert "forked" in log.read_text(), log.read_text()
        (worker,) = child_pids(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
        assert not alive(worker)
        assert "worker process stopped" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_after_a_restart_a_sigterm_to_the_group_still_waits_for_the_worker(
    db_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    # The replacement comes from the forkserver, which is in the group too, and dies of the
    # SIGTERM: the front must neither take that for its worker's death nor exit before it.
    port, log = free_port(), tmp_path / "bot.log"
    process = start_bot(bot_env(db_url, fake_slack, port), log, start_new_session=True)
    try:
        wait_healthy(port, process, log)
        (first,) = child_pids(process.pid)
        os.kill(first, signal.SIGKILL)
        poll(lambda: "forked by the forkserver" in log.read_text(), timeout=30, message="the replacement")
        (forkserver,) = child_pids(process.pid)
        (worker,) = child_pids(forkserver)
        wait_healthy(port, process, log)

        # Until its main() has run, the new worker has SIGTERM's default action, and a SIGTERM to
        # the group kills it: seen once under the suite's load, 20 ms after the fork.
        def replacement_started() -> bool:
            return "worker process started" in log.read_text().split("forked by the forkserver", 1)[1]

        poll(replacement_started, timeout=30, message="the replacement's start")
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
        text = log.read_text()
        assert not alive(worker), text
        assert text.count("exited with code") == 1, text  # the SIGKILL's, not the forkserver's end
        assert text.count("forked by the forkserver") == 1, text
        assert "worker process stopped" in text, text
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_a_worker_whose_front_was_killed_exits_by_itself(db_url: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    process: ForkedProcess = start_bot(bot_env(db_url, fake_slack, port), log)
    try:
        wait_healthy(port, process, log)
        (worker,) = child_pids(process.pid)
        process.kill()
        process.wait(10)
        deadline = time.monotonic() + 20
        while alive(worker):
            assert time.monotonic() < deadline, "the worker outlived its front\n" + log.read_text()
            time.sleep(0.1)
        assert "the front process went away" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()


def test_socket_mode_requests_go_through_the_same_intake(make_bot: Any) -> None:
    # Socket Mode delivers parsed payloads, not signed bodies; the intake stores them the same way.
    bot = make_bot(worker_process=True, slack_app_token="xapp-1-A0APP-0000-test", slack_signing_secret=None)
    submission = sr.view_submission(Callback.DECLARE.value, declare_values("Over the socket"), secret=SECRET)
    answer = bot.service.intake.answer(BoltRequest(body=submission.payload, mode="socket_mode"), "{}")
    assert answer.status == 200
    bot.fake.wait_for("chat.postMessage", where=lambda c: "Over the socket" in str(c.params), timeout=10)
    assert bot.wait_incident(lambda i: i.title == "Over the socket" and i.card_ts is not None)

    url = bot.fake.response_url("list")
    command = sr.slash_command("list", secret=SECRET, response_url=url).payload
    answer = bot.service.intake.answer(BoltRequest(body=command, mode="socket_mode"), json.dumps(command))
    assert answer.status == 200
    bot.fake.wait_for("response_url", timeout=10)


def test_a_stalled_worker_stalls_no_ack_and_catches_up_when_it_resumes(split_bot: Bot) -> None:
    # A stopped worker reads nothing from its pipe; wake-ups coalesce, so the front never blocks.
    worker = split_bot.service.worker
    assert worker is not None and worker.pid is not None
    url = split_bot.fake.response_url("list")
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        for _ in range(200):
            split_bot.send_ok(sr.slash_command("list", secret=SECRET, response_url=url))
        assert time.monotonic() - started < 20
        assert split_bot.fake.calls("response_url") == []
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    split_bot.fake.wait_for("response_url", count=200, timeout=30)


@pytest.mark.slow
def test_an_unreachable_database_at_start_ends_both_processes(fake_slack: FakeSlack, tmp_path: Path) -> None:
    # The worker is forked before the migrations; when they fail it must not keep the front alive.
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/incidents"
    log = tmp_path / "bot.log"
    process = start_bot(bot_env(closed, fake_slack, free_port()), log)
    try:
        assert process.wait(timeout=30) == 1, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "incident-bot: cannot migrate the database" in text
    assert "Traceback" not in text
    assert "forked" in text
