"""Crontab expressions as people say them ("Mondays 10:00 UTC"), for the common forms; else the expression."""

from __future__ import annotations

import re

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_DAY_NAMES = {name[:3].lower(): index for index, name in enumerate(_DAYS)}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_NAMES = {name[:3].lower(): index for index, name in enumerate(_MONTHS, start=1)}
_ORDINALS = ("first", "second", "third", "fourth", "fifth")


def cron_text(expression: str, timezone: str = "UTC") -> str:
    """`0 10 * * mon` -> "Mondays 10:00 UTC"; a form not handled here comes back as `expression`.

    Crontab's meaning: day-of-week 0 and 7 are Sunday; `mon#1` is the first Monday of the month.
    Restricting both day fields (cron then fires on either) is left as the expression.
    """
    fields = expression.split()
    if len(fields) != 5:
        return expression
    minute, hour, day, month, weekday = fields
    if not (re.fullmatch(r"\d{1,2}", minute) and re.fullmatch(r"\d{1,2}", hour)):
        return expression
    if int(minute) > 59 or int(hour) > 23:
        return expression
    days = _days(day, weekday)
    months = _months(month)
    if days is None or months is None:
        return expression
    return f"{days}{months} {int(hour):02d}:{int(minute):02d} {timezone}"


def _days(day: str, weekday: str) -> str | None:
    if day != "*" and weekday != "*":
        return None
    if day == "*" and weekday == "*":
        return "Every day"
    if weekday == "*":
        if not re.fullmatch(r"\d{1,2}", day) or not 1 <= int(day) <= 31:
            return None
        return f"Day {int(day)} of the month"
    nth = re.fullmatch(r"(\w+)#([1-5])", weekday.lower())
    if nth:
        found = _weekday(nth.group(1))
        return None if found is None else f"The {_ORDINALS[int(nth.group(2)) - 1]} {_DAYS[found]} of the month"
    span = re.fullmatch(r"(\w+)-(\w+)", weekday.lower())
    if span:
        first, last = _weekday(span.group(1)), _weekday(span.group(2))
        if first is None or last is None or first >= last:
            return None
        if (first, last) == (1, 5):
            return "Weekdays"
        return f"{_DAYS[first]} to {_DAYS[last]}"
    chosen = [_weekday(part) for part in weekday.lower().split(",")]
    if any(found is None for found in chosen):
        return None
    names = [f"{_DAYS[found]}s" for found in dict.fromkeys(c for c in chosen if c is not None)]
    return _and(names)


def _months(month: str) -> str | None:
    if month == "*":
        return ""
    chosen = []
    for part in month.lower().split(","):
        value = int(part) if part.isdigit() else _MONTH_NAMES.get(part[:3]) if len(part) == 3 else None
        if value is None or not 1 <= value <= 12:
            return None
        chosen.append(_MONTHS[value - 1])
    return f" in {_and(list(dict.fromkeys(chosen)))}"


def _weekday(value: str) -> int | None:
    if value.isdigit():
        number = int(value)
        return number % 7 if 0 <= number <= 7 else None
    return _DAY_NAMES.get(value) if len(value) == 3 else None


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
