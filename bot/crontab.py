"""Crontab expressions with crontab's meaning, in a time zone: croniter behind two functions.

APScheduler 3's CronTrigger.from_crontab counts day-of-week from Monday = 0 and ANDs day-of-month
with day-of-week; croniter reads them as cron does (0 and 7 are Sunday, 1 is Monday; the two day
fields OR when both are restricted) and adds `#n`, the n-th such weekday of the month (`mon#1`).
Everything here is pure: the scheduler's trigger, the start-up catch-up and `incident-bot check`
all ask these same functions, so they can never disagree about when a digest is due.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterError

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
_DAYS = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
_NAMES: dict[int, set[str]] = {3: _MONTHS, 4: _DAYS}
_SYNTAX = re.compile(r"^[0-9a-z*/,#-]+$")


class CrontabError(ValueError):
    """An expression that is not a 5-field crontab (with `#n`); the message says what is wrong."""


def validate(expr: str) -> str:
    """The expression, stripped, if it is a 5-field crontab that fires at some time; else CrontabError.

    Only crontab and `#n` are accepted: croniter's further extensions (`L`, `W`, `H`, a seconds or
    a year field) are not crontab, and an operator reading the setting should not have to know them.
    """
    fields = expr.split()
    if len(fields) != len(FIELDS):
        raise CrontabError(f"{expr.strip()!r} is not a 5-field crontab (minute hour day-of-month month day-of-week)")
    for index, field in enumerate(fields):
        lowered = field.lower()
        if not _SYNTAX.match(lowered):
            raise CrontabError(f"{expr.strip()!r}: {FIELDS[index]} field {field!r} is not crontab")
        for word in re.findall(r"[a-z]+", field, flags=re.IGNORECASE):
            if word.lower() not in _NAMES.get(index, set()):
                raise CrontabError(
                    f"{expr.strip()!r}: {word!r} in the {FIELDS[index]} field is not crontab "
                    "(names are jan…dec and sun…sat; `#n` picks the n-th weekday)"
                )
        if "#" in field and index != 4:
            raise CrontabError(f"{expr.strip()!r}: `#n` belongs in the day-of-week field")
    normal = " ".join(fields)
    try:
        # strict: a date that never comes (31 February) is refused rather than never firing.
        croniter.expand(normal, strict=True)
        croniter(normal, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except (CroniterError, ValueError) as exc:
        raise CrontabError(f"{normal!r} is not a valid crontab: {exc}") from None
    return normal


def next_fire(expr: str, after: datetime, tz: str) -> datetime:
    """The first time strictly after `after` at which the crontab fires in `tz`, as aware UTC.

    Daylight saving time is handled as Vixie cron does: a time skipped when the clocks go forward
    fires at the first instant after the gap (02:30 becomes 03:00), and a time the clocks pass twice
    when they go back fires once, at its first pass, unless the hour field is a wildcard (`*`, `*/2`).
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    zone = ZoneInfo(tz)
    fires = croniter(expr, after.astimezone(zone))
    once_per_wall_time = not expr.split()[1].startswith("*")
    while True:
        fire: datetime = fires.get_next(datetime)
        if once_per_wall_time and _second_pass(fire):
            continue
        return fire.astimezone(UTC)


def first_fire_from(expr: str, start: datetime, tz: str) -> datetime:
    """The first time at or after `start` at which the crontab fires."""
    return next_fire(expr, start - timedelta(microseconds=1), tz)


def _second_pass(moment: datetime) -> bool:
    # fold=1 is the second pass over a wall time; it is a real repeat only if the offset changed.
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()
