"""Uptime and status, pure: impact intervals per component, daily uptime, component and overall status.

A day's uptime is 1 − (major-outage minutes + 0.3 × partial-outage minutes) / minutes in the day
(Statuspage's weighting). Intervals are merged per component, so two incidents overlapping count
once, and a minute in both a major and a partial outage counts as major only. Degraded performance
and maintenance are shown, never counted as downtime.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.statuspage.model import (
    COMPONENT_RANK,
    IMPACT_RANK,
    INCIDENT_IMPACT,
    ComponentStatus,
    Impact,
    IncidentView,
    MaintenanceView,
)

UTC = ZoneInfo("UTC")
PARTIAL_WEIGHT = 0.3
FORMULA = "1 − (major-outage minutes + 0.3 × partial-outage minutes) / 1440"

Interval = tuple[datetime, datetime]


def impact_intervals(incident: IncidentView, now: datetime) -> list[tuple[datetime, datetime, str]]:
    """[start, end) spans with the impact in force: from publication to resolution (else now),
    the impact changing at each update that changes it."""
    end = incident.resolved_at or now
    start = incident.created_at
    current = incident.updates[0].impact if incident.updates else incident.impact
    spans: list[tuple[datetime, datetime, str]] = []
    for update in incident.updates:
        at = min(max(update.created_at, incident.created_at), end)
        if update.impact != current:
            if at > start:
                spans.append((start, at, current))
            start, current = at, update.impact
    if end > start:
        spans.append((start, end, current))
    return spans


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def subtract(intervals: Sequence[Interval], cut: Sequence[Interval]) -> list[Interval]:
    """`intervals` minus `cut`, both merged."""
    result: list[Interval] = []
    for start, end in intervals:
        pieces = [(start, end)]
        for c_start, c_end in cut:
            next_pieces = []
            for p_start, p_end in pieces:
                if c_end <= p_start or c_start >= p_end:
                    next_pieces.append((p_start, p_end))
                    continue
                if c_start > p_start:
                    next_pieces.append((p_start, c_start))
                if c_end < p_end:
                    next_pieces.append((c_end, p_end))
            pieces = next_pieces
        result.extend(pieces)
    return result


@dataclass(frozen=True)
class ComponentImpact:
    """A component's merged, disjoint impact: a minute belongs to its worst impact only."""

    major: list[Interval]
    partial: list[Interval]
    degraded: list[Interval]
    maintenance: list[Interval]
    incidents: list[tuple[datetime, datetime, int]]  # each incident's whole span on this component


def component_impact(
    key: str, incidents: Iterable[IncidentView], maintenance: Iterable[MaintenanceView], now: datetime
) -> ComponentImpact:
    spans: dict[str, list[Interval]] = {impact.value: [] for impact in Impact}
    touched: list[tuple[datetime, datetime, int]] = []
    for incident in incidents:
        if key not in incident.components:
            continue
        for start, end, impact in impact_intervals(incident, now):
            spans[impact].append((start, end))
        touched.append((incident.created_at, incident.resolved_at or now, incident.id))
    major = merge(spans[Impact.MAJOR_OUTAGE])
    partial = subtract(merge(spans[Impact.PARTIAL_OUTAGE]), major)
    degraded = subtract(subtract(merge(spans[Impact.DEGRADED_PERFORMANCE]), major), merge(partial))
    windows = merge((m.starts_at, min(m.ends_at, now)) for m in maintenance if key in m.components)
    return ComponentImpact(major, partial, degraded, windows, touched)


@dataclass(frozen=True)
class DayUptime:
    day: date
    minutes: float  # of the day counted: the whole day, or up to now for today
    major: float
    partial: float
    degraded: float
    maintenance: float
    incidents: tuple[int, ...]  # public incidents that touched this component that day

    @property
    def uptime(self) -> float:
        if self.minutes <= 0:
            return 1.0
        return max(0.0, 1 - (self.major + PARTIAL_WEIGHT * self.partial) / self.minutes)

    @property
    def level(self) -> str:
        """The worst thing that happened that day, for the bar's colour and pattern."""
        for name, minutes in (
            ("major_outage", self.major),
            ("partial_outage", self.partial),
            ("degraded_performance", self.degraded),
            ("under_maintenance", self.maintenance),
        ):
            if minutes > 0:
                return name
        return "operational"


def local_days(now: datetime, count: int, zone: ZoneInfo = UTC) -> list[date]:
    """The `count` local dates ending with today, oldest first."""
    today = now.astimezone(zone).date()
    return [today - timedelta(days=n) for n in range(count - 1, -1, -1)]


