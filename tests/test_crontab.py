"""bot/crontab.py and its APScheduler trigger: crontab's meaning, checked against a table of cases.

Every case is computed from an explicit instant, so nothing waits for a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot import crontab
from bot.runtime.crontab_trigger import CrontabTrigger
from bot.settings import Settings

BERLIN = ZoneInfo("Europe/Berlin")


def fires(expr: str, after: datetime, count: int, tz: str = "UTC") -> list[str]:
    """The next `count` fire times after `after`, as local "Mon 2026-12-07 10:00" strings."""
    found: list[str] = []
    moment = after
    for _ in range(count):
        moment = crontab.next_fire(expr, moment, tz)
        assert moment.tzinfo is UTC
        found.append(moment.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M"))
    return found


TUESDAY = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # Tuesday 2026-12-01 12:00 UTC


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # Day-of-week: 0 and 7 are Sunday, 1 is Monday (APScheduler's from_crontab: 1 is Tuesday).
        ("0 10 * * 0", TUESDAY, ["Sun 2026-12-06 10:00", "Sun 2026-12-13 10:00"]),
        ("0 10 * * 7", TUESDAY, ["Sun 2026-12-06 10:00", "Sun 2026-12-13 10:00"]),
        ("0 10 * * 1", TUESDAY, ["Mon 2026-12-07 10:00", "Mon 2026-12-14 10:00"]),
        ("0 10 * * 5-7", TUESDAY, ["Fri 2026-12-04 10:00", "Sat 2026-12-05 10:00", "Sun 2026-12-06 10:00"]),
        # Ranges and names.
        (
            "0 10 * * 1-5",
            datetime(2026, 12, 4, 12, tzinfo=UTC),
            ["Mon 2026-12-07 10:00", "Tue 2026-12-08 10:00", "Wed 2026-12-09 10:00"],
        ),
        (
            "0 10 * * mon-fri",
            datetime(2026, 12, 4, 12, tzinfo=UTC),
            ["Mon 2026-12-07 10:00", "Tue 2026-12-08 10:00", "Wed 2026-12-09 10:00"],
        ),
        ("0 10 * * MON", TUESDAY, ["Mon 2026-12-07 10:00"]),
        ("0 10 1 jan *", TUESDAY, ["Fri 2027-01-01 10:00", "Sat 2028-01-01 10:00"]),
        ("0 10 * jan mon", TUESDAY, ["Mon 2027-01-04 10:00", "Mon 2027-01-11 10:00"]),
        # Steps.
        (
            "*/15 * * * *",
            datetime(2026, 12, 1, 10, 7, tzinfo=UTC),
            ["Tue 2026-12-01 10:15", "Tue 2026-12-01 10:30", "Tue 2026-12-01 10:45", "Tue 2026-12-01 11:00"],
        ),
        (
            "0-30/10 9 * * *",
            datetime(2026, 12, 1, 8, tzinfo=UTC),
            [
                "Tue 2026-12-01 09:00",
                "Tue 2026-12-01 09:10",
                "Tue 2026-12-01 09:20",
                "Tue 2026-12-01 09:30",
                "Wed 2026-12-02 09:00",
            ],
        ),
        # Day-of-month and day-of-week both restricted: either fires, as cron ORs them.
        (
            "0 10 1 * mon",
            datetime(2026, 11, 25, tzinfo=UTC),
            ["Mon 2026-11-30 10:00", "Tue 2026-12-01 10:00", "Mon 2026-12-07 10:00"],
        ),
        # `#n`: the n-th such weekday of the month.
        (
            "0 10 * * mon#1",
            TUESDAY,
            ["Mon 2026-12-07 10:00", "Mon 2027-01-04 10:00", "Mon 2027-02-01 10:00", "Mon 2027-03-01 10:00"],
        ),
        ("0 10 * * fri#3", TUESDAY, ["Fri 2026-12-18 10:00", "Fri 2027-01-15 10:00"]),
        # No `L`: the 31st fires only in the months that have one.
        (
            "0 10 31 * *",
            datetime(2026, 11, 1, tzinfo=UTC),
            ["Thu 2026-12-31 10:00", "Sun 2027-01-31 10:00", "Wed 2027-03-31 10:00"],
        ),
        # The defaults.
        ("0 10 * * mon", datetime(2026, 11, 26, 12, tzinfo=UTC), ["Mon 2026-11-30 10:00", "Mon 2026-12-07 10:00"]),
        (
            "0 10 * 1,4,7,10 mon#1",
            datetime(2026, 11, 26, tzinfo=UTC),
            ["Mon 2027-01-04 10:00", "Mon 2027-04-05 10:00", "Mon 2027-07-05 10:00", "Mon 2027-10-04 10:00"],
        ),
    ],
)
def test_crontab_means_crontab(expr: str, after: datetime, expected: list[str]) -> None:
    assert fires(crontab.validate(expr), after, len(expected)) == expected


def test_the_default_settings_are_monday_and_first_mondays() -> None:
    config = Settings(_env_file=None)  # type: ignore[call-arg]
    after = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert fires(config.digest_cron, after, 2) == ["Mon 2026-11-30 10:00", "Mon 2026-12-07 10:00"]
    assert fires(config.monthly_digest_cron, after, 2) == ["Mon 2026-12-07 10:00", "Mon 2027-01-04 10:00"]
    assert fires(config.quarterly_digest_cron, after, 2) == ["Mon 2027-01-04 10:00", "Mon 2027-04-05 10:00"]


def test_apscheduler_from_crontab_is_what_we_replace() -> None:
    # The reason for all this: APScheduler counts day-of-week from Monday = 0.
    tuesday = CronTrigger.from_crontab("0 10 * * 1", timezone="UTC").get_next_fire_time(None, TUESDAY)
    assert tuesday is not None and tuesday.strftime("%a") == "Tue"
    monday = CrontabTrigger("0 10 * * 1", "UTC").get_next_fire_time(None, TUESDAY)
    assert monday == datetime(2026, 12, 7, 10, tzinfo=UTC)


def test_a_time_skipped_by_spring_forward_fires_just_after_the_gap() -> None:
    # Europe/Berlin, Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 never happens.
    after = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    first = crontab.next_fire("30 2 * * *", after, "Europe/Berlin")
    assert first == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, once
    assert crontab.next_fire("30 2 * * *", first, "Europe/Berlin") == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    assert fires("30 2 * * *", after, 3, "Europe/Berlin") == [
        "Sun 2026-03-29 03:00",
        "Mon 2026-03-30 02:30",
        "Tue 2026-03-31 02:30",
    ]


def test_a_time_passed_twice_by_fall_back_fires_once() -> None:
    # Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 comes twice, a fixed-time job runs once.
    after = datetime(2026, 10, 24, 12, tzinfo=BERLIN)
    first = crontab.next_fire("30 2 * * *", after, "Europe/Berlin")
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert crontab.next_fire("30 2 * * *", first, "Europe/Berlin") == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    # A wildcard hour is a wall clock ticking: it fires in both passes.
    start = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    assert [
        f - start
        for f in [
            crontab.next_fire("*/30 * * * *", start + timedelta(minutes=30 * i), "Europe/Berlin") for i in range(3)
        ]
    ] == [timedelta(minutes=30), timedelta(minutes=60), timedelta(minutes=90)]


def test_the_time_zone_is_the_digest_time_zone() -> None:
    # Monday 10:00 in Sydney (UTC+11 in December) is Sunday 23:00 UTC.
    assert crontab.next_fire("0 10 * * mon", TUESDAY, "Australia/Sydney") == datetime(2026, 12, 6, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    "expr",
    [
        "0 10 * * 8",
        "0 10 * *",
        "0 0 10 * * mon",
        "0 10 L * *",
        "0 10 * * L5",
        "0 10 * * 5L",
        "0 10 15W * *",
        "H 10 * * *",
        "0 10 * * mon#6",
        "0 10 1#1 * *",
        "0 10 31 2 *",
        "0 10 * * funday",
        "0 10 ? * mon",
    ],
)
def test_what_is_not_crontab_is_refused(expr: str) -> None:
    with pytest.raises(crontab.CrontabError) as caught:
        crontab.validate(expr)
    assert expr.split()[0] in str(caught.value) and "\n" not in str(caught.value)


def test_trigger_fires_at_or_after_now_and_catches_up_after_a_previous_fire() -> None:
    trigger = CrontabTrigger("0 10 * * mon", "Europe/Berlin")
    monday = datetime(2026, 12, 7, 9, tzinfo=UTC)  # 10:00 in Berlin
    assert trigger.get_next_fire_time(None, monday) == monday
    assert trigger.get_next_fire_time(None, monday + timedelta(seconds=1)) == monday + timedelta(days=7)
    # After a previous fire the next is the one after it, even if already past: the scheduler then
    # applies misfire_grace_time and coalesce, as with CronTrigger.
    later = monday + timedelta(days=10)
    assert trigger.get_next_fire_time(monday, later) == monday + timedelta(days=7)
    assert trigger.get_next_fire_time(monday, monday) == monday + timedelta(days=7)
    assert "0 10 * * mon" in str(trigger) and "Europe/Berlin" in repr(trigger)
