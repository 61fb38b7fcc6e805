"""bot/statuspage/uptime.py against hand-computed figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.statuspage.model import IncidentView, MaintenanceView, UpdateView
from bot.statuspage.uptime import (
    component_impact,
    component_status,
    daily_uptime,
    impact_intervals,
    local_days,
    overall_status,
    window_uptime,
)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def incident(
    n: int,
    impact: str,
    start: datetime,
    end: datetime | None,
    *,
    components: tuple[str, ...] = ("api",),
    changes: tuple[tuple[datetime, str], ...] = (),
) -> IncidentView:
    updates = [UpdateView(n * 10, "investigating", impact, "first", start)]
    updates += [UpdateView(n * 10 + k + 1, "identified", i, "change", t) for k, (t, i) in enumerate(changes)]
    last = changes[-1][1] if changes else impact
    if end is not None:
        updates.append(UpdateView(n * 10 + 9, "resolved", last, "done", end))
    return IncidentView(
        id=n,
        title=f"I{n}",
        impact=last,
        status="resolved" if end else "investigating",
        created_at=start,
        updated_at=end or start,
        resolved_at=end,
        components=components,
        updates=tuple(updates),
    )


def days_of(
    incidents: list[IncidentView],
    days: list[date],
    now: datetime,
    zone: ZoneInfo = ZoneInfo("UTC"),
    maintenance: tuple[MaintenanceView, ...] = (),
):  # type: ignore[no-untyped-def]
    return daily_uptime(component_impact("api", incidents, maintenance, now), days, now, zone)


NOW = at(30, 0)


def test_overlapping_partial_and_major_outages_count_each_minute_once() -> None:
    incidents = [
        incident(1, "partial_outage", at(10, 10), at(10, 12)),
        incident(2, "major_outage", at(10, 11), at(10, 11, 30)),
        incident(3, "partial_outage", at(10, 11, 45), at(10, 12, 30)),
        incident(4, "major_outage", at(10, 11), at(10, 11, 30), components=("web",)),  # another component
    ]
    (day,) = days_of(incidents, [date(2026, 11, 10)], NOW)
    # major 11:00-11:30 = 30 min; partial 10:00-12:30 = 150 min, less the 30 that were major = 120.
    assert (day.major, day.partial) == (30, 120)
    assert day.uptime == pytest.approx(1 - (30 + 0.3 * 120) / 1440)
    assert day.incidents == (1, 2, 3) and day.level == "major_outage"


def test_an_outage_across_midnight_splits_between_days_in_the_page_time_zone() -> None:
    incidents = [incident(1, "major_outage", at(10, 23), at(11, 1, 30))]
    first, second = days_of(incidents, [date(2026, 11, 10), date(2026, 11, 11)], NOW)
    assert (first.major, second.major) == (60, 90)
    assert first.uptime == pytest.approx(1 - 60 / 1440) and second.uptime == pytest.approx(1 - 90 / 1440)
    # In Berlin (UTC+1 in November) the outage begins at local midnight: all of it on the 11th.
    berlin = ZoneInfo("Europe/Berlin")
    first, second = days_of(incidents, [date(2026, 11, 10), date(2026, 11, 11)], NOW, berlin)
    assert (first.major, second.major) == (0, 150)


def test_an_update_may_change_the_impact() -> None:
    changed = incident(
        1,
        "partial_outage",
        at(10, 10),
        at(10, 11),
        changes=((at(10, 10, 20), "major_outage"), (at(10, 10, 50), "degraded_performance")),
    )
    assert [(s.minute, e.minute, i) for s, e, i in impact_intervals(changed, NOW)] == [
        (0, 20, "partial_outage"),
        (20, 50, "major_outage"),
        (50, 0, "degraded_performance"),
    ]
    (day,) = days_of([changed], [date(2026, 11, 10)], NOW)
    assert (day.major, day.partial, day.degraded) == (30, 20, 10)
    assert day.uptime == pytest.approx(1 - (30 + 6) / 1440)  # degraded performance is not downtime


def test_maintenance_is_shown_but_is_not_downtime() -> None:
    window = MaintenanceView(1, "DB upgrade", ("api",), at(10, 2), at(10, 4), "Upgrading", at(1, 0))
    (day,) = days_of([], [date(2026, 11, 10)], NOW, maintenance=(window,))
    assert (day.maintenance, day.uptime, day.level) == (120, 1.0, "under_maintenance")
    assert component_status("api", [], [window], at(10, 3)) == "under_maintenance"
    assert component_status("web", [], [window], at(10, 3)) == "operational"
    assert component_status("api", [], [window], at(10, 4)) == "operational"
    assert overall_status({"api": "under_maintenance", "web": "operational"}) == (
        "maintenance",
        "Service Under Maintenance",
    )


def test_a_90_day_window_with_partial_days_at_its_edges() -> None:
    now = at(2, 6, month=12)
    days = local_days(now, 90)
    assert (days[0], days[-1], len(days)) == (date(2026, 9, 4), date(2026, 12, 2), 90)
    incidents = [
        # Began the day before the window: only its last two hours fall inside.
        incident(1, "major_outage", at(3, 22, month=9), at(4, 2, month=9)),
        # Still going: counted up to now, and today counts only its six hours so far.
        incident(2, "partial_outage", at(2, 5, month=12), None),
    ]
    result = days_of(incidents, days, now)
    assert (result[0].major, result[0].minutes) == (120, 1440)
    assert (result[-1].partial, result[-1].minutes) == (60, 360)
    assert result[-1].uptime == pytest.approx(1 - 18 / 360)
    assert window_uptime(result) == pytest.approx(1 - (120 + 18) / (89 * 1440 + 360))


def test_a_day_of_daylight_saving_change_has_its_own_length() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    (day,) = days_of([], [date(2026, 10, 25)], NOW, berlin)
    assert day.minutes == 25 * 60


def test_component_status_is_the_worst_unresolved_impact() -> None:
    open_partial = incident(1, "partial_outage", NOW - timedelta(hours=1), None)
    open_major = incident(2, "major_outage", NOW - timedelta(hours=1), None, components=("api", "web"))
    resolved = incident(3, "major_outage", NOW - timedelta(hours=3), NOW - timedelta(hours=2), components=("db",))
    window = MaintenanceView(1, "m", ("api", "db"), NOW - timedelta(hours=1), NOW + timedelta(hours=1), "", NOW)
    incidents = [open_partial, open_major, resolved]
    assert component_status("api", incidents, [window], NOW) == "major_outage"  # an incident beats maintenance
    assert component_status("db", incidents, [window], NOW) == "under_maintenance"
    assert component_status("cdn", incidents, [window], NOW) == "operational"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"a": "operational", "b": "operational"}, ("none", "All Systems Operational")),
        ({"a": "major_outage", "b": "operational"}, ("major", "Partial System Outage")),
        ({"a": "major_outage", "b": "major_outage"}, ("critical", "Major System Outage")),
        ({"a": "partial_outage", "b": "operational"}, ("minor", "Minor Service Outage")),
        ({"a": "partial_outage"}, ("major", "Partial System Outage")),
        ({"a": "degraded_performance", "b": "operational"}, ("minor", "Partially Degraded Service")),
        ({"a": "degraded_performance"}, ("minor", "Degraded System Service")),
        ({"a": "partial_outage", "b": "under_maintenance"}, ("minor", "Minor Service Outage")),
        ({}, ("none", "All Systems Operational")),
    ],
)
def test_overall_status_as_statuspage_computes_it(statuses: dict[str, str], expected: tuple[str, str]) -> None:
    assert overall_status(statuses) == expected


def test_an_incident_on_no_configured_component_still_raises_the_overall_status() -> None:
    orphan = incident(1, "major_outage", NOW, None, components=("removed",))
    assert overall_status({}, [orphan]) == ("critical", "Major System Outage")
    assert overall_status({"api": "operational"}, [orphan]) == ("critical", "Major System Outage")
    on_page = incident(2, "major_outage", NOW, None, components=("api",))
    assert overall_status({"api": "major_outage", "web": "operational"}, [on_page]) == (
        "major",
        "Partial System Outage",
    )
