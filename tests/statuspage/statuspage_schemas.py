"""JSON Schemas of Atlassian Statuspage's public API v2, one per endpoint, from its documented responses
(page, status, components, incidents with incident_updates, scheduled maintenances)."""

from __future__ import annotations

from typing import Any

DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
COMPONENT_STATUS = ["operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"]


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties, **extra}


PAGE = _object(
    {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "url": {"type": "string"},
        "time_zone": {"type": "string"},
        "updated_at": DATE_TIME,
    }
)
STATUS = _object(
    {
        "indicator": {"enum": ["none", "minor", "major", "critical", "maintenance"]},
        "description": {"type": "string", "minLength": 1},
    }
)
COMPONENT = _object(
    {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "status": {"enum": COMPONENT_STATUS},
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
        "position": {"type": "integer"},
        "description": {"type": ["string", "null"]},
        "showcase": {"type": "boolean"},
        "start_date": {"type": ["string", "null"], "format": "date"},
        "group_id": {"type": ["string", "null"]},
        "page_id": {"type": "string"},
        "group": {"type": "boolean"},
        "only_show_if_degraded": {"type": "boolean"},
    },
)
COMPONENT["properties"]["components"] = {"type": "array", "items": {"type": "string"}}  # groups only
AFFECTED = _object(
    {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "old_status": {"enum": COMPONENT_STATUS},
        "new_status": {"enum": COMPONENT_STATUS},
    }
)


def _update(statuses: list[str]) -> dict[str, Any]:
    return _object(
        {
            "id": {"type": "string"},
            "status": {"enum": statuses},
            "body": {"type": "string"},
            "incident_id": {"type": "string"},
            "created_at": DATE_TIME,
            "updated_at": DATE_TIME,
            "display_at": DATE_TIME,
            "affected_components": {"type": ["array", "null"], "items": AFFECTED},
            "deliver_notifications": {"type": "boolean"},
            "custom_tweet": {"type": ["string", "null"]},
            "tweet_id": {"type": ["string", "null"]},
        }
    )


INCIDENT_STATUS = ["investigating", "identified", "monitoring", "resolved", "postmortem"]
MAINTENANCE_STATUS = ["scheduled", "in_progress", "verifying", "completed"]


def _incident(statuses: list[str], impacts: list[str], **more: Any) -> dict[str, Any]:
    return _object(
        {
            "id": {"type": "string", "minLength": 1},
            "name": {"type": "string"},
            "status": {"enum": statuses},
            "created_at": DATE_TIME,
            "updated_at": NULLABLE_DATE_TIME,
            "monitoring_at": NULLABLE_DATE_TIME,
            "resolved_at": NULLABLE_DATE_TIME,
            "impact": {"enum": impacts},
            "shortlink": {"type": "string"},
            "started_at": DATE_TIME,
            "page_id": {"type": "string"},
            "incident_updates": {"type": "array", "items": _update(statuses)},
            "components": {"type": "array", "items": COMPONENT},
            **more,
        }
    )


INCIDENT = _incident(INCIDENT_STATUS, ["none", "minor", "major", "critical"])
MAINTENANCE = _incident(
    MAINTENANCE_STATUS,
    ["none", "maintenance", "minor", "major", "critical"],
    scheduled_for=DATE_TIME,
    scheduled_until=DATE_TIME,
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "/api/v2/summary.json": _object(
        {
            "page": PAGE,
            "components": {"type": "array", "items": COMPONENT},
            "incidents": {"type": "array", "items": INCIDENT},
            "scheduled_maintenances": {"type": "array", "items": MAINTENANCE},
            "status": STATUS,
        }
    ),
    "/api/v2/status.json": _object({"page": PAGE, "status": STATUS}),
    "/api/v2/components.json": _object({"page": PAGE, "components": {"type": "array", "items": COMPONENT}}),
    "/api/v2/incidents.json": _object({"page": PAGE, "incidents": {"type": "array", "items": INCIDENT}}),
    "/api/v2/incidents/unresolved.json": _object({"page": PAGE, "incidents": {"type": "array", "items": INCIDENT}}),
    "/api/v2/scheduled-maintenances.json": _object(
        {"page": PAGE, "scheduled_maintenances": {"type": "array", "items": MAINTENANCE}}
    ),
}
