"""The pure escalation decision: what is due and when to look again, with frozen time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from bot.incidents.deadlines import Fired, IncidentClock, Policy, contacts_for_level, format_duration, plan
from bot.settings import DEFAULT_RESOLUTION_TARGETS, DEFAULT_RESPONSE_TARGETS, DEFAULT_UPDATE_REMINDER
from storage.models import utcnow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = Policy(
    response_targets=DEFAULT_RESPONSE_TARGETS,
    resolution_targets=DEFAULT_RESOLUTION_TARGETS,
    update_reminder=DEFAULT_UPDATE_REMINDER,
    max_repeats=2,
)


def clock(severity: str = "P0", **kwargs: object) -> IncidentClock:
    return IncidentClock(severity=severity, status=str(kwargs.pop("status", "Investigating")), declared_at=T0, **kwargs)  # type: ignore[arg-type]


def due_kinds(items: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(d.kind.value, d.level) for d in items]


@pytest.mark.parametrize(
    ("severity", "response", "resolution"),
    [("P0", 5, 10), ("P1", 15, 30), ("P2", 60, 120), ("P3", 240, 480)],
)
def test_targets_per_severity(severity: str, response: int, resolution: int) -> None:
    just_before = T0 + timedelta(minutes=response) - timedelta(seconds=1)
    due, later = plan(clock(severity), POLICY, [], just_before)
    assert due == [] and later == T0 + timedelta(minutes=response)
    due, later = plan(clock(severity), POLICY, [], T0 + timedelta(minutes=response))
    assert due_kinds(due) == [("response", 0)]
    assert due[0].target == timedelta(minutes=response)
    due, _ = plan(clock(severity), POLICY, [Fired("response", 0, T0)], T0 + timedelta(minutes=resolution))
    assert ("resolution", 0) in due_kinds(due)


def test_uses_utcnow_under_freezegun() -> None:
    with freeze_time("2026-03-02 09:05:00"):
        due, _ = plan(clock("P0"), POLICY, [], utcnow())
    assert due_kinds(due) == [("response", 0)]
    with freeze_time("2026-03-02 09:04:59"):
        due, later = plan(clock("P0"), POLICY, [], utcnow())
    assert due == [] and later == T0 + timedelta(minutes=5)


def test_acknowledged_at_the_last_second_is_met() -> None:
    acked = clock("P0", acknowledged_at=T0 + timedelta(minutes=5))
    due, later = plan(acked, POLICY, [], T0 + timedelta(minutes=5, seconds=1))
    assert due == []
    assert later == T0 + timedelta(minutes=10)  # only the resolution target is left


def test_acknowledgement_after_the_deadline_but_before_the_sweep_stops_it() -> None:
    late = clock("P0", acknowledged_at=T0 + timedelta(minutes=6))
    due, _ = plan(late, POLICY, [], T0 + timedelta(minutes=6, seconds=5))
    assert "response" not in [k for k, _ in due_kinds(due)]


def test_levels_repeat_every_response_target_at_most_max_repeats() -> None:
    fired: list[Fired] = []
    now = T0 + timedelta(minutes=5)
    for level in range(3):
        due, _ = plan(clock("P0", acknowledged_at=None), POLICY, fired, now)
        response = [d for d in due if d.kind == "response"]
        assert [d.level for d in response] == [level]
        fired.append(Fired("response", level, now))
        _, _later = plan(clock("P0"), POLICY, fired, now)
        now = now + timedelta(minutes=5)
    # After level 2 (max_repeats=2), the response target escalates no more.
    due, _ = plan(
        clock("P0"),
        POLICY,
        [*fired, Fired("resolution", 0, now), Fired("resolution", 1, now), Fired("resolution", 2, now)],
        now + timedelta(hours=5),
    )
    assert due == []


def test_max_repeats_zero_escalates_once() -> None:
    policy = Policy(DEFAULT_RESPONSE_TARGETS, DEFAULT_RESOLUTION_TARGETS, max_repeats=0)
    fired = [Fired("response", 0, T0 + timedelta(minutes=5))]
    due, later = plan(clock("P0"), policy, fired, T0 + timedelta(minutes=9))
    assert due == [] and later == T0 + timedelta(minutes=10)  # only resolution is left


def test_repeat_setting_overrides_the_response_target() -> None:
    policy = Policy(DEFAULT_RESPONSE_TARGETS, DEFAULT_RESOLUTION_TARGETS, repeat=timedelta(minutes=1))
    fired = [Fired("response", 0, T0 + timedelta(minutes=5))]
    _, later = plan(clock("P0"), policy, fired, T0 + timedelta(minutes=5, seconds=10))
    assert later == T0 + timedelta(minutes=6)


def test_a_bot_down_through_several_levels_pages_once_then_widens_on_schedule() -> None:
    now = T0 + timedelta(minutes=30)  # response levels 0, 1, 2 would all have passed
    due, _ = plan(clock("P0"), POLICY, [], now)
    assert [d.level for d in due if d.kind == "response"] == [0]
    fired = [Fired("response", 0, now), Fired("resolution", 0, now)]
    due, later = plan(clock("P0"), POLICY, fired, now)
    assert due == [] and later == now + timedelta(minutes=5)


def test_severity_raise_recomputes_from_declaration_and_is_due_at_once() -> None:
    twenty_in = T0 + timedelta(minutes=20)
    due, later = plan(clock("P2"), POLICY, [], twenty_in)
    assert due == [] and later == T0 + timedelta(hours=1)
    due, _ = plan(clock("P0"), POLICY, [], twenty_in)
    assert due_kinds(due) == [("response", 0), ("resolution", 0)]


def test_resolution_before_and_after_the_deadline() -> None:
    resolved = clock("P1", status="Resolved", acknowledged_at=T0, resolved_at=T0 + timedelta(minutes=10))
    assert plan(resolved, POLICY, [], T0 + timedelta(hours=3)) == ([], None)
    late = clock("P1", status="Resolved", acknowledged_at=T0, resolved_at=T0 + timedelta(minutes=45))
    assert plan(late, POLICY, [], T0 + timedelta(hours=3)) == ([], None)


def test_reopen_past_the_resolution_target_escalates_unless_it_already_did() -> None:
    reopened = clock("P1", acknowledged_at=T0 + timedelta(minutes=1))
    now = T0 + timedelta(hours=2)
    due, _ = plan(reopened, POLICY, [], now)
    assert ("resolution", 0) in due_kinds(due)
    due, _ = plan(reopened, POLICY, [Fired("resolution", 0, T0 + timedelta(minutes=30))], now)
    assert ("resolution", 1) in due_kinds(due)


def test_mitigation_does_not_stop_resolution_escalation() -> None:
    mitigated = clock("P0", status="Mitigated", acknowledged_at=T0 + timedelta(minutes=1))
    due, _ = plan(mitigated, POLICY, [], T0 + timedelta(minutes=10))
    assert ("resolution", 0) in due_kinds(due)


def test_update_nudge_after_silence_only_for_acknowledged_p0_p1() -> None:
    acked = clock("P0", acknowledged_at=T0 + timedelta(minutes=1), last_activity_at=T0 + timedelta(minutes=2))
    fired = [
        Fired("resolution", 0, T0 + timedelta(minutes=10)),
        Fired("resolution", 1, T0 + timedelta(minutes=15)),
        Fired("resolution", 2, T0 + timedelta(minutes=20)),
    ]
    due, later = plan(acked, POLICY, fired, T0 + timedelta(minutes=31))
    assert due == [] and later == T0 + timedelta(minutes=32)
    due, _ = plan(acked, POLICY, fired, T0 + timedelta(minutes=32))
    assert due_kinds(due) == [("update_nudge", 0)]
    # The next nudge counts from the last one, not from the old activity.
    fired.append(Fired("update_nudge", 0, T0 + timedelta(minutes=32)))
    _, later = plan(acked, POLICY, fired, T0 + timedelta(minutes=33))
    assert later == T0 + timedelta(minutes=62)
    # Not before acknowledgement, never for P2/P3, never once resolved.
    assert all(d.kind != "update_nudge" for d in plan(clock("P0"), POLICY, [], T0 + timedelta(hours=2))[0])
    p2 = clock("P2", acknowledged_at=T0)
    assert all(d.kind != "update_nudge" for d in plan(p2, POLICY, [], T0 + timedelta(days=1))[0])
    done = clock("P0", status="Resolved", acknowledged_at=T0, resolved_at=T0 + timedelta(minutes=3))
    assert plan(done, POLICY, [], T0 + timedelta(days=1)) == ([], None)


def test_contacts_widen_by_level() -> None:
    base = ["U1", "S1"]
    levels = [["U2"], ["U3", "U1"]]
    assert contacts_for_level(base, levels, 0) == ["U1", "S1", "U2"]
    assert contacts_for_level(base, levels, 1) == ["U1", "S1", "U2", "U3"]
    assert contacts_for_level(base, None, 3) == ["U1", "S1"]


@pytest.mark.parametrize(("seconds", "text"), [(12, "12s"), (300, "5m"), (3900, "1h 05m"), (3 * 86400 + 7200, "3d 2h")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def _sweep_each_minute(incident: IncidentClock, fired: list[Fired], frozen: Any, minutes: int) -> list[Fired]:
    """Plan as the sweep does, once a minute of frozen time; records what fired, returns the nudges."""
    nudges = []
    for _ in range(minutes):
        for item in plan(incident, POLICY, fired, utcnow())[0]:
            fired.append(Fired(item.kind.value, item.level, utcnow()))
            nudges += [fired[-1]] if item.kind == "update_nudge" else []
        frozen.tick(timedelta(minutes=1))
    return nudges


def test_nudges_stop_after_max_repeats_plus_one_per_quiet_spell() -> None:
    """An idle acknowledged P0 used to be nudged every 30 minutes for ever."""
    acked = clock("P0", acknowledged_at=T0 + timedelta(minutes=1), last_activity_at=T0 + timedelta(minutes=1))
    fired: list[Fired] = []
    with freeze_time(T0) as frozen:
        nudges = _sweep_each_minute(acked, fired, frozen, 6 * 60)
        # ESCALATION_MAX_REPEATS = 2: three nudges, 30 minutes apart, then none however long it idles.
        assert [(n.level, n.fired_at) for n in nudges] == [
            (0, T0 + timedelta(minutes=31)),
            (1, T0 + timedelta(minutes=61)),
            (2, T0 + timedelta(minutes=91)),
        ]
        # Nor does the sweep have to come back for one.
        assert plan(acked, POLICY, fired, utcnow()) == ([], None)

        # A reply in the thread starts a new quiet spell: three more at most, levels going on.
        spoke = utcnow()
        replied = clock("P0", acknowledged_at=acked.acknowledged_at, last_activity_at=spoke)
        nudges = _sweep_each_minute(replied, fired, frozen, 3 * 60)
        assert [(n.level, n.fired_at - spoke) for n in nudges] == [
            (3, timedelta(minutes=30)),
            (4, timedelta(minutes=60)),
            (5, timedelta(minutes=90)),
        ]


def test_no_nudges_while_mitigated_or_resolved() -> None:
    acked = T0 + timedelta(minutes=1)
    with freeze_time(T0) as frozen:
        mitigated = clock("P1", status="Mitigated", acknowledged_at=acked, last_activity_at=acked)
        assert _sweep_each_minute(mitigated, [], frozen, 4 * 60) == []
        resolved = clock("P0", status="Resolved", acknowledged_at=acked, resolved_at=acked + timedelta(minutes=9))
        assert _sweep_each_minute(resolved, [], frozen, 4 * 60) == []
    # Reopened (Investigating again): the reopening's activity starts a spell and nudges resume.
    reopened = clock("P0", acknowledged_at=acked, last_activity_at=T0 + timedelta(hours=5))
    due, _ = plan(reopened, POLICY, [], T0 + timedelta(hours=5, minutes=30))
    assert due_kinds(due)[-1] == ("update_nudge", 0)
