"""Crontab expressions as people say them, and the expression itself for the forms we do not word."""

from __future__ import annotations

import pytest

from bot.reports.schedule_text import cron_text


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("0 10 * * mon", "Mondays 10:00 UTC"),
        ("0 10 * * 1", "Mondays 10:00 UTC"),
        ("0 8 * * 0", "Sundays 08:00 UTC"),
        ("0 8 * * 7", "Sundays 08:00 UTC"),  # crontab: 0 and 7 are both Sunday
        ("30 9 * * 1-5", "Weekdays 09:30 UTC"),
        ("0 10 * * mon-wed", "Monday to Wednesday 10:00 UTC"),
        ("0 10 * * mon,thu", "Mondays and Thursdays 10:00 UTC"),
        ("0 10 * * *", "Every day 10:00 UTC"),
        ("0 10 1 * *", "Day 1 of the month 10:00 UTC"),
        ("0 10 * * mon#1", "The first Monday of the month 10:00 UTC"),
        ("0 10 * 1,4,7,10 mon#1", "The first Monday of the month in January, April, July and October 10:00 UTC"),
    ],
)
def test_common_forms_read_as_words(expression: str, text: str) -> None:
    assert cron_text(expression) == text


def test_the_time_zone_is_named() -> None:
    assert cron_text("0 10 * * mon", "Europe/Berlin") == "Mondays 10:00 Europe/Berlin"


@pytest.mark.parametrize(
    "expression",
    ["*/5 * * * *", "0 10 1-7 * mon", "0 9-17 * * mon", "0 10 * * fri-mon", "0 10 * * xyz", "61 10 * * mon", "0 10"],
)
def test_other_forms_fall_back_to_the_expression(expression: str) -> None:
    assert cron_text(expression) == expression