def day_bounds(day: date, zone: ZoneInfo = UTC) -> Interval:
    # Local midnight to local midnight: 23 or 25 hours on a daylight-saving change.
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _per_day(intervals: Sequence[Interval], bounds: Sequence[Interval]) -> list[float]:
    """Minutes of the sorted, disjoint `intervals` inside each of the ascending `bounds` (one pass)."""
    minutes = []
    first = 0
    for lo, hi in bounds:
        while first < len(intervals) and intervals[first][1] <= lo:
            first += 1
        total = 0.0
        n = first
        while n < len(intervals) and intervals[n][0] < hi:
            total += max(0.0, (min(intervals[n][1], hi) - max(intervals[n][0], lo)).total_seconds() / 60)
            n += 1
        minutes.append(total)
    return minutes


def daily_uptime(impact: ComponentImpact, days: Sequence[date], now: datetime, zone: ZoneInfo = UTC) -> list[DayUptime]:
    """One figure per day; `days` ascending (as local_days gives them)."""
    bounds = []
    for day in days:
        lo, hi = day_bounds(day, zone)
        bounds.append((lo, max(lo, min(hi, now))))
    major, partial = _per_day(impact.major, bounds), _per_day(impact.partial, bounds)
    degraded, maintenance = _per_day(impact.degraded, bounds), _per_day(impact.maintenance, bounds)
    touched: list[set[int]] = [set() for _ in days]
    starts = [lo for lo, _ in bounds]
    for start, end, public_id in impact.incidents:
        for n in range(max(0, bisect.bisect_right(starts, start) - 1), len(bounds)):
            lo, hi = bounds[n]
            if lo >= end:
                break
            if start < hi and end > lo:
                touched[n].add(public_id)
    result = []
    for n, (day, (lo, hi)) in enumerate(zip(days, bounds, strict=True)):
        incidents = tuple(sorted(touched[n]))
        result.append(
            DayUptime(
                day=day,
                minutes=(hi - lo).total_seconds() / 60,
                major=major[n],
                partial=partial[n],
                degraded=degraded[n],
                maintenance=maintenance[n],
                incidents=incidents,
            )
        )
    return result


def window_uptime(days: Sequence[DayUptime]) -> float:
    """The whole window's uptime: weighted outage minutes over all minutes counted."""
    minutes = sum(d.minutes for d in days)
    if minutes <= 0:
        return 1.0
    lost = sum(d.major + PARTIAL_WEIGHT * d.partial for d in days)
    return max(0.0, 1 - lost / minutes)


def component_status(
    key: str, incidents: Iterable[IncidentView], maintenance: Iterable[MaintenanceView], now: datetime
) -> str:
    """The worst impact of its unresolved public incidents, else under maintenance, else operational."""
    impacts = [i.impact for i in incidents if i.resolved_at is None and key in i.components]
    if impacts:
        return max(impacts, key=lambda i: IMPACT_RANK[Impact(i)])
    if any(key in m.components and m.active(now) for m in maintenance):
        return ComponentStatus.UNDER_MAINTENANCE.value
    return ComponentStatus.OPERATIONAL.value


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=lambda s: COMPONENT_RANK[ComponentStatus(s)], default=ComponentStatus.OPERATIONAL.value)


INDICATOR_RANK = {"none": 0, "maintenance": 1, "minor": 2, "major": 3, "critical": 4}
INDICATOR_DESCRIPTION = {
    "none": "All Systems Operational",
    "maintenance": "Service Under Maintenance",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major System Outage",
}


def overall_status(statuses: Mapping[str, str], unresolved: Iterable[IncidentView] = ()) -> tuple[str, str]:
    """(indicator, description) as Statuspage computes its top-level status from the components
    (key → status). An unresolved incident on no component of the page (none configured, or its
    components since removed) still raises the status to its own impact, as on Statuspage."""
    present = set(statuses.values())
    every = len(present) == 1
    if "major_outage" in present:
        indicator, description = ("critical", "Major System Outage") if every else ("major", "Partial System Outage")
    elif "partial_outage" in present:
        indicator, description = ("major", "Partial System Outage") if every else ("minor", "Minor Service Outage")
    elif "degraded_performance" in present:
        indicator = "minor"
        description = "Degraded System Service" if every else "Partially Degraded Service"
    elif "under_maintenance" in present:
        indicator, description = "maintenance", "Service Under Maintenance"
    else:
        indicator, description = "none", "All Systems Operational"
    for incident in unresolved:
        if incident.resolved_at is not None or any(key in statuses for key in incident.components):
            continue
        raised = INCIDENT_IMPACT[Impact(incident.impact)]
        if INDICATOR_RANK[raised] > INDICATOR_RANK[indicator]:
            indicator, description = raised, INDICATOR_DESCRIPTION[raised]
    return indicator, description
