"""bot/statuspage/api.py: every endpoint validates against Statuspage v2's schema, with the right values."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import sp_data
from statuspage_schemas import SCHEMAS

from bot.statuspage import api
from storage import db

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _stamps(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (_stamps(v) if not k.endswith("_at") else [v] if v else [])]
    if isinstance(value, list):
        return [s for item in value for s in _stamps(item)]
    return []


@pytest.mark.parametrize("path", sorted(api.ENDPOINTS))
def test_every_endpoint_matches_its_schema(path: str, sessions: db.SessionFactory) -> None:
    sp_data.populate(sessions)
    body = json.loads(json.dumps(api.ENDPOINTS[path](sp_data.summary(sessions))))
    jsonschema.validate(body, SCHEMAS[path], format_checker=jsonschema.FormatChecker())
    assert all(STAMP.match(s) for s in _stamps(body)), _stamps(body)


def test_the_schemas_would_notice_a_wrong_field(sessions: db.SessionFactory) -> None:
    sp_data.populate(sessions)
    body = api.summary_json(sp_data.summary(sessions))
    del body["components"][0]["position"]
    with pytest.raises(jsonschema.ValidationError, match="'position' is a required property"):
        jsonschema.validate(body, SCHEMAS["/api/v2/summary.json"])


def test_summary_values(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    body = api.summary_json(sp_data.summary(sessions))
    assert body["page"] == {
        "id": "acme",
        "name": "Acme Status",
        "url": "https://status.example.com",
        "time_zone": "UTC",
        "updated_at": "2026-12-02T11:30:00.000Z",
    }
    assert body["status"] == {"indicator": "major", "description": "Partial System Outage"}
    statuses = {c["id"]: (c["status"], c["group_id"], c["group"]) for c in body["components"]}
    assert statuses == {
        "api": ("major_outage", None, False),
        "web": ("operational", "group-frontend", False),
        "cdn": ("under_maintenance", "group-frontend", False),
        "db": ("major_outage", None, False),
        "group-frontend": ("under_maintenance", None, True),
    }
    (incident,) = body["incidents"]
    assert (incident["id"], incident["name"], incident["impact"]) == (str(ids["active"]), "API errors", "critical")
    assert incident["shortlink"] == f"https://status.example.com/status/incidents/{ids['active']}"
    assert [c["id"] for c in incident["components"]] == ["api", "db"]
    (update,) = incident["incident_updates"]
    assert update["affected_components"] == [
        {"code": "api", "name": "API", "old_status": "operational", "new_status": "major_outage"},
        {"code": "db", "name": "Database", "old_status": "operational", "new_status": "major_outage"},
    ]
    assert [(m["name"], m["status"]) for m in body["scheduled_maintenances"]] == [
        ("CDN migration", "in_progress"),
        ("Scheduled maintenance", "scheduled"),
    ]


def test_a_resolved_incident_lists_its_updates_newest_first(sessions: db.SessionFactory) -> None:
    ids = sp_data.populate(sessions)
    body = api.incidents_json(sp_data.summary(sessions))
    resolved = next(i for i in body["incidents"] if i["id"] == str(ids["resolved"]))
    assert resolved["status"] == "resolved" and resolved["impact"] == "major"  # its worst: a partial outage
    assert resolved["resolved_at"] == "2026-11-29T13:00:00.000Z"
    transitions = [
        (u["status"], u["affected_components"][0]["old_status"], u["affected_components"][0]["new_status"])
        for u in resolved["incident_updates"]
    ]
    assert transitions == [
        ("resolved", "partial_outage", "operational"),
        ("identified", "degraded_performance", "partial_outage"),
        ("investigating", "operational", "degraded_performance"),
    ]
    assert [i["id"] for i in api.unresolved_json(sp_data.summary(sessions))["incidents"]] == [str(ids["active"])]
