"""Start-up: a wrong `oncall:` section stops `run` with one line per mistake (exit 2); unknown users are named."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from bot_harness import Bot, poll
from oncall_bot import ONCALL

from bot import cli
from bot.runtime.oncall_jobs import check_users

BAD = """
oncall:
  schedules:
    primary: {timezone: Europe/Berlim, rotation: weekly, handoff: "mon 09:00", start: 2026-01-05,
              members: [U01ALICE, bob]}
  policies:
    default: {steps: [{after: PT0M, notify: ["schedule:nope"]}]}
  routes: [{policy: missing}]
"""


def test_run_exits_2_with_one_line_per_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(BAD)
    database = tmp_path / "incidents.db"
    for name, value in {"CONFIG_FILE": str(config), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret",
                        "DATABASE_URL": f"sqlite:///{database}"}.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["run"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "incident-bot: invalid settings: oncall.schedules.primary.timezone: 'Europe/Berlim' is not a time zone "
        "(IANA name such as Europe/Berlin)",
        "incident-bot: invalid settings: oncall.schedules.primary.members[1]: 'bob' is not a Slack user id (U… or W…)",
        "incident-bot: invalid settings: oncall.policies.default.steps[0].notify[0]: unknown schedule 'nope'",
        "incident-bot: invalid settings: oncall.routes[0].policy: unknown policy 'missing'",
    ]
    assert not database.exists()
    assert "s3cret" not in "".join(lines)


def test_users_slack_does_not_know_are_reported_at_start_up(
    make_bot: Callable[..., Bot], caplog: pytest.LogCaptureFixture
) -> None:
    config = {**ONCALL, "schedules": {"primary": {**ONCALL["schedules"]["primary"], "members": ["U01ALICE", "U0GONE"]}}}
    bot = make_bot(oncall=config)
    bot.fake.respond_with(
        "users.info",
        lambda p: {"ok": False, "error": "user_not_found"} if p["user"] == "U0GONE" else {"ok": True, "user": {}},
    )
    caplog.set_level(logging.ERROR)
    rt = bot.service.rt
    assert check_users(rt) == [
        "oncall.schedules.primary.members[1]: U0GONE is not a user in this workspace (users.info: user_not_found)"
    ]
    assert "U0GONE is not a user" in caplog.text
    # The bot checks them by itself once it runs.
    poll(lambda: any(c.params.get("user") == "U0GONE" for c in bot.fake.calls("users.info")), message="the check")
