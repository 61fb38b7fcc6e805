"""The digests' schedule: crontab triggers in the digest time zone, the jobs, and the start-up catch-up."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot import crontab
from bot.reports.digest import claim
from bot.reports.periods import current_period, previous_period
from bot.runtime.crontab_trigger import CrontabTrigger
from bot.settings import Settings
from bot.slack.context import Runtime
from storage.db import unit_of_work
from storage.errors import database_errors
from storage.models import utcnow
from storage.service_state import Installation

log = logging.getLogger(__name__)


# A fire delayed by a busy or suspended host still posts within this; a bot that was down is
# covered by catch_up() at start-up instead.
MISFIRE_GRACE_SECONDS = 6 * 3600


def crons(settings: Settings) -> dict[str, str]:
    """The enabled digests and their crontab; an empty setting switches that digest off."""
    configured = {
        "weekly": settings.digest_cron,
        "monthly": settings.monthly_digest_cron,
        "quarterly": settings.quarterly_digest_cron,
    }
    return {kind: expr for kind, expr in configured.items() if expr.strip()}


def trigger(expr: str, settings: Settings) -> CrontabTrigger:
    return CrontabTrigger(expr, timezone=settings.digest_timezone)


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    """One cron job per enabled digest, and a one-off catch-up at start-up for a digest missed while down."""
    enabled = crons(rt.settings)
    found: list[dict[str, Any]] = [
        {
            "func": run_digest,
            "trigger": trigger(expr, rt.settings),
            "args": [rt, kind],
            "id": f"digest-{kind}",
            "name": f"{kind} digest",
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        }
        for kind, expr in enabled.items()
    ]
    if enabled:
        found.append(
            {
                "func": catch_up,
                "trigger": "date",
                "run_date": utcnow(),
                "args": [rt],
                "id": "digest-catch-up",
                "name": "missed digests",
                "misfire_grace_time": None,  # however late the scheduler starts, run it once
            }
        )
    return found


def run_digest(rt: Runtime, kind: str, *, now: datetime | None = None) -> bool:
    """The scheduled job: claim the period that just ended and queue its post; True when this call won."""
    now = now or utcnow()
    period = previous_period(kind, now, rt.settings.digest_timezone)
    won = False
    with database_errors(log, f"claiming the {kind} digest for {period.label}"):
        with unit_of_work(rt.sessions) as session:
            claimed = claim(session, period, now=now)
        won = claimed  # only once the claim is committed
    if won:
        log.info("claimed the %s digest for %s", kind, period.label)
        rt.deliverer.kick()
    return won


def missed(expr: str, kind: str, now: datetime, tz: str, *, since: datetime | None = None) -> bool:
    """The cron fired (or should have) since the current period began, and after `since` (when the
    database was created): its digest is due now.

    A fire time before the current period reported on an older period; that one is not posted late.
    A fire time before the database existed was never the bot's to post: a fresh install posts nothing.
    """
    window = current_period(kind, now, tz)
    start = window.start if since is None else max(window.start, since)
    return crontab.first_fire_from(expr, start, tz) <= now


def installed_at(session: Session) -> datetime | None:
    row = session.get(Installation, 1)
    return row.created_at if row is not None else None


def catch_up(rt: Runtime, *, now: datetime | None = None) -> list[str]:
    """At start-up: post each enabled digest whose scheduled time passed while the bot was down.

    Only times after the database was created count (CONTRACT.md: a fresh install posts nothing).
    The claim makes this safe to run on every start of every replica: a period already claimed
    (posted, or being posted) is left alone.
    """
    now = now or utcnow()
    tz = rt.settings.digest_timezone
    since: datetime | None = None
    with database_errors(log, "reading when the database was created"), unit_of_work(rt.sessions) as session:
        since = installed_at(session)
    # No row (removed by hand) or no answer: nothing is known to be due, so nothing is posted.
    since = since or now
    return [
        kind
        for kind, expr in crons(rt.settings).items()
        if missed(expr, kind, now, tz, since=since) and run_digest(rt, kind, now=now)
    ]
