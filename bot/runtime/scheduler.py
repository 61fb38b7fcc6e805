"""APScheduler wiring only: which job runs when. The jobs themselves live with their domain."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from bot.incidents import escalation, timeline
from bot.runtime.retention import retention_job
from bot.slack.backfill import backfill_job
from bot.slack.context import Runtime
from bot.slack.people import INTERVAL_SECONDS as PEOPLE_INTERVAL
from bot.slack.people import PeopleFiller, people_job
from storage.db import unit_of_work
from storage.errors import database_errors, run_logged
from storage.models import ProcessedEvent, utcnow

log = logging.getLogger(__name__)
# Slack stops retrying an event after about an hour; a day of ids is ample to recognise repeats.
EVENT_MEMORY = timedelta(days=1)
RETENTION_FIRST_RUN = timedelta(minutes=10)


def sweep_job(rt: Runtime) -> None:
    """Escalate what is due, then deliver whatever the outbox still holds (retries included)."""
    # The database away: the next interval tries again and finds the same due work.
    claimed = run_logged(log, "escalation sweep", lambda: escalation.sweep(rt.sessions, rt.settings))
    if claimed is None:
        return
    if claimed:
        log.info("sweep claimed %d escalation(s)", len(claimed))
    rt.deliverer.kick()
    # A pin and its reply handled at the same instant in two transactions can miss each other.
    with database_errors(log, "applying pending pins"), unit_of_work(rt.sessions) as session:
        timeline.apply_pending_pins(session)


def forget_old_events(rt: Runtime) -> None:
    with database_errors(log, "event id clean-up"), unit_of_work(rt.sessions) as session:
        session.execute(sa.delete(ProcessedEvent).where(ProcessedEvent.received_at < utcnow() - EVENT_MEMORY))
        timeline.apply_pending_pins(session, older_than=utcnow() - EVENT_MEMORY)


def build_scheduler(rt: Runtime, *, extra_jobs: list[dict[str, Any]] | None = None) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)

    def every(job: Any, seconds: float, job_id: str) -> None:
        # First run at start-up: what lapsed, or was said, while the bot was down is handled now.
        scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            args=[rt],
            id=job_id,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )

    every(sweep_job, rt.settings.escalation_check_interval, "escalation-sweep")
    if rt.settings.timeline_backfill_interval:
        every(backfill_job, rt.settings.timeline_backfill_interval, "timeline-backfill")
    filler = PeopleFiller()
    scheduler.add_job(
        people_job,
        "interval",
        seconds=PEOPLE_INTERVAL,
        args=[rt, filler],
        id="people",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(forget_old_events, "interval", hours=1, args=[rt], id="forget-events", max_instances=1)
    # Daily, and first a little after start-up: a bot restarted every day would otherwise never prune.
    scheduler.add_job(
        retention_job,
        "interval",
        days=1,
        args=[rt],
        id="retention",
        next_run_time=datetime.now(UTC) + RETENTION_FIRST_RUN,
        max_instances=1,
        coalesce=True,
    )
    for job in extra_jobs or []:
        scheduler.add_job(**job)
    return scheduler
