"""The `oncall:` section: the contract's example parses; each mistake is one line naming its path."""

from __future__ import annotations

import copy
from datetime import date, time, timedelta
from typing import Any

import pytest

from bot.oncall.config import OnCallConfigError, parse_oncall, round_length

EXAMPLE: dict[str, Any] = {
    "schedules": {
        "primary": {
            "timezone": "Europe/Berlin",
            "rotation": "weekly",
            "handoff": "mon 09:00",
            "start": date(2026, 1, 5),
            "members": ["U01ALICE", "U02BOB", "U03CAROL"],
            "usergroup": "S0PRIMARY",
        },
        "secondary": {
            "timezone": "America/New_York",
            "rotation": "P3D",
            "handoff": "09:00",
            "start": "2026-01-05",
            "members": ["W04DAVE"],
        },
    },
    "people": {"U01ALICE": {"email": "alice@example.com", "phone": "+4915100000001"}},
    "policies": {
        "default": {
            "steps": [
                {"after": "PT0M", "notify": ["schedule:primary"]},
                {"after": "PT10M", "notify": ["schedule:secondary", "U0LEAD"]},
                {"after": "PT20M", "notify": ["S0SRE"]},
            ],
            "repeat": 1,
        },
        "payments": {"steps": [{"after": 0, "notify": ["U0LEAD"]}]},
    },
    "routes": [
        {"match": {"category": "Payment Gateway"}, "policy": "payments"},
        {"match": {"severity": ["P0", "P1"]}, "policy": "default"},
        {"match": {"severity": "P2", "service": "checkout"}, "policy": "default"},
    ],
    "email": {"to": ["ops-oncall@example.com"], "severities": ["P0"]},
}


def problems(raw: dict[str, Any] | None) -> list[str]:
    with pytest.raises(OnCallConfigError) as caught:
        parse_oncall(raw)
    return caught.value.problems


