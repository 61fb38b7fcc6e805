"""`incident-bot check`: validate the configuration, reach the database and Slack, say what the bot will do.

Read-only: the database is opened as it is (never created, never migrated, SQLite read-only) and
Slack is only asked who the token belongs to (auth.test). Exit 0 when all is well, 1 with one line
per problem otherwise.
"""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.engine import make_url

from bot import crontab
from bot.incidents.deadlines import format_duration
from bot.oncall.schedules import OverrideIndex, next_handoffs
from bot.runtime import digest_jobs
from bot.settings import Settings, SettingsError, config_file, config_file_problems, load_settings
from bot.slack.context import make_client
from storage import db
from storage.models import SEVERITIES, utcnow

# Slack's answers to auth.test that no retry will change (CONTRACT.md: they stop `run`).
REJECTED = ("invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired")
DIGEST_SETTINGS = {"weekly": "DIGEST_CRON", "monthly": "MONTHLY_DIGEST_CRON", "quarterly": "QUARTERLY_DIGEST_CRON"}

# What the bot will do when, one line per schedule. On-call handoffs register theirs here:
# `SCHEDULE_LINES.append(provider)`, a provider being (settings, now) -> lines of the form
# "<what>: next at 2026-12-07 10:00 UTC (Mon)" or "<what>: off (<why>)".
ScheduleLines = Callable[[Settings, datetime], Iterable[str]]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def when(moment: datetime, tz: str) -> str:
    """`2026-12-07 10:00 UTC (Mon)`: a fire time as the operator reads it, in the schedule's zone."""
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z (%a)")


def digest_lines(settings: Settings, now: datetime) -> list[str]:
    tz = settings.digest_timezone
    enabled = digest_jobs.crons(settings)
    lines = []
    for kind, variable in DIGEST_SETTINGS.items():
        if kind in enabled:
            lines.append(f"{kind} digest: next at {when(crontab.next_fire(enabled[kind], now, tz), tz)}")
        else:
            lines.append(f"{kind} digest: off ({variable} empty)")
    return lines


def oncall_lines(settings: Settings, now: datetime) -> list[str]:
    """Each schedule's next handoff (its rotation: `check` reads no override) and each paging policy."""
    lines = []
    for name in sorted(settings.oncall.schedules):
        schedule = settings.oncall.schedules[name]
        coming = next_handoffs(schedule, OverrideIndex(), now, 1)
        if coming:
            handoff = coming[0]
            lines.append(f"on-call {name}: next handoff at {when(handoff.at, schedule.timezone)} to {handoff.user_id}")
        else:
            lines.append(f"on-call {name}: no handoff to come (one member, or the rotation has ended)")
    for name in sorted(settings.oncall.policies):
        policy = settings.oncall.policies[name]
        steps = "; ".join(f"after {format_duration(step.after)}: {', '.join(step.notify)}" for step in policy.steps)
        again = f", then {policy.repeat} more time{'s' if policy.repeat != 1 else ''}" if policy.repeat else ""
        lines.append(f"paging policy {name}: {steps}{again}")
    if not settings.oncall.schedules and not settings.oncall.policies:
        lines.append("on-call: off (no oncall: section in CONFIG_FILE)")
    return lines


SCHEDULE_LINES: list[ScheduleLines] = [digest_lines, oncall_lines]


def policy_lines(settings: Settings) -> list[str]:
    policy = settings.policy()
    lines = []
    for severity in SEVERITIES:
        line = (
            f"escalation {severity}: acknowledge within {format_duration(policy.response_targets[severity])}, "
            f"resolve within {format_duration(policy.resolution_targets[severity])}, "
            f"repeat every {format_duration(policy.repeat_for(severity))}, at most {policy.max_repeats} repeats"
        )
        if severity in policy.update_reminder:
            line += f"; nudge the commander after {format_duration(policy.update_reminder[severity])} of silence"
        lines.append(line)
    contacts = ", ".join(settings.escalation_contacts)
    lines.append(
        f"escalation contacts: {contacts}" if contacts else "escalation contacts: none (ESCALATION_CONTACTS empty)"
    )
    for level, extra in enumerate(settings.escalation_levels or []):
        lines.append(f"escalation level {level}: also {', '.join(extra) or 'no one'}")
    lines.append(f"escalation sweep: every {settings.escalation_check_interval:g} s")
    return lines


def feature_lines(settings: Settings) -> list[str]:
    lines = [
        "mode: Socket Mode" if settings.socket_mode else f"mode: HTTP, POST /slack/events on port {settings.port}",
        f"incident channel: {settings.incident_channel}; alert channel: {settings.alert_channel}",
    ]
    if settings.alertmanager_token is not None and settings.alertmanager_token.get_secret_value():
        lines.append("Alertmanager webhook: POST /alerts/alertmanager")
    else:
        lines.append("Alertmanager webhook: off (ALERTMANAGER_TOKEN unset)")
    if settings.timeline_backfill_interval:
        lines.append(f"timeline backfill: every {settings.timeline_backfill_interval:g} s")
    else:
        lines.append("timeline backfill: off (TIMELINE_BACKFILL_INTERVAL=0)")
    return lines


