"""Report periods (ISO weeks, calendar months, quarters, years) as aware UTC [start, end) ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

PeriodKind = Literal["weekly", "monthly", "quarterly", "yearly", "custom"]
KINDS: tuple[str, ...] = ("weekly", "monthly", "quarterly", "yearly")


@dataclass(frozen=True)
class Period:
    """A half-open range [start, end) of UTC instants, with its calendar boundaries in `timezone`."""

    kind: str
    start: datetime
    end: datetime
    label: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware")
        if self.end < self.start:
            raise ValueError("period ends before it starts")

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(_zone(self.timezone))


def custom_period(start: datetime, end: datetime, label: str, *, tz: str | tzinfo = "UTC") -> Period:
    """A rolling window such as "the last 30 days": no calendar arithmetic applies to it."""
    return Period("custom", start.astimezone(UTC), end.astimezone(UTC), label, _zone_name(tz))


def current_period(kind: str, now: datetime, tz: str | tzinfo = "UTC") -> Period:
    """The period of `kind` that contains `now`, with calendar boundaries taken in `tz`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = _zone(tz)
    local = now.astimezone(zone)
    if kind == "weekly":
        first = local.date() - timedelta(days=local.weekday())
        start = _midnight(first.year, first.month, first.day, zone)
        following = first + timedelta(days=7)
        end = _midnight(following.year, following.month, following.day, zone)
        year, week, _ = first.isocalendar()
        label = f"{year}-W{week:02d}"
    elif kind == "monthly":
        start = _midnight(local.year, local.month, 1, zone)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = _midnight(year, month, 1, zone)
        label = f"{start.astimezone(zone):%B %Y}"
    elif kind == "quarterly":
        quarter = (local.month - 1) // 3
        start = _midnight(local.year, quarter * 3 + 1, 1, zone)
        year, month = (local.year + 1, 1) if quarter == 3 else (local.year, quarter * 3 + 4)
        end = _midnight(year, month, 1, zone)
        label = f"Q{quarter + 1} {local.year}"
    elif kind == "yearly":
        start = _midnight(local.year, 1, 1, zone)
        end = _midnight(local.year + 1, 1, 1, zone)
        label = str(local.year)
    else:
        raise ValueError(f"unknown period kind {kind!r}: use one of {', '.join(KINDS)}")
    return Period(kind, start.astimezone(UTC), end.astimezone(UTC), label, _zone_name(tz))


class PeriodError(ValueError):
    """A period the operator typed that is not one: the message says what to type instead."""


_PERIOD_FORMS = {
    "weekly": "YYYY-Www (ISO week, e.g. 2026-W44)",
    "monthly": "YYYY-MM (e.g. 2026-10)",
    "quarterly": "YYYY-Qn (e.g. 2026-Q3)",
}
_PERIOD_KINDS = (
    ("weekly", re.compile(r"(\d{4})-W(\d{2})")),
    ("monthly", re.compile(r"(\d{4})-(\d{2})")),
    ("quarterly", re.compile(r"(\d{4})-Q(\d)")),
)


def named_period(kind: str, text: str, tz: str | tzinfo = "UTC", *, now: datetime | None = None) -> Period:
    """`2026-W44`, `2026-10` or `2026-Q3` as the week, month or quarter of `kind`, in `tz`.

    Raises PeriodError for another shape, a week, month or quarter that does not exist, one of
    another kind than `kind`, or one that has not begun at `now`.
    """
    found = next(((k, m) for k, pattern in _PERIOD_KINDS if (m := pattern.fullmatch(text.strip()))), None)
    if found is None:
        raise PeriodError(f"--period {text!r} is not a period: use {_PERIOD_FORMS.get(kind, _PERIOD_FORMS['monthly'])}")
    found_kind, match = found
    if found_kind != kind:
        raise PeriodError(f"--period {text} is a {found_kind} period: use `report {found_kind} --period {text}`")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        if kind == "weekly":
            day = date.fromisocalendar(year, number, 1)
        elif kind == "monthly":
            day = date(year, number, 1)
        else:
            if not 1 <= number <= 4:
                raise ValueError("quarter")
            day = date(year, 3 * number - 2, 1)
    except ValueError:
        raise PeriodError(f"--period {text} does not exist: use {_PERIOD_FORMS[kind]}") from None
    period = current_period(kind, datetime(day.year, day.month, day.day, 12, tzinfo=_zone(tz)), tz)
    if now is not None and period.start > now:
        raise PeriodError(f"--period {text} has not begun yet")
    return period


def period_before(period: Period) -> Period:
    """The period of the same kind that ends where `period` starts."""
    if period.kind == "custom":
        length = period.duration
        return Period("custom", period.start - length, period.start, f"before {period.label}", period.timezone)
    return current_period(period.kind, period.start - timedelta(microseconds=1), period.timezone)


def previous_period(kind: str, now: datetime, tz: str | tzinfo = "UTC") -> Period:
    """The last complete period: what a digest posted at `now` reports on."""
    return period_before(current_period(kind, now, tz))


def periods_back(period: Period, count: int) -> list[Period]:
    """`count` consecutive periods ending with `period`, oldest first."""
    found = [period]
    while len(found) < count:
        found.append(period_before(found[-1]))
    return found[::-1]


def _midnight(year: int, month: int, day: int, zone: tzinfo) -> datetime:
    return datetime(year, month, day, tzinfo=zone)


def _zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _zone_name(tz: str | tzinfo) -> str:
    return tz if isinstance(tz, str) else str(tz)
