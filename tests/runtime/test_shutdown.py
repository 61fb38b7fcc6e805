"""SIGTERM ends the real process within 5 s whatever is open, even while Slack does not answer.

The timeline backfill reads every open incident's thread at start-up; with Slack away each read
used to take its retries (about 2.5 s a thread), and the scheduler's shutdown waited for them all.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bot_process import bot_env, free_port, start_bot, wait_healthy
from fake_slack import FakeSlack
from incident_rows import incident, store

from storage import db

GRACE = 5.0  # seconds: below the usual orchestrators' grace period (Kubernetes: 30, many set 10)


def open_incidents(db_url: str, count: int) -> None:
    engine = db.create_db_engine(db_url)
    now = datetime.now(UTC)
    rows = [
        incident(now, severity="P3", channel_id="C0INCIDENTS", card_ts=f"{int(now.timestamp())}.{n:06d}")
        for n in range(count)
    ]
    store(db.session_factory(engine), *rows)
    engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("slack", ["silent", "refusing"])
def test_sigterm_with_open_incidents_and_slack_away_exits_within_5_seconds(
    db_url: str, fake_slack: FakeSlack, tmp_path: Path, slack: str
) -> None:
    open_incidents(db_url, 5)
    if slack == "silent":
        fake_slack.delay("*", 120)  # takes the connection, never answers in time
    else:
        fake_slack.refuse()  # a closed port
    port, log = free_port(), tmp_path / "bot.log"
    process = start_bot({**bot_env(db_url, fake_slack, port), "TIMELINE_BACKFILL_INTERVAL": "300"}, log)
    try:
        wait_healthy(port, process, log)

        def reading() -> bool:
            # The start-up backfill is on a thread: held by the silent Slack, or failed on the closed port.
            return bool(fake_slack.calls("conversations.replies")) or "could not read the thread" in log.read_text()

        deadline = time.monotonic() + 30
        while not reading():
            assert time.monotonic() < deadline, "the backfill never started\n" + log.read_text()
            time.sleep(0.05)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        took = time.monotonic() - started
        assert code == 0, log.read_text()
        assert took < GRACE, f"SIGTERM took {took:.1f}s\n" + log.read_text()
        if slack == "silent":
            assert "timeline backfill stopped for shutdown" in log.read_text(), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
        fake_slack.heal()
