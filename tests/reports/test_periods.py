"""Period arithmetic: ISO weeks, months and quarters in the digest's time zone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bot.reports.periods import current_period, custom_period, period_before, periods_back, previous_period


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_digest_on_monday_reports_last_monday_to_this_monday() -> None:
    period = previous_period("weekly", utc(2026, 11, 23, 10, 0), "UTC")
    assert (period.start, period.end) == (utc(2026, 11, 16), utc(2026, 11, 23))
    assert period.label == "2026-W47"
    assert period.kind == "weekly"


def test_current_month_and_quarter_labels_and_bounds() -> None:
    month = current_period("monthly", utc(2026, 11, 23, 10), "UTC")
    assert (month.start, month.end, month.label) == (utc(2026, 11, 1), utc(2026, 12, 1), "November 2026")
    quarter = current_period("quarterly", utc(2026, 11, 23, 10), "UTC")
    assert (quarter.start, quarter.end, quarter.label) == (utc(2026, 10, 1), utc(2027, 1, 1), "Q4 2026")
    year = current_period("yearly", utc(2026, 11, 23), "UTC")
    assert (year.start, year.end, year.label) == (utc(2026, 1, 1), utc(2027, 1, 1), "2026")


def test_period_before_crosses_year_boundaries() -> None:
    january = current_period("monthly", utc(2026, 1, 4), "UTC")
    december = period_before(january)
    assert (december.start, december.end, december.label) == (utc(2025, 12, 1), utc(2026, 1, 1), "December 2025")
    q1 = current_period("quarterly", utc(2026, 2, 1), "UTC")
    assert period_before(q1).label == "Q4 2025"
    assert previous_period("monthly", utc(2026, 3, 1), "UTC").label == "February 2026"


def test_iso_week_label_at_year_end() -> None:
    # 2026 has 53 ISO weeks: the week of Monday 2026-12-28 is W53 although it ends in 2027.
    week = current_period("weekly", utc(2027, 1, 1, 12), "UTC")
    assert week.label == "2026-W53"
    assert (week.start, week.end) == (utc(2026, 12, 28), utc(2027, 1, 4))


def test_boundaries_follow_the_digest_time_zone_across_dst() -> None:
    # 05:00 UTC on Monday is midnight in New York (EST): the new week has just begun there.
    week = previous_period("weekly", utc(2026, 11, 23, 10), "America/New_York")
    assert (week.start, week.end) == (utc(2026, 11, 16, 5), utc(2026, 11, 23, 5))
    # US DST ended on 2026-11-01: that week is one hour longer.
    dst_week = current_period("weekly", utc(2026, 10, 28, 12), "America/New_York")
    assert dst_week.start == utc(2026, 10, 26, 4)
    assert dst_week.end == utc(2026, 11, 2, 5)
    assert dst_week.duration == timedelta(days=7, hours=1)
    assert period_before(week).end == week.start


def test_periods_back_are_consecutive_and_oldest_first() -> None:
    months = periods_back(current_period("monthly", utc(2026, 3, 15), "UTC"), 4)
    assert [m.label for m in months] == ["December 2025", "January 2026", "February 2026", "March 2026"]
    assert all(a.end == b.start for a, b in itertools.pairwise(months))


def test_custom_period_before_is_the_same_length() -> None:
    window = custom_period(utc(2026, 11, 1), utc(2026, 11, 31 - 1), "last 29 days")
    before = period_before(window)
    assert before.end == window.start
    assert before.duration == window.duration


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        current_period("weekly", datetime(2026, 1, 1), "UTC")
    with pytest.raises(ValueError, match="unknown period kind"):
        current_period("fortnightly", utc(2026, 1, 1), "UTC")
