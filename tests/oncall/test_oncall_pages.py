"""Paging rules: routes, due steps and their rounds, target resolution, on-call load."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from oncall_fixtures import override, schedule, utc

from bot.oncall.config import parse_oncall
from bot.oncall.pages import (
    Acknowledgement,
    OnCallStretch,
    PageReceived,
    Target,
    channels_for,
    due_steps,
    next_due_at,
    oncall_load,
    plan_notices,
    resolve_targets,
    route_for,
)
from bot.oncall.schedules import on_call_at

CONFIG = parse_oncall(
    {
        "schedules": {
            "primary": {"timezone": "Europe/Berlin", "rotation": "weekly", "handoff": "mon 09:00",
                        "start": "2026-01-05", "members": ["U01ALICE", "U02BOB"]},
            "secondary": {"timezone": "UTC", "rotation": "daily", "handoff": "09:00", "start": "2026-01-05",
                          "members": ["U02BOB", "U03CAROL"]},
            "later": {"timezone": "UTC", "rotation": "daily", "handoff": "09:00", "start": "2030-01-01",
                      "members": ["U04DAVE"]},
        },
        "policies": {
            "default": {
                "steps": [
                    {"after": "PT0M", "notify": ["schedule:primary"]},
                    {"after": "PT10M", "notify": ["schedule:secondary", "U0LEAD", "U02BOB"]},
                    {"after": "PT20M", "notify": ["S0SRE"]},
                ],
                "repeat": 1,
            },
            "payments": {"steps": [{"after": "PT0M", "notify": ["U0LEAD", "schedule:later"]}]},
        },
        "routes": [
            {"match": {"category": "Payment Gateway"}, "policy": "payments"},
            {"match": {"severity": ["P0", "P1"], "service": "api"}, "policy": "payments"},
            {"match": {"severity": ["P0", "P1"]}, "policy": "default"},
        ],
    }
)
DEFAULT = CONFIG.policies["default"]
T0 = utc(2026, 1, 13, 3)  # a Tuesday night: Alice on primary, Carol on secondary (day 8)


def test_first_matching_route_wins() -> None:
    routes = CONFIG.routes
    assert route_for({"severity": "P3", "category": "Payment Gateway"}, routes) == "payments"
    assert route_for({"severity": "P0", "category": "Database", "service": "api"}, routes) == "payments"
    assert route_for({"severity": "P1", "category": "Database"}, routes) == "default"
    assert route_for({"severity": "P2", "category": "Database"}, routes) is None
    assert route_for({"severity": "P0"}, []) is None


def test_due_steps_in_two_rounds() -> None:
    def due(minutes: float) -> list[tuple[int, int]]:
        return [(d.round, d.index) for d in due_steps(DEFAULT, T0, T0 + timedelta(minutes=minutes), False)]

    assert due(0) == [(0, 0)]
    assert due(9.9) == [(0, 0)]
    assert due(10) == [(0, 0), (0, 1)]
    assert due(29) == [(0, 0), (0, 1), (0, 2)]
    # Round 1 carries the rhythm on: 30, 40, 50 minutes.
    assert due(30) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert due(49) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert due(600) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert due_steps(DEFAULT, T0, T0 + timedelta(minutes=600), True) == []
    last = due_steps(DEFAULT, T0, T0 + timedelta(hours=1), False)[-1]
    assert last.due_at == T0 + timedelta(minutes=50)
    assert next_due_at(DEFAULT, T0, T0) == T0 + timedelta(minutes=10)
    assert next_due_at(DEFAULT, T0, T0 + timedelta(minutes=45)) == T0 + timedelta(minutes=50)
    assert next_due_at(DEFAULT, T0, T0 + timedelta(minutes=50)) is None


def test_targets_resolve_schedules_and_are_deduplicated() -> None:
    step = DEFAULT.steps[1]
    assert resolve_targets(step, CONFIG.schedules, {}, T0) == [
        Target("user", "U03CAROL", "secondary"),
        Target("user", "U0LEAD"),
        Target("user", "U02BOB"),
    ]
    # Next day Bob is on secondary and is also named: once, through the schedule.
    assert resolve_targets(step, CONFIG.schedules, {}, T0 + timedelta(days=1)) == [
        Target("user", "U02BOB", "secondary"),
        Target("user", "U0LEAD"),
    ]
    cover = override("U0LEAD", T0 - timedelta(hours=1), T0 + timedelta(hours=1), utc(2026, 1, 1))
    assert resolve_targets(step, CONFIG.schedules, {"secondary": [cover]}, T0) == [
        Target("user", "U0LEAD", "secondary"),
        Target("user", "U02BOB"),
    ]
    assert resolve_targets(DEFAULT.steps[2], CONFIG.schedules, {}, T0) == [Target("usergroup", "S0SRE")]
    # A schedule that has not started yet reaches nobody.
    assert resolve_targets(CONFIG.policies["payments"].steps[0], CONFIG.schedules, {}, T0) == [
        Target("user", "U0LEAD")
    ]


def test_channels() -> None:
    assert channels_for(Target("usergroup", "S0SRE"), email_known=True, webhook=True) == ["mention"]
    assert channels_for(Target("user", "U1"), email_known=False, webhook=False) == ["dm"]
    assert channels_for(Target("user", "U1"), email_known=True, webhook=True) == ["dm", "email", "webhook"]


def test_oncall_load() -> None:
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    zones = {"primary": berlin, "us": new_york}
    week = (utc(2026, 1, 12), utc(2026, 1, 19))
    shifts = [
        OnCallStretch("U01ALICE", "primary", utc(2026, 1, 5, 8), utc(2026, 1, 12, 8)),  # 8 h in the week
        OnCallStretch("U02BOB", "primary", utc(2026, 1, 12, 8), utc(2026, 1, 19, 8)),
        OnCallStretch("U02BOB", "us", utc(2026, 1, 18), utc(2026, 1, 20)),  # overlaps: counted once
        OnCallStretch("U03CAROL", "us", utc(2026, 1, 12), utc(2026, 1, 13)),
    ]
    pages = [
        PageReceived(1, "U02BOB", utc(2026, 1, 12, 12), "primary"),  # 13:00 Berlin: in hours
        PageReceived(1, "U02BOB", utc(2026, 1, 12, 12, 10), "primary"),  # the same page again
        PageReceived(2, "U02BOB", utc(2026, 1, 13, 20), "primary"),  # 21:00 Berlin: out of hours
        PageReceived(3, "U03CAROL", utc(2026, 1, 12, 14)),  # 09:00 New York via her shift: in hours
        PageReceived(4, "U03CAROL", utc(2026, 1, 12, 12)),  # 07:00 New York: out of hours
        PageReceived(5, "U0LEAD", utc(2026, 1, 12, 7)),  # no schedule: UTC, 07:00 is out of hours
        PageReceived(6, "U02BOB", utc(2026, 1, 19, 1)),  # after the period
    ]
    acks = [
        Acknowledgement("INC-1", "U02BOB", utc(2026, 1, 12, 12, 5)),
        Acknowledgement("INC-1", "U02BOB", utc(2026, 1, 12, 12, 6)),
        Acknowledgement("INC-2", "U03CAROL", utc(2026, 1, 11)),  # before the period
    ]
    load = oncall_load(pages, shifts, acks, week, zones)
    assert load["U01ALICE"].hours_on_call == 8 and load["U01ALICE"].pages == 0
    bob = load["U02BOB"]
    assert (bob.pages, bob.pages_out_of_hours, bob.acknowledged) == (2, 1, 1)
    assert bob.hours_on_call == 7 * 24 - 8  # from Mon 08:00; "us" lies within primary: not counted twice
    carol = load["U03CAROL"]
    assert (carol.pages, carol.pages_out_of_hours, carol.hours_on_call, carol.acknowledged) == (2, 1, 24, 0)
    assert (load["U0LEAD"].pages, load["U0LEAD"].pages_out_of_hours) == (1, 1)


def test_load_uses_the_schedules_zone_across_dst() -> None:
    s = schedule(start=date(2026, 3, 23))
    zones = {"primary": s.zone}
    # 07:30 UTC is 08:30 in Berlin in summer (in hours) but 07:30 in UTC (out of hours).
    page = PageReceived(1, "U01ALICE", utc(2026, 3, 30, 7, 30), "primary")
    load = oncall_load([page], [], [], (utc(2026, 3, 1), utc(2026, 4, 1)), zones)
    assert load["U01ALICE"].pages_out_of_hours == 0


def test_plan_notices_resolves_schedules_at_each_steps_due_time() -> None:
    # The page starts 5 minutes before Monday's 09:00 handoff on primary (Bob → Alice); the sweep
    # runs late, after it: step 0 still goes to Bob, who was on call when it fell due.
    started = utc(2026, 1, 19, 7, 55)  # 08:55 in Berlin
    late = started + timedelta(minutes=12)
    assert on_call_at(CONFIG.schedules["primary"], [], late) == "U01ALICE"
    notices = plan_notices(
        DEFAULT, started, late, acknowledged=False, schedules=CONFIG.schedules, overrides={},
        email_known=lambda user: user == "U0LEAD", webhook=True,
    )
    assert [(n.round, n.step, n.target, n.channel, n.schedule) for n in notices] == [
        (0, 0, "U02BOB", "dm", "primary"),
        (0, 0, "U02BOB", "webhook", "primary"),
        (0, 1, "U03CAROL", "dm", "secondary"),
        (0, 1, "U03CAROL", "webhook", "secondary"),
        (0, 1, "U0LEAD", "dm", None),
        (0, 1, "U0LEAD", "email", None),
        (0, 1, "U0LEAD", "webhook", None),
        (0, 1, "U02BOB", "dm", None),
        (0, 1, "U02BOB", "webhook", None),
    ]
    assert plan_notices(DEFAULT, started, late, acknowledged=True, schedules=CONFIG.schedules, overrides={},
                        email_known=lambda user: True, webhook=False) == []
