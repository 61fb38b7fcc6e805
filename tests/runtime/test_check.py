"""`incident-bot check`: the real command as a subprocess against the fake Slack, plus its lines at a fixed time."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bot_harness import SECRET, TOKEN
from cli_process import run_cli
from fake_slack import FakeSlack

from bot import crontab
from bot.runtime import check

ROOT = Path(__file__).resolve().parents[2]
MONDAY_NEXT = "weekly digest: next at 2026-12-07 10:00 UTC (Mon)"


def env_for(db_url: str, fake: FakeSlack, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DATABASE_URL", "ALERTMANAGER", "CONFIG_FILE"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
        DATABASE_URL=db_url,
    )
    env.update(extra)
    return env


def run_check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd: a folder without a .env, so only the environment given here counts.
    return run_cli(["check"], env=env, cwd=cwd, timeout=120)


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("problem: ") for line in result.stderr.splitlines() if line.startswith("problem: ")]


@pytest.mark.slow
def test_all_well_exits_0_and_says_what_the_bot_will_do(db_url: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    result = run_check(
        env_for(db_url, fake_slack, MONTHLY_DIGEST_CRON="", ALERTMANAGER_TOKEN="am-secret-0123456789abcdef"), tmp_path
    )
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[-1] == "all is well"
    # The next fire as the scheduler computes it, whatever the real clock says.
    expected = {
        f"weekly digest: next at {check.when(crontab.next_fire('0 10 * * mon', moment, 'UTC'), 'UTC')}"
        for moment in (before, after)
    }
    assert any(line in expected for line in lines), lines
    assert "monthly digest: off (MONTHLY_DIGEST_CRON empty)" in lines
    assert any(line.startswith("quarterly digest: next at ") and line.endswith("(Mon)") for line in lines)
    assert (
        "escalation P0: acknowledge within 5m, resolve within 10m, repeat every 5m, at most 2 repeats" in result.stdout
    )
    assert "Alertmanager webhook: POST /alerts/alertmanager" in lines
    assert any(line.startswith("database: ") and "latest revision" in line for line in lines)
    assert any(line.startswith("slack: the token is @") for line in lines)
    assert [c.method for c in fake_slack.calls()] == ["auth.test"]
    assert TOKEN not in result.stdout + result.stderr and "am-secret" not in result.stdout


@pytest.mark.slow
def test_a_missing_database_is_a_problem_and_is_not_created(fake_slack: FakeSlack, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "incidents.db"
    result = run_check(env_for(f"sqlite:///{missing}", fake_slack), tmp_path)
    assert result.returncode == 1
    assert problems(result) == [f"DATABASE_URL: no database at {missing}"]
    assert not missing.parent.exists()
    # Everything else is still checked and shown.
    assert any(line.startswith("weekly digest: next at ") for line in result.stdout.splitlines())
    assert "all is well" not in result.stdout


@pytest.mark.slow
def test_a_database_that_does_not_answer_or_is_not_migrated(fake_slack: FakeSlack, tmp_path: Path) -> None:
    unreachable = run_check(env_for("postgresql://bot:pg-secret@127.0.0.1:1/incidents", fake_slack), tmp_path)
    assert unreachable.returncode == 1
    (problem,) = problems(unreachable)
    assert problem.startswith("DATABASE_URL: cannot use the database at postgresql+psycopg://bot:***@127.0.0.1:1/")
    assert "pg-secret" not in unreachable.stdout + unreachable.stderr

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    size = empty.stat().st_size
    unmigrated = run_check(env_for(f"sqlite:///{empty}", fake_slack), tmp_path)
    assert problems(unmigrated) == [
        f"DATABASE_URL: the database has no tables of the bot, the bot needs {head()}: run `incident-bot db upgrade`"
    ]
    assert empty.stat().st_size == size  # read-only

    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("hello\n")
    garbage = run_check(env_for(f"sqlite:///{not_a_database}", fake_slack), tmp_path)
    assert garbage.returncode == 1
    (problem,) = problems(garbage)
    assert problem.startswith("DATABASE_URL: cannot use the database") and "not a database" in problem
    assert not_a_database.read_text() == "hello\n"


@pytest.mark.slow
def test_a_token_slack_rejects_is_a_problem(db_url: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    fake_slack.fail("auth.test", 200, error="invalid_auth", times=None)
    result = run_check(env_for(db_url, fake_slack), tmp_path)
    assert result.returncode == 1
    assert problems(result) == [
        "SLACK_BOT_TOKEN: Slack rejected the token (invalid_auth): reinstall the app and copy it again"
    ]
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.slow
def test_an_unreachable_slack_is_a_problem(db_url: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    fake_slack.refuse()
    result = run_check(env_for(db_url, fake_slack), tmp_path)
    assert result.returncode == 1
    (problem,) = problems(result)
    assert problem.startswith(f"SLACK_API_URL: Slack did not answer at {fake_slack.url}")


@pytest.mark.slow
def test_bad_settings_and_config_file_give_one_line_each(fake_slack: FakeSlack, tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("digst_cron: '0 9 * * mon'\noncall: {schedules: {}}\n")
    env = env_for("sqlite:///x.db", fake_slack, DIGEST_CRON="0 10 * * 8", PORT="http", CONFIG_FILE=str(config))
    env.pop("SLACK_SIGNING_SECRET")
    result = run_check(env, tmp_path)
    assert result.returncode == 1
    found = problems(result)
    assert found[0] == f"CONFIG_FILE {str(config)!r}: unknown key 'digst_cron' is ignored (did you mean 'digest_cron'?)"
    assert [p.split(":")[0] for p in found[1:]] == ["PORT", "DIGEST_CRON"] or [p.split(":")[0] for p in found[1:]] == [
        "DIGEST_CRON",
        "PORT",
    ]
    assert all("\n" not in p for p in found)
    assert not (tmp_path / "x.db").exists()

    config.write_text("- just\n- a list\n")
    listed = run_check(env_for(f"sqlite:///{tmp_path}/x.db", fake_slack, CONFIG_FILE=str(config)), tmp_path)
    assert listed.returncode == 1
    assert (
        problems(listed)[0]
        == f"CONFIG_FILE {str(config)!r} must be a mapping of settings (lines of `key: value`), not a list"
    )
    assert "Traceback" not in listed.stderr


def test_the_lines_at_a_fixed_time(monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, db_url: str) -> None:
    for name, value in env_for(
        db_url,
        fake_slack,
        DIGEST_TIMEZONE="Europe/Berlin",
        MONTHLY_DIGEST_CRON="0 10 * * mon#1",
        QUARTERLY_DIGEST_CRON="",
        ESCALATION_CONTACTS='["U0LEAD", "S0SRE"]',
        ESCALATION_MAX_REPEATS="0",
    ).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CONFIG_FILE", raising=False)
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    report = check.check(now=datetime(2026, 12, 1, 12, tzinfo=UTC))
    assert report.problems == []
    assert report.lines[0] == "settings: from the environment and .env (no CONFIG_FILE)"
    assert "weekly digest: next at 2026-12-07 10:00 CET (Mon)" in report.lines
    assert "monthly digest: next at 2026-12-07 10:00 CET (Mon)" in report.lines
    assert "quarterly digest: off (QUARTERLY_DIGEST_CRON empty)" in report.lines
    assert "escalation contacts: U0LEAD, S0SRE" in report.lines
    assert any(line.startswith("escalation P3:") and line.endswith("at most 0 repeats") for line in report.lines)
    assert "Alertmanager webhook: off (ALERTMANAGER_TOKEN unset)" in report.lines


def test_other_schedules_add_their_lines(monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, db_url: str) -> None:
    for name, value in env_for(db_url, fake_slack).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT / "tests")
    monkeypatch.setattr(
        check, "SCHEDULE_LINES", [*check.SCHEDULE_LINES, lambda _s, _now: ["on-call primary: next handoff at …"]]
    )
    report = check.check(now=datetime(2026, 12, 1, 12, tzinfo=UTC))
    assert MONDAY_NEXT in report.lines
    assert "on-call primary: next handoff at …" in report.lines


def head() -> str:
    from storage import db

    engine = db.create_db_engine("sqlite://")
    try:
        revision = db.head_revision(engine)
    finally:
        engine.dispose()
    assert revision
    return revision


def test_each_schedule_gives_its_next_handoff_and_each_policy_its_steps(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(
        "oncall:\n"
        "  schedules:\n"
        "    primary: {timezone: Europe/Berlin, rotation: weekly, handoff: 'mon 09:00', start: 2026-11-02,"
        " members: [U01ALICE, U02BOB]}\n"
        "  policies:\n"
        "    default:\n"
        "      steps:\n"
        "        - {after: PT0M, notify: ['schedule:primary']}\n"
        "        - {after: PT10M, notify: ['U0LEAD', 'S0SRE']}\n"
        "      repeat: 1\n"
        "  routes:\n"
        "    - {match: {severity: [P0, P1]}, policy: default}\n"
    )
    for name, value in env_for(db_url, fake_slack, CONFIG_FILE=str(config)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT / "tests")
    # Tuesday 2026-12-01: Alice has had the week since Mon 30 Nov (shift 4); Bob takes over on Mon 7 Dec.
    report = check.check(now=datetime(2026, 12, 1, 12, tzinfo=UTC))
    assert report.problems == []
    assert "on-call primary: next handoff at 2026-12-07 09:00 CET (Mon) to U02BOB" in report.lines
    assert "paging policy default: after 0s: schedule:primary; after 10m: U0LEAD, S0SRE, then 1 more time" in (
        report.lines
    )
