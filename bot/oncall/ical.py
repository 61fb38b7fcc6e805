"""A schedule as an RFC 5545 iCalendar feed, and the unguessable token that guards its URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from bot.oncall.config import Schedule
from bot.oncall.schedules import Overrides, effective_shifts, shift_at

FEED_WEEKS = 12
_TOKEN_CONTEXT = b"incident-bot oncall ical v1\x00"


def feed_token(secret: str, schedule: str) -> str:
    """The feed URL's token for one schedule: HMAC-SHA256 of its name, URL-safe, no padding.

    One secret serves every schedule, and a token for one opens no other.
    """
    digest = hmac.new(secret.encode(), _TOKEN_CONTEXT + schedule.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_feed_token(secret: str, schedule: str, token: str) -> bool:
    """Constant-time comparison, so the token cannot be guessed byte by byte from response times."""
    return hmac.compare_digest(feed_token(secret, schedule).encode(), token.encode())


def schedule_calendar(
    name: str,
    schedule: Schedule,
    overrides: Overrides | None,
    *,
    now: datetime,
    names: Mapping[str, str] | None = None,
    weeks: int = FEED_WEEKS,
    domain: str = "incident-bot",
) -> bytes:
    """One VEVENT per effective shift (overrides applied) from the current shift for `weeks` weeks.

    The window snaps to shift boundaries, so a shift's event keeps its start, end and UID from
    one fetch to the next; UIDs change only when the shift itself does (an override splits it).
    """
    names = names or {}
    current = shift_at(schedule, now)
    start = current.starts_at if current is not None else now
    last = shift_at(schedule, now + timedelta(weeks=weeks))
    end = last.ends_at if last is not None else now + timedelta(weeks=weeks)
    calendar = Calendar()
    calendar.add("prodid", "-//incident-bot//on-call//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"On call: {name}")
    calendar.add("x-wr-timezone", schedule.timezone)
    stamp = now.astimezone(UTC)
    for segment in effective_shifts(schedule, overrides, start, end):
        person = names.get(segment.user_id, segment.user_id)
        event = Event()
        event.add("uid", f"{name}-{segment.starts_at:%Y%m%dT%H%M%SZ}-{segment.user_id}@{domain}")
        event.add("dtstamp", stamp)
        event.add("dtstart", segment.starts_at.astimezone(schedule.zone))
        event.add("dtend", segment.ends_at.astimezone(schedule.zone))
        event.add("summary", f"On call: {person}")
        description = f"{person} is on call for {name}" + (" (covering)" if segment.overridden else "") + "."
        event.add("description", description)
        event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
