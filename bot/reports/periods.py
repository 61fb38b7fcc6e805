"""Report periods (ISO weeks, calendar months, quarters, years) as aware UTC [start, end) ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
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
