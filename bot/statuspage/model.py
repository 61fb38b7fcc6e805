"""The status page's vocabulary and the read-only views it renders (no internal field has a place here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Impact(StrEnum):
    """A component's state during a public incident, mildest first (Statuspage's component statuses)."""

    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"


class PublicStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    UNDER_MAINTENANCE = "under_maintenance"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"


# Worst last: max() over these ranks picks what a component shows.
COMPONENT_RANK = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.UNDER_MAINTENANCE: 1,
    ComponentStatus.DEGRADED_PERFORMANCE: 2,
    ComponentStatus.PARTIAL_OUTAGE: 3,
    ComponentStatus.MAJOR_OUTAGE: 4,
}
IMPACT_RANK = {Impact.DEGRADED_PERFORMANCE: 1, Impact.PARTIAL_OUTAGE: 2, Impact.MAJOR_OUTAGE: 3}
# Statuspage's incident impact for the worst component status it caused.
INCIDENT_IMPACT = {
    Impact.DEGRADED_PERFORMANCE: "minor",
    Impact.PARTIAL_OUTAGE: "major",
    Impact.MAJOR_OUTAGE: "critical",
}
NEXT_UPDATE_MINUTES = (15, 30, 60)

LABELS = {
    "operational": "Operational",
    "under_maintenance": "Under maintenance",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
    "scheduled": "Scheduled",
    "in_progress": "In progress",
    "completed": "Completed",
}


@dataclass(frozen=True)
class UpdateView:
    """A public update as published. There is deliberately no author: it is never shown."""

    id: int
    status: str
    impact: str
    message: str
    created_at: datetime


@dataclass(frozen=True)
class IncidentView:
    id: int
    title: str
    impact: str  # the current impact
    status: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    components: tuple[str, ...]
    updates: tuple[UpdateView, ...] = field(default=())  # oldest first

    @property
    def worst_impact(self) -> str:
        impacts = [self.impact, *(u.impact for u in self.updates)]
        return max(impacts, key=lambda i: IMPACT_RANK[Impact(i)])

    @property
    def monitoring_at(self) -> datetime | None:
        return next((u.created_at for u in self.updates if u.status == PublicStatus.MONITORING), None)


@dataclass(frozen=True)
class MaintenanceView:
    id: int
    title: str
    components: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    message: str
    created_at: datetime

    def active(self, t: datetime) -> bool:
        return self.starts_at <= t < self.ends_at

    def status(self, t: datetime) -> str:
        """Statuspage's maintenance statuses: scheduled, in_progress, completed."""
        if t < self.starts_at:
            return "scheduled"
        return "in_progress" if t < self.ends_at else "completed"


@dataclass(frozen=True)
class Snapshot:
    """Everything the page shows, read in one transaction at `now`."""

    now: datetime
    version: int
    incidents: tuple[IncidentView, ...]  # newest first
    maintenance: tuple[MaintenanceView, ...]  # by start, newest first
    first_seen: datetime  # the page's own created_at: its oldest record, else now

    @property
    def updated_at(self) -> datetime:
        times = [self.first_seen, *(i.updated_at for i in self.incidents), *(m.created_at for m in self.maintenance)]
        return max(times)
