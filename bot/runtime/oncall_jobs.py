"""The on-call jobs: the paging sweep (due page steps), the handoff sweep, the start-up check of the users."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.oncall import handoffs, paging
from bot.oncall.config import OnCallConfig, target_kind
from bot.oncall.outbound import Senders, send_outbound
from bot.settings import Settings
from bot.slack.context import Runtime
from bot.slack.page_delivery import SlackEmails
from bot.slack.sends import describe, slack_error
from storage.errors import run_logged
from storage.models import utcnow

log = logging.getLogger(__name__)
# A page's first step is usually at PT0M: the sweep looks at least this often (seconds).
PAGING_INTERVAL = 5.0
HANDOFF_INTERVAL = 30.0  # handoffs are at whole minutes: a DM within half a minute of the change


def channels(settings: Settings) -> paging.Channels:
    return paging.Channels(email=settings.smtp_url is not None, webhook=bool(settings.page_webhook_url))


def senders(rt: Runtime) -> Senders:
    settings = rt.settings
    return Senders(
        smtp_url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
        email_from=settings.email_from,
        webhook_url=settings.page_webhook_url,
        webhook_secret=settings.page_webhook_secret.get_secret_value() if settings.page_webhook_secret else None,
        email_lookup=SlackEmails(rt.client),
    )


def paging_pass(rt: Runtime, *, now: datetime | None = None, sending: Senders | None = None) -> paging.Swept | None:
    """One paging sweep at `now` (tests pass it: no waiting for a step's offset), then what it claimed sent."""
    now = now or utcnow()
    config = rt.settings.oncall
    swept = run_logged(
        log, "paging sweep",
        lambda: paging.sweep(rt.sessions, config, now=now, worker=rt.deliverer.worker, channels=channels(rt.settings)),
    )
    if swept is None:
        return None
    if swept.queued:
        rt.deliverer.kick()
    if swept.outbound:
        run_logged(log, "sending page notices",
                   lambda: send_outbound(rt.sessions, config, swept.outbound or [], sending or senders(rt), now=now))
    return swept


def configured_users(config: OnCallConfig) -> dict[str, str]:
    """Every Slack user id the `oncall:` section names, with the first path that names it."""
    found: dict[str, str] = {}
    for name, schedule in config.schedules.items():
        for i, member in enumerate(schedule.members):
            found.setdefault(member, f"oncall.schedules.{name}.members[{i}]")
    for name, policy in config.policies.items():
        for i, step in enumerate(policy.steps):
            for j, target in enumerate(step.notify):
                if target_kind(target) == "user":
                    found.setdefault(target, f"oncall.policies.{name}.steps[{i}].notify[{j}]")
    for user in config.people:
        found.setdefault(user, f"oncall.people.{user}")
    return found


def check_users(rt: Runtime) -> list[str]:
    """At start-up: one ERROR line per configured user id that Slack does not know (or that left).

    Not a reason to stop: Slack may be unreachable at that moment, and the other schedules work.
    """
    problems: list[str] = []
    for user, path in configured_users(rt.settings.oncall).items():
        try:
            info = rt.client.users_info(user=user)["user"]
        except SlackApiError as exc:
            if slack_error(exc) in ("user_not_found", "users_not_found"):
                problems.append(f"{path}: {user} is not a user in this workspace (users.info: user_not_found)")
            else:
                log.warning("could not check %s (%s): %s", user, path, describe(exc))
            continue
        except (SlackClientError, OSError) as exc:
            log.warning("could not check the on-call users now: %s", describe(exc))
            return problems
        if info.get("deleted"):
            problems.append(f"{path}: {user} has left the workspace (deactivated)")
    for problem in problems:
        log.error("on-call config: %s", problem)
    return problems


def handoff_pass(rt: Runtime, *, now: datetime | None = None) -> list[handoffs.Announced] | None:
    """One handoff sweep at `now`: each shift change's DM and user-group update, claimed once."""
    now = now or utcnow()
    won = run_logged(log, "handoff sweep",
                     lambda: handoffs.sweep(rt.sessions, rt.settings.oncall, now=now, worker=rt.deliverer.worker))
    if won:
        rt.deliverer.kick()
    return won


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    """The paging sweep, when some route can start a page; the check of the configured users."""
    if not rt.settings.oncall.schedules and not rt.settings.oncall.routes:
        return []
    found: list[dict[str, Any]] = [
        {"func": check_users, "trigger": "date", "run_date": utcnow(), "args": [rt], "id": "oncall-users",
         "name": "check the on-call users", "misfire_grace_time": None},
        {"func": handoff_pass, "trigger": "interval", "seconds": HANDOFF_INTERVAL, "args": [rt], "id": "handoffs",
         "name": "on-call handoffs", "next_run_time": utcnow(), "max_instances": 1, "coalesce": True},
    ]
    if not rt.settings.oncall.routes:
        return found
    found.append(
        {
            "func": paging_pass,
            "trigger": "interval",
            "seconds": min(PAGING_INTERVAL, rt.settings.escalation_check_interval),
            "args": [rt],
            "id": "paging-sweep",
            "name": "paging sweep",
            "next_run_time": utcnow(),  # a page left due while the bot was down goes out now
            "max_instances": 1,
            "coalesce": True,
        }
    )
    return found
