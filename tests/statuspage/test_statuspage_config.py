"""bot/statuspage/config.py: components from CONFIG_FILE, their mappings, and one error per mistake."""

from __future__ import annotations

import pytest

from bot.statuspage.config import StatusPageConfigError, parse_status_page

RAW = {
    "time_zone": "Europe/Berlin",
    "components": [
        {"key": "api", "name": "API", "description": "The public REST API", "services": ["api-gateway"]},
        {"key": "checkout", "name": "Checkout", "group": "Payments", "categories": ["Payment Gateway"]},
        {"key": "db", "name": "Database", "alert_labels": {"team": "dba", "env": ["prod", "eu-prod"]}},
    ],
}


def test_components_parse_in_order() -> None:
    config = parse_status_page(RAW)
    assert config.keys == ("api", "checkout", "db")
    assert config.component("checkout").group == "Payments"  # type: ignore[union-attr]
    assert config.zone.key == "Europe/Berlin"


def test_a_mapping_keyed_by_component_key_is_accepted() -> None:
    config = parse_status_page({"components": {"api": {"name": "API"}, "web": "Website"}})
    assert [(c.key, c.name) for c in config.components] == [("api", "API"), ("web", "Website")]


def test_nothing_configured_means_no_components() -> None:
    assert parse_status_page(None).components == ()


def test_alert_labels_map_to_components() -> None:
    config = parse_status_page(RAW)
    assert config.components_for_alert({"service": "api-gateway", "severity": "critical"}) == ["api"]
    assert config.components_for_alert({"team": "dba", "env": "eu-prod"}) == ["db"]
    assert config.components_for_alert({"team": "dba", "env": "staging"}) == []  # every label must match
    assert config.components_for_alert({"category": "Payment Gateway"}) == ["checkout"]
    assert config.components_for_incident(category="Payment Gateway", service="api-gateway") == ["api", "checkout"]


def test_each_mistake_is_one_line_naming_its_path() -> None:
    raw = {
        "components": [
            {"key": "API!", "name": "API"},
            {"key": "web"},
            {"key": "pay", "name": "Pay", "categories": ["Payments"]},
            {"key": "x", "name": "X", "colour": "red"},
        ]
    }
    with pytest.raises(StatusPageConfigError) as info:
        parse_status_page(raw)
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("status_page.components[0].key: must be 1-64 lower-case")
    assert problems[1] == "status_page.components[1].name: Field required"
    assert problems[2].startswith("status_page.components[2].categories: unknown category 'Payments'")
    assert problems[3].startswith("status_page.components[3].colour: Extra inputs")


def test_duplicate_keys_and_bad_time_zones_are_refused() -> None:
    with pytest.raises(StatusPageConfigError, match=r"component key 'api' is used twice"):
        parse_status_page({"components": [{"key": "api", "name": "A"}, {"key": "api", "name": "B"}]})
    with pytest.raises(StatusPageConfigError, match=r"^status_page.time_zone: unknown time zone 'Mars/Olympus'"):
        parse_status_page({"time_zone": "Mars/Olympus"})
    with pytest.raises(StatusPageConfigError, match=r"^status_page: must be a mapping"):
        parse_status_page(["api"])