def database_problems(settings: Settings, report: Report) -> None:
    """Reach the database as it is, and compare its revision with the bot's; create and change nothing."""
    try:
        parsed = make_url(db.normalise_url(settings.database_url))
    except sa.exc.ArgumentError:
        report.problems.append("DATABASE_URL is not a database URL (e.g. sqlite:///incidents.db, postgresql://…)")
        return
    shown = parsed.render_as_string(hide_password=True)
    try:
        if parsed.get_backend_name() == "sqlite":
            path = parsed.database or ""
            if path in ("", ":memory:"):
                report.lines.append("database: in memory (nothing is kept)")
                return
            if not Path(path).is_file():
                report.problems.append(f"DATABASE_URL: no database at {path}")
                return
            # Read-only, so a mistyped path or a check run beside a live bot changes nothing.
            uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"
            engine = sa.create_engine("sqlite:///" + uri + "&uri=true", poolclass=sa.pool.NullPool)
        else:
            engine = db.create_db_engine(settings.database_url, wait=5, poolclass=sa.pool.NullPool)
    except (sa.exc.ArgumentError, ImportError):
        report.problems.append(f"DATABASE_URL: {parsed.get_backend_name()} databases are not supported")
        return
    try:
        with engine.connect() as connection:
            current = db.current_revision(connection)
        head = db.head_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        report.problems.append(f"DATABASE_URL: cannot use the database at {shown}: {_reason(exc, parsed.password)}")
        return
    finally:
        engine.dispose()
    if current != head:
        at = f"at revision {current}" if current else "has no tables of the bot"
        report.problems.append(f"DATABASE_URL: the database {at}, the bot needs {head}: run `incident-bot db upgrade`")
        return
    report.lines.append(f"database: {shown}, at the latest revision ({head})")


def slack_problems(settings: Settings, report: Report) -> None:
    try:
        settings.require_for_run()
    except SettingsError as exc:
        report.problems.append(str(exc))
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if settings.slack_app_token is not None and not settings.slack_app_token.get_secret_value().startswith("xapp-"):
        report.problems.append("SLACK_APP_TOKEN is not an app-level token (xapp-…): see the app's Basic Information")
    if not token:
        return
    if not token.startswith("xoxb-"):
        report.problems.append("SLACK_BOT_TOKEN is not a bot token (xoxb-…): see the app's OAuth & Permissions page")
        return
    try:
        answer = make_client(settings, timeout=5).auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown"))
        if error in REJECTED:
            report.problems.append(
                f"SLACK_BOT_TOKEN: Slack rejected the token ({error}): reinstall the app and copy it again"
            )
        else:
            report.problems.append(f"SLACK_BOT_TOKEN: auth.test failed ({error})")
        return
    except (SlackClientError, OSError) as exc:
        report.problems.append(
            f"SLACK_API_URL: Slack did not answer at {settings.slack_api_url} ({type(exc).__name__})"
        )
        return
    report.lines.append(
        f"slack: the token is @{answer.get('user')} ({answer.get('user_id')}) in {answer.get('team')} "
        f"({answer.get('team_id')})"
    )


def check(now: datetime | None = None) -> Report:
    now = now or utcnow()
    report = Report()
    report.problems += config_file_problems()
    try:
        settings = load_settings()
    except SettingsError as exc:
        report.problems += exc.problems
        return report
    except ValueError as exc:  # what pydantic-settings lets through from a malformed CONFIG_FILE
        report.problems.append(f"CONFIG_FILE: {exc}")
        return report
    path = config_file()
    report.lines.append(
        f"settings: from the environment, .env and CONFIG_FILE {path}"
        if path
        else "settings: from the environment and .env (no CONFIG_FILE)"
    )
    database_problems(settings, report)
    slack_problems(settings, report)
    for provider in SCHEDULE_LINES:
        report.lines += provider(settings, now)
    report.lines += policy_lines(settings)
    report.lines += feature_lines(settings)
    return report


def main(out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    report = check()
    for line in report.lines:
        print(line, file=out)
    for problem in report.problems:
        print(f"problem: {problem}", file=err)
    if report.problems:
        return 1
    print("all is well", file=out)
    return 0


def _reason(exc: sa.exc.SQLAlchemyError, password: str | None) -> str:
    # The driver's message may quote the URL: its first line only, never the password.
    text = (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0].strip()
    return text.replace(password, "***") if password else text
