"""ISO 8601 durations as on-call config writes them: `PT10M`, `P3D`, `P1W`, or a number of seconds.

Our own small parser rather than pydantic's: a rotation is a step in local wall-clock time, so we
need the duration as written (a negative sign is reported, not silently accepted), and months and
years, which have no fixed length, are refused with a reason instead of a vague parse error.
"""

from __future__ import annotations

import re
from datetime import timedelta

_ISO = re.compile(
    r"^(?P<sign>-)?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_CALENDAR_UNITS = re.compile(r"^-?P(?:\d+Y)|^-?P(?:\d+Y)?\d+M", re.IGNORECASE)


def parse_duration(value: object) -> timedelta:
    """A duration from ISO 8601 text or a number of seconds; ValueError with a readable reason."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration: use ISO 8601 such as PT10M or P3D")
    elif isinstance(value, int | float):
        duration = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip().upper()
        match = _ISO.match(text)
        if match is None or text in ("P", "PT", "-P", "-PT") or text.endswith("T"):
            if _CALENDAR_UNITS.match(text):
                raise ValueError(f"{value!r}: months and years have no fixed length; use days or weeks (P30D, P4W)")
            raise ValueError(f"{value!r} is not a duration: use ISO 8601 such as PT10M or P3D")
        parts = {name: float(number) for name, number in match.groupdict().items() if name != "sign" and number}
        duration = timedelta(**parts)
        if match.group("sign"):
            duration = -duration
    else:
        raise ValueError(f"{value!r} is not a duration: use ISO 8601 such as PT10M or P3D")
    if duration < timedelta(0):
        raise ValueError(f"{value!r} is a negative duration")
    return duration


def format_duration(duration: timedelta) -> str:
    """The shortest ISO 8601 form (`PT10M`, `P3D`, `P1DT12H`), for messages and `check`."""
    seconds = int(duration.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")
    if clock or not days:
        text += "T" + (clock or "0M")
    return text
