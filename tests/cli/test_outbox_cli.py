"""`incident-bot outbox [retry ID…]` and the dead-letter queries behind it (bot/outbox.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.incidents import outbox
from bot.incidents.outbox import OutboxKind, enqueue
from storage import db
from storage.models import Outbox, utcnow


def _dead(sessions: db.SessionFactory, *reasons: str) -> list[int]:
    """Outbox rows that Slack refused for good, as the deliverer leaves them."""
    with db.unit_of_work(sessions) as session:
        for n in range(len(reasons)):
            enqueue(session, OutboxKind.CHANNEL_POST, payload={"text": f"post {n}", "channel": "C0ALERTS"})
        enqueue(session, OutboxKind.CHANNEL_POST, payload={"text": "still pending", "channel": "C0ALERTS"})
        rows = list(session.exec(select(Outbox).order_by(Outbox.id)))
        for row, reason in zip(rows, reasons, strict=False):
            row.dead_at, row.last_error, row.attempts = utcnow(), f"HTTP 200 {reason}", 1
            session.add(row)
        return [row.id for row in rows[: len(reasons)] if row.id is not None]


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    return db_url


def test_outbox_lists_the_dead_letters_with_their_reason(
    cli_db: str, sessions: db.SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["outbox"]) == 0
    assert capsys.readouterr().out.strip() == "no dead letters"
    first, second = _dead(sessions, "channel_not_found", "invalid_blocks")
    with db.unit_of_work(sessions) as session:
        assert outbox.count_dead_letters(session) == 2
        assert [r.id for r in outbox.dead_letters(session)] == [first, second]
    assert main(["outbox"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{first}\tchannel_post") and lines[0].endswith("channel_not_found")
    assert lines[1].startswith(f"{second}\t") and "invalid_blocks" in lines[1]


def test_outbox_retry_queues_the_named_dead_letters_or_all(
    cli_db: str, sessions: db.SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = _dead(sessions, "missing_scope", "not_in_channel", "is_archived")
    assert main(["outbox", "retry", str(second)]) == 0
    assert "queued 1 dead letter again" in capsys.readouterr().out
    with db.unit_of_work(sessions) as session:
        assert [r.id for r in outbox.dead_letters(session)] == [first, third]
        again = session.get(Outbox, second)
        assert again is not None and again.dead_at is None and again.delivered_at is None and again.attempts == 0
    assert main(["outbox", "retry"]) == 0
    assert "queued 2 dead letters again" in capsys.readouterr().out
    with db.unit_of_work(sessions) as session:
        assert outbox.count_dead_letters(session) == 0


def test_outbox_never_creates_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "incidents.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    assert main(["outbox"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(missing) in error
    assert main(["outbox", "retry"]) == 1
    assert not missing.exists() and not missing.parent.exists()
