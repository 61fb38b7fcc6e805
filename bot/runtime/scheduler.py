"""APScheduler wiring only: which job runs when. The jobs themselves live with their domain."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import col

from bot.incidents import escalation, timeline
from bot.runtime.retention import retention_job
from bot.slack.backfill import backfill_job
from bot.slack.context import Runtime
from bot.slack.people import INTERVAL_SECONDS as PEOPLE_INTERVAL
from bot.slack.people import PeopleFiller, people_job
from storage import jobs
from storage.db import unit_of_work
from storage.errors import database_errors, run_logged
from storage.models import ProcessedEvent, utcnow

log = logging.getLogger(__name__)
# Slack stops retrying an event after about an hour; a day of ids is ample to recognise repeats.
EVENT_MEMORY = timedelta(days=1)
RETENTION_FIRST_RUN = timedelta(minutes=10)
# The sweep's run is recorded (job_run, for GET /metrics) at most this often: with a short
# ESCALATION_CHECK_INTERVAL every sweep's write would hold SQLite's one write lock that much more.
RECORD_EVERY = 5.0


class Throttle:
    """True at most once every `seconds` (the first call included)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True


def sweep_job(rt: Runtime, record: Throttle | None = None) -> None:
    """Escalate what is due, then deliver whatever the outbox still holds (retries included);
    record the run when `record` says so (always without one)."""
    started = time.monotonic()
    # The database away: the next interval tries again and finds the same due work.
    claimed = run_logged(log, "escalation sweep", lambda: escalation.sweep(rt.sessions, rt.settings))
    if claimed is None:
        return
    if claimed:
        log.info("sweep claimed %d escalation(s)", len(claimed))
    rt.deliverer.kick()
    took = time.monotonic() - started
    # A pin and its reply handled at the same instant in two transactions can miss each other.
    with database_errors(log, "applying pending pins"), unit_of_work(rt.sessions) as session:
        timeline.apply_pending_pins(session)
        # The sweep's run for GET /metrics, in this transaction: on SQLite every transaction takes
        # the write lock, and one more per sweep would make the front's inbox INSERTs wait more.
        # Only a sweep that ran is recorded: one the database refused leaves the lag growing.
        if record is None or record.due():
            jobs.record_run(session.connection(), name=jobs.SWEEP, finished_at=utcnow(), duration_seconds=took)


def forget_old_events(rt: Runtime) -> None:
    with database_errors(log, "event id clean-up"), unit_of_work(rt.sessions) as session:
        session.execute(sa.delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < utcnow() - EVENT_MEMORY))
        timeline.apply_pending_pins(session, older_than=utcnow() - EVENT_MEMORY)


def build_scheduler(
    rt: Runtime, *, extra_jobs: list[dict[str, Any]] | None = None, stopping: threading.Event | None = None
) -> BackgroundScheduler:
    """`stopping`: set when the bot shuts down; the jobs that talk to Slack for long end early on it."""
    scheduler = BackgroundScheduler(timezone=UTC)
    stopping = stopping or threading.Event()

    def every(job: Any, seconds: float, job_id: str, *more: Any) -> None:
        # First run at start-up: what lapsed, or was said, while the bot was down is handled now.
        scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            args=[rt, *more],
            id=job_id,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )

    every(sweep_job, rt.settings.escalation_check_interval, jobs.SWEEP, Throttle(RECORD_EVERY))
    if rt.settings.timeline_backfill_interval:
        every(backfill_job, rt.settings.timeline_backfill_interval, "timeline-backfill", stopping)
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
