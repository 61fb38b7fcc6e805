"""Who is on call, from Slack and the CLI; covering a shift with the form; the calendar feed over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot
from icalendar import Calendar

from bot import cli
from bot.ids import Block, Callback
from bot.oncall.config import parse_oncall
from bot.oncall.ical import feed_token
from bot.oncall.schedules import on_call_at
from storage.models import utcnow

MEMBERS = ["U01ALICE", "U02BOB", "U03CAROL"]
ONCALL = {"schedules": {"primary": {"timezone": "Europe/Berlin", "rotation": "weekly", "handoff": "mon 09:00",
                                    "start": "2026-01-05", "members": MEMBERS}}}


def rotation_now() -> str:
    user = on_call_at(parse_oncall(ONCALL).schedules["primary"], None, utcnow())
    assert user is not None
    return user


def cover_values(schedule: str | None, user: str | None, starts: int | None, ends: int | None) -> dict[str, Any]:
    def block(name: Block, element: dict[str, Any]) -> dict[str, Any]:
        return {name.value: {name.value + "_input": element}}

    return (block(Block.COVER_SCHEDULE, sr.select(schedule)) | block(Block.COVER_USER, sr.user(user))
            | block(Block.COVER_FROM, {"type": "datetimepicker", "selected_date_time": starts})
            | block(Block.COVER_UNTIL, {"type": "datetimepicker", "selected_date_time": ends}))


def ask_oncall(bot: Bot, n: int) -> str:
    bot.send_ok(sr.slash_command("oncall", secret=SECRET, response_url=bot.fake.response_url("oncall")))
    return str(bot.fake.wait_for("response_url", count=n)[n - 1].params["text"])


def cover(bot: Bot, user: str, starts: int, ends: int) -> dict[str, Any]:
    return bot.send_ok(sr.view_submission(Callback.ONCALL_COVER.value, cover_values("primary", user, starts, ends),
                                          secret=SECRET, user_id="U0ALICE"))


def test_oncall_lists_who_is_on_call_and_covers_win_latest_first(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    text = ask_oncall(bot, 1)
    assert f"*primary*: <@{rotation_now()}> until " in text and "handoffs:" in text and "oncall cover" in text
    # The form: `/incident oncall cover` opens it.
    bot.send_ok(sr.slash_command("oncall cover", secret=SECRET, trigger_id="1.2.3"))
    view = bot.fake.wait_for("views.open")[0].params["view"]
    assert view["callback_id"] == Callback.ONCALL_COVER.value
    assert [b["block_id"] for b in view["blocks"]] == [b.value for b in (
        Block.COVER_SCHEDULE, Block.COVER_USER, Block.COVER_FROM, Block.COVER_UNTIL)]
    now = int(utcnow().timestamp())
    assert cover(bot, "U0ZOE", now - 3600, now + 7200) == {}
    assert cover(bot, "U0YAN", now - 60, now + 3600) == {}  # overlapping, created later: it wins
    text = ask_oncall(bot, 2)
    assert "*primary*: <@U0YAN> (covering)" in text
    assert "→ <@U0ZOE>" in text  # when U0YAN's cover ends, U0ZOE's goes on
    # A cover that ends before it starts keeps the form open, with the reason.
    answer = cover(bot, "U0ZOE", now + 7200, now + 3600)
    assert answer["response_action"] == "errors" and Block.COVER_UNTIL.value in answer["errors"]


def test_cli_oncall_reads_the_database_and_never_creates_one(
    make_bot: Callable[..., Bot], db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bot = make_bot(oncall=ONCALL)
    now = int(utcnow().timestamp())
    cover(bot, "U0ZOE", now - 60, now + 3600)
    config = tmp_path / "config.yml"
    config.write_text("oncall:\n  schedules:\n    primary: {timezone: Europe/Berlin, rotation: weekly, "
                      "handoff: 'mon 09:00', start: 2026-01-05, members: [U01ALICE, U02BOB, U03CAROL]}\n")
    monkeypatch.setenv("CONFIG_FILE", str(config))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("PUBLIC_URL", "https://bot.example.com/")
    assert cli.main(["oncall"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("primary (Europe/Berlin): U0ZOE (covering) until ")
    assert any(line.strip().endswith(f"U0ZOE -> {rotation_now()}") for line in out[1:])
    assert cli.main(["oncall", "nope"]) == 1
    assert "no schedule 'nope' (known: primary)" in capsys.readouterr().err
    assert cli.main(["oncall", "primary", "--ical-url"]) == 0
    token = feed_token(SECRET, "primary")
    assert capsys.readouterr().out.strip() == f"https://bot.example.com/oncall/primary.ics?token={token}"
    missing = tmp_path / "missing.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    assert cli.main(["oncall"]) == 1
    assert "no database at" in capsys.readouterr().err and not missing.exists()


def test_calendar_feed_needs_the_token_and_applies_overrides(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    now = int(utcnow().timestamp())
    cover(bot, "U0ZOE", now + 86400, now + 2 * 86400)
    token = feed_token(SECRET, "primary")
    assert bot.get("/oncall/primary.ics")[0] == 403
    assert bot.get(f"/oncall/primary.ics?token={quote(token[:-1] + 'x')}")[0] == 403
    assert bot.get(f"/oncall/secondary.ics?token={token}")[0] == 404
    status, body = bot.get(f"/oncall/primary.ics?token={token}")
    assert status == 200
    events = list(Calendar.from_ical(body).walk("VEVENT"))
    starts = [e.decoded("dtstart") for e in events]
    assert starts == sorted(starts) and starts[-1] - starts[0] >= timedelta(weeks=11)
    assert any(str(e.get("summary")) == "On call: U0ZOE" for e in events)


def test_feed_answers_text_calendar(make_bot: Callable[..., Bot]) -> None:
    import urllib.request

    bot = make_bot(oncall=ONCALL)
    token = feed_token(SECRET, "primary")
    with urllib.request.urlopen(f"{bot.url}/oncall/primary.ics?token={token}", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/calendar")
