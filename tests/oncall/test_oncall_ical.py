"""The iCalendar feed, parsed back with icalendar; the feed token."""

from __future__ import annotations

from datetime import UTC, timedelta

from icalendar import Calendar
from oncall_fixtures import override, schedule, utc

from bot.oncall.ical import check_feed_token, feed_token, schedule_calendar

NOW = utc(2026, 3, 18, 12)  # a Wednesday; Bob's shift began Monday 16 March 09:00 CET (week 10: Bob)


def _events(feed: bytes) -> list:  # type: ignore[no-untyped-def]
    return list(Calendar.from_ical(feed).walk("VEVENT"))


def test_one_event_per_effective_shift_for_twelve_weeks() -> None:
    s = schedule()
    cover = override("U04DAVE", utc(2026, 3, 20, 12), utc(2026, 3, 21, 12), utc(2026, 3, 1))
    feed = schedule_calendar("primary", s, [cover], now=NOW, names={"U02BOB": "Bob", "U04DAVE": "Dave"})
    calendar = Calendar.from_ical(feed)
    assert calendar["X-WR-CALNAME"] == "On call: primary"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    events = _events(feed)
    summaries = [str(e["SUMMARY"]) for e in events]
    assert summaries[:4] == ["On call: Bob", "On call: Dave", "On call: Bob", "On call: U03CAROL"]
    first = events[0]
    assert first["DTSTART"].dt == utc(2026, 3, 16, 8)
    assert str(first["DTSTART"].dt.tzinfo) == "Europe/Berlin"
    assert first["DTEND"].dt == utc(2026, 3, 20, 12)
    assert events[1]["DTSTART"].dt == utc(2026, 3, 20, 12) and "covering" in str(events[1]["DESCRIPTION"])
    # The spring change: Carol's shift from 23 March is an hour short and ends at 09:00 CEST.
    # (In UTC: Python subtracts two times of one zone by their wall clocks.)
    length = events[3]["DTEND"].dt.astimezone(UTC) - events[3]["DTSTART"].dt.astimezone(UTC)
    assert length == timedelta(days=7, hours=-1)
    assert events[3]["DTEND"].dt.astimezone(s.zone).hour == 9
    # Twelve weeks ahead, whole shifts: 13 rotation shifts, one of them cut in three by the cover.
    assert len(events) == 13 + 2
    assert events[-1]["DTEND"].dt >= NOW + timedelta(weeks=12)
    for event in events:
        assert event["DTSTAMP"].dt == NOW
    assert len({str(e["UID"]) for e in events}) == len(events)


def test_uids_are_stable_between_fetches() -> None:
    s = schedule()
    first = {str(e["UID"]): e["DTSTART"].dt for e in _events(schedule_calendar("primary", s, [], now=NOW))}
    later = {str(e["UID"]): e["DTSTART"].dt
             for e in _events(schedule_calendar("primary", s, [], now=NOW + timedelta(hours=5)))}
    assert first == later


def test_a_schedule_that_starts_later_lists_its_first_shifts() -> None:
    s = schedule(start=NOW.date() + timedelta(days=30))
    events = _events(schedule_calendar("primary", s, [], now=NOW))
    assert events and events[0]["DTSTART"].dt > NOW


def test_feed_tokens() -> None:
    token = feed_token("secret", "primary")
    assert token == feed_token("secret", "primary")
    assert token != feed_token("secret", "secondary") and token != feed_token("other", "primary")
    assert "=" not in token and "+" not in token and "/" not in token
    assert check_feed_token("secret", "primary", token)
    assert not check_feed_token("secret", "secondary", token)
    assert not check_feed_token("secret", "primary", token[:-1])
