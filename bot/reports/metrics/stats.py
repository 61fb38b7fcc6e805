"""Pure statistics: percentiles, duration stats, shares, availability from intervals, and the tracker's marks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

from bot.reports.metrics.results import MARK_AMBER, MARK_GREEN, MARK_RED, Availability, CountShare, DurationStats
from bot.reports.periods import Period
from bot.settings import Settings


def union_seconds(intervals: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> float:
    """Length of the union of the intervals clipped to [start, end): overlaps count once."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total = 0.0
    current_start: datetime | None = None
    current_end: datetime | None = None
    for a, b in clipped:
        if current_end is None or a > current_end:
            if current_start is not None and current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = a, b
        elif b > current_end:
            current_end = b
    if current_start is not None and current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total


def availability(intervals: Sequence[tuple[datetime, datetime]], *, period: Period, now: datetime) -> Availability:
    """SLA availability for the period; an in-progress period is measured up to `now`."""
    end = min(period.end, max(now, period.start))
    total = (end - period.start).total_seconds()
    downtime = union_seconds(intervals, period.start, end)
    percent = (total - downtime) / total * 100 if total > 0 else None
    return Availability(total_minutes=total / 60, downtime_minutes=downtime / 60, percent=percent)


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default); None without data."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def duration_stats(samples: Sequence[int], *, total: int | None = None, count: int | None = None) -> DurationStats:
    """Stats of whole-second samples; `total`/`count` (the SQL sum and count) give the mean."""
    if not samples:
        return DurationStats()
    ordered = sorted(samples)
    n = count if count is not None else len(ordered)
    mean = (total if total is not None else sum(ordered)) / n if n else None
    return DurationStats(n, mean, percentile(ordered, 0.5), percentile(ordered, 0.9))


def shares(
    names: Sequence[str], counts: Mapping[str, int], previous: Mapping[str, int], total: int
) -> tuple[CountShare, ...]:
    """Known names first in their canonical order, then any others the data holds."""
    extra = sorted((set(counts) | set(previous)) - set(names))
    return tuple(
        CountShare(name, counts.get(name, 0), counts.get(name, 0) / total if total else None, previous.get(name, 0))
        for name in (*names, *extra)
    )


def below_mark(value: int, limit: int) -> str:
    """Green below the limit, amber up to twice it, red beyond."""
    return MARK_GREEN if value < limit else MARK_AMBER if value < 2 * limit else MARK_RED


def zero_mark(value: int) -> str:
    """Green at zero, amber at one, red beyond."""
    return MARK_GREEN if value == 0 else MARK_AMBER if value == 1 else MARK_RED


def local_today(now: datetime, settings: Settings) -> date:
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(settings.digest_timezone)).date()


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
