"""What every output shows, computed once from a snapshot: components with status and uptime, groups,
the overall status, active and recent incidents, maintenance. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.statuspage import uptime
from bot.statuspage.config import ComponentConfig, StatusPageConfig
from bot.statuspage.model import IncidentView, MaintenanceView, Snapshot

UPTIME_DAYS = 90
RECENT_DAYS = 14


@dataclass(frozen=True)
class PageInfo:
    """The page's identity: Statuspage clients expect a page id, a name, a URL and a time zone."""

    name: str = "Status"
    url: str | None = None  # STATUS_PAGE_URL: absolute links in feeds and the API
    page_id: str = "incident-bot"


@dataclass(frozen=True)
class ComponentSummary:
    config: ComponentConfig
    position: int
    status: str
    days: tuple[uptime.DayUptime, ...]
    uptime: float  # over the whole window
    updated_at: datetime

    @property
    def key(self) -> str:
        return self.config.key


@dataclass(frozen=True)
class GroupSummary:
    key: str  # "group-<slug of its name>"
    name: str
    position: int
    status: str
    components: tuple[ComponentSummary, ...]


@dataclass(frozen=True)
class Summary:
    info: PageInfo
    config: StatusPageConfig
    snapshot: Snapshot
    components: tuple[ComponentSummary, ...]  # in config order
    groups: tuple[GroupSummary, ...]
    indicator: str
    description: str
    active: tuple[IncidentView, ...]
    recent: tuple[IncidentView, ...]  # resolved in the last RECENT_DAYS days, newest first
    upcoming_maintenance: tuple[MaintenanceView, ...]  # scheduled or in progress, soonest first
    days: tuple[date, ...]

    @property
    def now(self) -> datetime:
        return self.snapshot.now

    def component(self, key: str) -> ComponentSummary | None:
        return next((c for c in self.components if c.key == key), None)

    def component_name(self, key: str) -> str:
        component = self.config.component(key)
        return component.name if component else key

    def incident(self, public_id: int) -> IncidentView | None:
        return next((i for i in self.snapshot.incidents if i.id == public_id), None)

    def top_level(self) -> list[ComponentSummary | GroupSummary]:
        """Components and groups in page order; a group stands where its first component stood."""
        items: list[ComponentSummary | GroupSummary] = []
        groups = {g.name: g for g in self.groups}
        for component in self.components:
            group = component.config.group
            if group is None:
                items.append(component)
            elif groups[group] not in items:
                items.append(groups[group])
        return items


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "group"


def _last_change(key: str, snapshot: Snapshot) -> datetime:
    times = [snapshot.first_seen]
    for incident in snapshot.incidents:
        if key in incident.components:
            times += [u.created_at for u in incident.updates]
    for window in snapshot.maintenance:
        if key in window.components:
            times += [t for t in (window.starts_at, window.ends_at) if t <= snapshot.now]
    return max(times)


def summarise(snapshot: Snapshot, config: StatusPageConfig, info: PageInfo) -> Summary:
    now, zone = snapshot.now, config.zone
    days = uptime.local_days(now, UPTIME_DAYS, zone)
    components = []
    for position, component in enumerate(config.components, start=1):
        impact = uptime.component_impact(component.key, snapshot.incidents, snapshot.maintenance, now)
        daily = uptime.daily_uptime(impact, days, now, zone)
        components.append(
            ComponentSummary(
                config=component,
                position=position,
                status=uptime.component_status(component.key, snapshot.incidents, snapshot.maintenance, now),
                days=tuple(daily),
                uptime=uptime.window_uptime(daily),
                updated_at=_last_change(component.key, snapshot),
            )
        )
    groups = []
    names = list(dict.fromkeys(c.group for c in config.components if c.group))
    for offset, name in enumerate(names, start=1):
        members = tuple(c for c in components if c.config.group == name)
        groups.append(
            GroupSummary(
                key=f"group-{slug(name)}",
                name=name,
                position=len(components) + offset,
                status=uptime.worst(c.status for c in members),
                components=members,
            )
        )
    active = tuple(i for i in snapshot.incidents if i.resolved_at is None)
    indicator, description = uptime.overall_status({c.key: c.status for c in components}, active)
    since = now - timedelta(days=RECENT_DAYS)
    recent = tuple(i for i in snapshot.incidents if i.resolved_at is not None and i.resolved_at >= since)
    upcoming = tuple(sorted((m for m in snapshot.maintenance if m.ends_at > now), key=lambda m: m.starts_at))
    return Summary(
        info=info,
        config=config,
        snapshot=snapshot,
        components=tuple(components),
        groups=tuple(groups),
        indicator=indicator,
        description=description,
        active=active,
        recent=recent,
        upcoming_maintenance=upcoming,
        days=tuple(days),
    )
