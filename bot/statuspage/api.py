"""Atlassian Statuspage public API v2 shapes (summary, status, components, incidents, maintenance). Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.statuspage.model import INCIDENT_IMPACT, Impact, IncidentView, MaintenanceView, PublicStatus
from bot.statuspage.summary import ComponentSummary, GroupSummary, Summary

LIST_LIMIT = 50  # Statuspage's incidents.json and scheduled-maintenances.json give the 50 most recent

Json = dict[str, Any]


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, as Statuspage writes them."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def page(summary: Summary) -> Json:
    info = summary.info
    return {
        "id": info.page_id,
        "name": info.name,
        "url": info.url or "",
        "time_zone": summary.config.time_zone,
        "updated_at": timestamp(summary.snapshot.updated_at),
    }


def _component(item: ComponentSummary, summary: Summary) -> Json:
    group = item.config.group
    return {
        "id": item.key,
        "name": item.config.name,
        "status": item.status,
        "created_at": timestamp(summary.snapshot.first_seen),
        "updated_at": timestamp(item.updated_at),
        "position": item.position,
        "description": item.config.description,
        "showcase": True,
        "start_date": summary.snapshot.first_seen.astimezone(summary.config.zone).date().isoformat(),
        "group_id": next((g.key for g in summary.groups if g.name == group), None) if group else None,
        "page_id": summary.info.page_id,
        "group": False,
        "only_show_if_degraded": item.config.only_show_if_degraded,
    }


def _group(item: GroupSummary, summary: Summary) -> Json:
    return {
        "id": item.key,
        "name": item.name,
        "status": item.status,
        "created_at": timestamp(summary.snapshot.first_seen),
        "updated_at": timestamp(max(c.updated_at for c in item.components)),
        "position": item.position,
        "description": None,
        "showcase": False,
        "start_date": None,
        "group_id": None,
        "page_id": summary.info.page_id,
        "group": True,
        "only_show_if_degraded": False,
        "components": [c.key for c in item.components],
    }


def components(summary: Summary) -> list[Json]:
    return [_component(c, summary) for c in summary.components] + [_group(g, summary) for g in summary.groups]


def shortlink(summary: Summary, public_id: int) -> str:
    path = f"/status/incidents/{public_id}"
    return (summary.info.url or "").rstrip("/") + path


def _affected(summary: Summary, keys: tuple[str, ...], old: str, new: str) -> list[Json]:
    # Statuspage lists the update's components even when their status stayed the same.
    return [{"code": k, "name": summary.component_name(k), "old_status": old, "new_status": new} for k in keys]


def incident(item: IncidentView, summary: Summary) -> Json:
    updates = []
    previous = "operational"
    for update in item.updates:
        new = "operational" if update.status == PublicStatus.RESOLVED else update.impact
        updates.append(
            {
                "id": str(update.id),
                "status": update.status,
                "body": update.message,
                "incident_id": str(item.id),
                "created_at": timestamp(update.created_at),
                "updated_at": timestamp(update.created_at),
                "display_at": timestamp(update.created_at),
                "affected_components": _affected(summary, item.components, previous, new),
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
        )
        previous = new
    on_page = [summary.component(k) for k in item.components]
    return {
        "id": str(item.id),
        "name": item.title,
        "status": item.status,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "monitoring_at": timestamp(item.monitoring_at),
        "resolved_at": timestamp(item.resolved_at),
        "impact": INCIDENT_IMPACT[Impact(item.worst_impact)],
        "shortlink": shortlink(summary, item.id),
        "started_at": timestamp(item.created_at),
        "page_id": summary.info.page_id,
        "incident_updates": list(reversed(updates)),  # newest first, as Statuspage lists them
        "components": [_component(c, summary) for c in on_page if c is not None],
    }


def maintenance(item: MaintenanceView, summary: Summary) -> Json:
    now = summary.now
    status = item.status(now)
    body = item.message or item.title
    on_page = [summary.component(k) for k in item.components]
    started = item.starts_at if item.starts_at <= now else None
    finished = item.ends_at if status == "completed" else None
    return {
        "id": f"m{item.id}",
        "name": item.title,
        "status": status,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(max(t for t in (item.created_at, started, finished) if t is not None)),
        "monitoring_at": None,
        "resolved_at": timestamp(finished),
        "impact": "maintenance",
        "shortlink": (summary.info.url or "").rstrip("/") + "/status",
        "started_at": timestamp(item.starts_at),  # always a time on Statuspage: here the planned start
        "page_id": summary.info.page_id,
        "incident_updates": [
            {
                "id": f"m{item.id}-{status}",
                "status": status,
                "body": body,
                "incident_id": f"m{item.id}",
                "created_at": timestamp(item.created_at),
                "updated_at": timestamp(item.created_at),
                "display_at": timestamp(item.created_at),
                "affected_components": [
                    {
                        "code": k,
                        "name": summary.component_name(k),
                        "old_status": "operational",
                        "new_status": "under_maintenance",
                    }
                    for k in item.components
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
        ],
        "components": [_component(c, summary) for c in on_page if c is not None],
        "scheduled_for": timestamp(item.starts_at),
        "scheduled_until": timestamp(item.ends_at),
    }


def status_json(summary: Summary) -> Json:
    return {"page": page(summary), "status": {"indicator": summary.indicator, "description": summary.description}}


def summary_json(summary: Summary) -> Json:
    return {
        "page": page(summary),
        "components": components(summary),
        "incidents": [incident(i, summary) for i in summary.active],
        "scheduled_maintenances": [maintenance(m, summary) for m in summary.upcoming_maintenance],
        "status": {"indicator": summary.indicator, "description": summary.description},
    }


def components_json(summary: Summary) -> Json:
    return {"page": page(summary), "components": components(summary)}


def incidents_json(summary: Summary) -> Json:
    items = summary.snapshot.incidents[:LIST_LIMIT]
    return {"page": page(summary), "incidents": [incident(i, summary) for i in items]}


def unresolved_json(summary: Summary) -> Json:
    return {"page": page(summary), "incidents": [incident(i, summary) for i in summary.active]}


def scheduled_maintenances_json(summary: Summary) -> Json:
    items = summary.snapshot.maintenance[:LIST_LIMIT]
    return {"page": page(summary), "scheduled_maintenances": [maintenance(m, summary) for m in items]}


ENDPOINTS = {
    "/api/v2/summary.json": summary_json,
    "/api/v2/status.json": status_json,
    "/api/v2/components.json": components_json,
    "/api/v2/incidents.json": incidents_json,
    "/api/v2/incidents/unresolved.json": unresolved_json,
    "/api/v2/scheduled-maintenances.json": scheduled_maintenances_json,
}