def broken(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(EXAMPLE)
    *parents, last = path.split("/")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return raw


def test_the_contract_example_parses() -> None:
    config = parse_oncall(EXAMPLE)
    primary = config.schedules["primary"]
    assert primary.step == timedelta(weeks=1)
    assert (primary.handoff_weekday, primary.handoff_time) == (0, time(9))
    assert str(primary.zone) == "Europe/Berlin"
    assert config.schedules["secondary"].step == timedelta(days=3)
    assert config.policies["default"].steps[1].after == timedelta(minutes=10)
    assert config.routes[1].match.severity == ["P0", "P1"]
    assert config.routes[2].match.severity == ["P2"]
    assert config.people["U01ALICE"].email == "alice@example.com"
    assert config.email is not None and config.email.severities == ["P0"]


def test_absent_section_is_an_empty_config() -> None:
    config = parse_oncall(None)
    assert config.schedules == {} and config.routes == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("policies/default/steps/0/notify/0", "schedule:tertiary",
         "oncall.policies.default.steps[0].notify[0]: unknown schedule 'tertiary'"),
        ("routes/0/policy", "pager", "oncall.routes[0].policy: unknown policy 'pager'"),
        ("schedules/primary/members/1", "bob", "oncall.schedules.primary.members[1]: 'bob' is not a Slack user id"),
        ("policies/default/steps/1/notify/1", "#ops",
         "oncall.policies.default.steps[1].notify[1]: '#ops' is neither a Slack user"),
        ("schedules/primary/timezone", "Europe/Berlim", "oncall.schedules.primary.timezone: 'Europe/Berlim' is not a"),
        ("schedules/primary/rotation", "fortnightly", "oncall.schedules.primary.rotation: 'fortnightly' is not a rot"),
        ("schedules/primary/rotation", "P1M", "oncall.schedules.primary.rotation: 'P1M' is not a rotation"),
        ("schedules/primary/handoff", "09:00", "oncall.schedules.primary.handoff: '09:00': a weekly handoff is"),
        ("schedules/primary/handoff", "mon 9am", "oncall.schedules.primary.handoff: 'mon 9am': '9am' is not a time"),
        ("schedules/primary/handoff", "mnd 09:00", "oncall.schedules.primary.handoff: 'mnd 09:00': 'mnd' is not a"),
        ("schedules/secondary/handoff", "mon 09:00", "oncall.schedules.secondary.handoff: 'mon 09:00': a P3D handoff"),
        ("schedules/secondary/handoff", "25:00", "oncall.schedules.secondary.handoff: '25:00': '25:00' is not a time"),
        ("policies/default/steps/1/after", "PT30M",
         "oncall.policies.default.steps[2].after: PT20M is before the previous step's PT30M"),
        ("policies/default/steps/1/after", "-PT5M", "oncall.policies.default.steps[1].after: '-PT5M' is a negative"),
        ("policies/default/steps/1/after", "soon", "oncall.policies.default.steps[1].after: 'soon' is not a duration"),
        ("policies/default/repeat", -1, "oncall.policies.default.repeat: Input should be greater than or equal to 0"),
        ("routes/1/match/severity", ["P0", "SEV1"], "oncall.routes[1].match.severity[1]: 'SEV1' is not a severity"),
        ("routes/0/match/category", "Payments", "oncall.routes[0].match.category: 'Payments' is not a category"),
        ("schedules/primary/usergroup", "U0NOTAGROUP", "oncall.schedules.primary.usergroup: 'U0NOTAGROUP' is not a"),
        ("schedules/primary/members", [], "oncall.schedules.primary.members: List should have at least 1 item"),
        ("schedules/primary/start", "next monday", "oncall.schedules.primary.start: Input should be a valid date"),
        ("people/U01ALICE/email", "alice", "oncall.people.U01ALICE.email: 'alice' is not an e-mail address"),
    ],
)
def test_each_mistake_is_one_line_naming_its_path(path: str, value: Any, expected: str) -> None:
    found = problems(broken(path, value))
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_a_misspelt_key_and_a_missing_one() -> None:
    raw = copy.deepcopy(EXAMPLE)
    raw["schedules"]["primary"]["timezon"] = raw["schedules"]["primary"].pop("timezone")
    assert problems(raw) == [
        "oncall.schedules.primary.timezone: required",
        "oncall.schedules.primary.timezon: unknown key (misspelt?)",
    ]


def test_several_mistakes_are_all_reported() -> None:
    raw = broken("schedules/primary/timezone", "Nowhere")
    raw["schedules"]["secondary"]["members"] = ["dave"]
    assert len(problems(raw)) == 2
    raw = broken("routes/0/policy", "nope")
    raw["policies"]["default"]["steps"][2]["notify"] = ["schedule:nope"]
    assert problems(raw) == [
        "oncall.policies.default.steps[2].notify[0]: unknown schedule 'nope'",
        "oncall.routes[0].policy: unknown policy 'nope'",
    ]


def test_not_a_mapping() -> None:
    assert problems(["schedules"]) == ["oncall: must be a mapping, not list"]  # type: ignore[arg-type]


def test_repeat_needs_spaced_steps() -> None:
    raw = broken("policies/payments/repeat", 2)
    assert problems(raw) == [
        "oncall.policies.payments.repeat: the steps take no time (all at PT0M), so repeats would all fire at "
        "once: give the last step an `after`"
    ]


def test_round_length_carries_the_last_gap_on() -> None:
    config = parse_oncall(EXAMPLE)
    assert round_length(config.policies["default"]) == timedelta(minutes=30)
    single = parse_oncall(broken("policies/payments/steps/0/after", "PT15M")).policies["payments"]
    assert round_length(single) == timedelta(minutes=15)
    late_start = parse_oncall(broken("policies/default/steps/0/after", "PT5M")).policies["default"]
    assert round_length(late_start) == timedelta(minutes=25)  # 5, 10, 20, then 30, 35, 45
