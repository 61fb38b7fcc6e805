"""An APScheduler 3 trigger that fires when a crontab does, by bot/crontab.py (croniter), not CronTrigger."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.base import BaseTrigger

from bot import crontab


class CrontabTrigger(BaseTrigger):
    """Fires at the times `expr` names in `timezone`, with crontab's meaning (see bot/crontab.py)."""

    __slots__ = ("expr", "timezone")

    def __init__(self, expr: str, timezone: str) -> None:
        self.expr = crontab.validate(expr)
        self.timezone = timezone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # As CronTrigger does: after a previous fire, the next one after it even if that is already
        # past (the scheduler then applies misfire_grace_time and coalesce); else the next from now.
        # Always strictly after the previous fire, or a job would fire again at the same instant.
        if previous_fire_time is not None:
            return crontab.next_fire(self.expr, previous_fire_time, self.timezone)
        return crontab.first_fire_from(self.expr, now, self.timezone)

    def __str__(self) -> str:
        return f"crontab[{self.expr!r}, {self.timezone}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.expr!r}, timezone={self.timezone!r})>"
