"""The status page's jobs in the background: next-update reminders, and the static export after changes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.runtime.status_route import page_info
from bot.slack.context import Runtime
from bot.statuspage import reminders, service
from bot.statuspage.site import StatusSite
from storage.db import unit_of_work
from storage.errors import database_errors
from storage.models import utcnow

log = logging.getLogger(__name__)

EXPORT_POLL = 1.0  # seconds between reads of the version row
EXPORT_QUIET = 1.0  # a burst of changes (a publish, then its first update) is exported once, after it
EXPORT_MAX_WAIT = 5.0  # ...but never later than this after the first change of the burst
EXPORT_REFRESH = 600.0  # re-exported anyway now and then: uptime bars and maintenance move with the clock


def remind_job(rt: Runtime, *, now: datetime | None = None) -> list[int]:
    reminded: list[int] = []
    with database_errors(log, "status page reminders"), unit_of_work(rt.sessions) as session:
        reminded = reminders.remind_due(session=session, now=now or utcnow())
    if reminded:
        log.info("reminded the commanders of %d public incident(s)", len(reminded))
        rt.deliverer.kick()
    return reminded


class Exporter:
    """Rewrites STATUS_PAGE_EXPORT_DIR after changes: it polls the version row, which every change
    bumps in its own transaction, so what it sees is committed, whichever process or replica made it."""

    def __init__(self, rt: Runtime, directory: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self.site = StatusSite(rt.sessions, rt.settings.status_page_config, page_info(rt), background=False)
        self._rt = rt
        self._clock = clock
        self.exported: int | None = None  # the version last written
        self._exported_at = 0.0
        self._seen: int | None = None
        self._seen_at = 0.0
        self._pending_since: float | None = None

    def __call__(self) -> bool:
        """One poll; True when it wrote the site."""
        with database_errors(log, "status page export"):
            with unit_of_work(self._rt.sessions) as session:
                version = service.current_version(session=session)
            # Outside that transaction: on SQLite it holds the write lock the export's read would wait for.
            return self._poll(version)
        return False

    def _poll(self, version: int) -> bool:
        t = self._clock()
        if version != self._seen:
            self._seen, self._seen_at = version, t
            self._pending_since = self._pending_since if self._pending_since is not None else t
        if self.exported is not None and version == self.exported and t - self._exported_at < EXPORT_REFRESH:
            return False
        first = self.exported is None
        quiet = t - self._seen_at >= EXPORT_QUIET
        overdue = self._pending_since is not None and t - self._pending_since >= EXPORT_MAX_WAIT
        if not (first or quiet or overdue):
            return False
        try:
            self.site.export(self.directory)
        except OSError as exc:
            log.error("STATUS_PAGE_EXPORT_DIR: cannot write %s: %s", self.directory, exc)
            return False
        self.exported, self._exported_at, self._pending_since = version, t, None
        log.info("exported the status page (version %d) to %s", version, self.directory)
        return True


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    settings = rt.settings
    found: list[dict[str, Any]] = []
    if settings.status_page:
        found.append(_every(remind_job, settings.escalation_check_interval, "statuspage-reminders", [rt]))
    if settings.status_page_export_dir:
        exporter = Exporter(rt, settings.status_page_export_dir)
        found.append(_every(exporter, EXPORT_POLL, "statuspage-export", []))
    return found


def _every(func: Callable[..., Any], seconds: float, job_id: str, args: list[Any]) -> dict[str, Any]:
    return {
        "func": func,
        "trigger": "interval",
        "seconds": seconds,
        "args": args,
        "id": job_id,
        "next_run_time": utcnow(),
        "max_instances": 1,
        "coalesce": True,
    }
