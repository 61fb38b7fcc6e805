"""Rotation math: handoffs in local wall time across DST, rotations, overrides, future starts."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from oncall_fixtures import override, schedule, utc

from bot.oncall.schedules import (
    Handoff,
    OverrideIndex,
    Segment,
    effective_shifts,
    handoff_at,
    next_handoffs,
    on_call_at,
    shift_at,
    shifts_between,
)

A, B, C, D = "U01ALICE", "U02BOB", "U03CAROL", "U04DAVE"
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone).astimezone(UTC)  # type: ignore[arg-type, misc]


def test_weekly_first_shift_begins_at_the_start_dates_handoff() -> None:
    s = schedule()
    assert shift_at(s, local(BERLIN, 2026, 1, 5, 8, 59)) is None
    first = shift_at(s, local(BERLIN, 2026, 1, 5, 9, 0))
    assert first is not None
    assert (first.index, first.user_id) == (0, A)
    assert first.starts_at == utc(2026, 1, 5, 8)
    assert first.ends_at == utc(2026, 1, 12, 8)
    assert on_call_at(s, [], local(BERLIN, 2026, 1, 12, 9)) == B
    assert on_call_at(s, [], local(BERLIN, 2026, 1, 19, 9)) == C
    assert on_call_at(s, [], local(BERLIN, 2026, 1, 26, 8, 59)) == C
    assert on_call_at(s, [], local(BERLIN, 2026, 1, 26, 9)) == A


def test_weekly_start_on_another_weekday_begins_at_the_next_handoff_weekday() -> None:
    s = schedule(start=date(2026, 1, 7))  # a Wednesday
    assert handoff_at(s, 0) == local(BERLIN, 2026, 1, 12, 9)
    assert on_call_at(s, [], local(BERLIN, 2026, 1, 10)) is None


def test_weekly_handoff_keeps_wall_time_across_both_berlin_changes() -> None:
    s = schedule()
    spring = shift_at(s, local(BERLIN, 2026, 3, 29, 12))  # clocks went forward at 02:00 that Sunday
    assert spring is not None
    assert spring.starts_at == local(BERLIN, 2026, 3, 23, 9) == utc(2026, 3, 23, 8)
    assert spring.ends_at == local(BERLIN, 2026, 3, 30, 9) == utc(2026, 3, 30, 7)
    assert spring.ends_at - spring.starts_at == timedelta(days=7, hours=-1)
    autumn = shift_at(s, local(BERLIN, 2026, 10, 25, 12))
    assert autumn is not None
    assert autumn.starts_at == utc(2026, 10, 19, 7)
    assert autumn.ends_at == utc(2026, 10, 26, 8)
    assert autumn.ends_at - autumn.starts_at == timedelta(days=7, hours=1)


def test_daily_shifts_are_23_and_25_hours_on_the_berlin_changes() -> None:
    s = schedule(rotation="daily", handoff="09:00", start=date(2026, 3, 1))
    lengths = {
        shift.starts_at.astimezone(BERLIN).date(): shift.ends_at - shift.starts_at
        for shift in shifts_between(s, utc(2026, 3, 27), utc(2026, 3, 31))
    }
    assert lengths[date(2026, 3, 28)] == timedelta(hours=23)
    assert lengths[date(2026, 3, 27)] == lengths[date(2026, 3, 29)] == timedelta(hours=24)
    autumn = shift_at(s, local(BERLIN, 2026, 10, 25, 1))
    assert autumn is not None
    assert autumn.starts_at == local(BERLIN, 2026, 10, 24, 9) == utc(2026, 10, 24, 7)
    assert autumn.ends_at == local(BERLIN, 2026, 10, 25, 9) == utc(2026, 10, 25, 8)
    # Every handoff of the year at 09:00 local.
    for shift in shifts_between(s, utc(2026, 3, 1, 12), utc(2027, 1, 1)):
        assert shift.starts_at.astimezone(BERLIN).time().isoformat() == "09:00:00"


def test_daily_shifts_across_the_new_york_changes() -> None:
    s = schedule(timezone="America/New_York", rotation="daily", handoff="09:00", start=date(2026, 1, 1))
    spring = shift_at(s, local(NEW_YORK, 2026, 3, 7, 20))
    assert spring is not None
    assert (spring.starts_at, spring.ends_at) == (utc(2026, 3, 7, 14), utc(2026, 3, 8, 13))
    autumn = shift_at(s, local(NEW_YORK, 2026, 11, 1, 1, 30))  # the repeated hour, first pass
    assert autumn is not None
    assert (autumn.starts_at, autumn.ends_at) == (utc(2026, 10, 31, 13), utc(2026, 11, 1, 14))
    assert autumn.ends_at - autumn.starts_at == timedelta(hours=25)
    # Inside the repeated hour (both 01:30s), the same shift.
    assert shift_at(s, utc(2026, 11, 1, 5, 30)) == shift_at(s, utc(2026, 11, 1, 6, 30)) == autumn


def test_handoff_inside_the_skipped_and_the_repeated_hour() -> None:
    s = schedule(timezone="America/New_York", rotation="daily", handoff="02:30", start=date(2026, 3, 1))
    # 02:30 does not exist on 8 March: the handoff is at 03:30 EDT.
    assert handoff_at(s, 7) == local(NEW_YORK, 2026, 3, 8, 3, 30) == utc(2026, 3, 8, 7, 30)
    late = schedule(timezone="America/New_York", rotation="daily", handoff="01:30", start=date(2026, 10, 31))
    assert handoff_at(late, 1) == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)


def test_p3d_rotation() -> None:
    s = schedule(rotation="P3D", handoff="09:00", start=date(2026, 3, 26), members=(A, B))
    assert on_call_at(s, [], local(BERLIN, 2026, 3, 26, 9)) == A
    assert on_call_at(s, [], local(BERLIN, 2026, 3, 29, 8, 59)) == A
    assert on_call_at(s, [], local(BERLIN, 2026, 3, 29, 9)) == B  # after the spring change, still 09:00
    assert on_call_at(s, [], local(BERLIN, 2026, 4, 1, 9)) == A
    first = shift_at(s, local(BERLIN, 2026, 3, 27))
    assert first is not None
    assert first.ends_at - first.starts_at == timedelta(days=3, hours=-1)


def test_pt12h_rotation_keeps_its_two_wall_times() -> None:
    s = schedule(rotation="PT12H", handoff="08:00", start=date(2026, 3, 28), members=(A, B))
    starts = [shift.starts_at.astimezone(BERLIN).strftime("%d %H:%M") for shift in shifts_between(
        s, utc(2026, 3, 28, 7), utc(2026, 3, 30, 7)
    )]
    assert starts == ["28 08:00", "28 20:00", "29 08:00", "29 20:00", "30 08:00"]
    assert on_call_at(s, [], local(BERLIN, 2026, 3, 29, 19)) == A


def test_a_schedule_that_starts_in_the_future() -> None:
    s = schedule(start=date(2027, 1, 4))
    t = utc(2026, 12, 2, 12)
    assert shift_at(s, t) is None
    assert on_call_at(s, [], t) is None
    assert effective_shifts(s, [], t, utc(2027, 1, 4)) == []
    handoffs = next_handoffs(s, [], t, 2)
    assert handoffs == [
        Handoff(utc(2027, 1, 4, 8), A, None),
        Handoff(utc(2027, 1, 11, 8), B, A),
    ]


def test_overrides_overlapping_each_other_and_a_handoff() -> None:
    s = schedule()
    created = utc(2026, 1, 1)
    # D covers Sunday 18:00 to Tuesday 12:00 across the Monday 09:00 handoff from A to B;
    # C, created later, covers Monday 12:00–14:00 inside it.
    cover = override(D, local(BERLIN, 2026, 1, 11, 18), local(BERLIN, 2026, 1, 13, 12), created, id=1)
    later = override(C, local(BERLIN, 2026, 1, 12, 12), local(BERLIN, 2026, 1, 12, 14), created + timedelta(hours=1), 2)
    overrides = [later, cover]
    assert on_call_at(s, overrides, local(BERLIN, 2026, 1, 11, 17, 59)) == A
    assert on_call_at(s, overrides, local(BERLIN, 2026, 1, 11, 18)) == D
    assert on_call_at(s, overrides, local(BERLIN, 2026, 1, 12, 9)) == D
    assert on_call_at(s, overrides, local(BERLIN, 2026, 1, 12, 13)) == C
    assert on_call_at(s, overrides, local(BERLIN, 2026, 1, 12, 14)) == D
    assert on_call_at(s, overrides, local(BERLIN, 2026, 1, 13, 12)) == B
    timeline = effective_shifts(s, overrides, local(BERLIN, 2026, 1, 11), local(BERLIN, 2026, 1, 14))
    assert timeline == [
        Segment(A, local(BERLIN, 2026, 1, 11), local(BERLIN, 2026, 1, 11, 18), False),
        Segment(D, local(BERLIN, 2026, 1, 11, 18), local(BERLIN, 2026, 1, 12, 12), True),
        Segment(C, local(BERLIN, 2026, 1, 12, 12), local(BERLIN, 2026, 1, 12, 14), True),
        Segment(D, local(BERLIN, 2026, 1, 12, 14), local(BERLIN, 2026, 1, 13, 12), True),
        Segment(B, local(BERLIN, 2026, 1, 13, 12), local(BERLIN, 2026, 1, 14), False),
    ]
    # The earlier-created override does not win back the overlap when created later is the other way.
    reversed_ = [
        override(D, cover.starts_at, cover.ends_at, created + timedelta(hours=2), id=1),
        later,
    ]
    assert on_call_at(s, reversed_, local(BERLIN, 2026, 1, 12, 13)) == D


def test_an_override_by_the_person_on_call_merges_with_their_shift() -> None:
    s = schedule()
    same = override(A, local(BERLIN, 2026, 1, 12, 9), local(BERLIN, 2026, 1, 13, 9), utc(2026, 1, 1))
    timeline = effective_shifts(s, [same], local(BERLIN, 2026, 1, 5, 9), local(BERLIN, 2026, 1, 19, 9))
    assert [(seg.user_id, seg.starts_at, seg.ends_at) for seg in timeline] == [
        (A, local(BERLIN, 2026, 1, 5, 9), local(BERLIN, 2026, 1, 13, 9)),
        (B, local(BERLIN, 2026, 1, 13, 9), local(BERLIN, 2026, 1, 19, 9)),
    ]


def test_an_override_before_the_schedule_starts_counts() -> None:
    s = schedule(start=date(2027, 1, 4))
    early = override(D, utc(2027, 1, 3), utc(2027, 1, 5), utc(2026, 12, 1))
    assert on_call_at(s, [early], utc(2027, 1, 3, 12)) == D
    timeline = effective_shifts(s, [early], utc(2027, 1, 1), utc(2027, 1, 11))
    assert [(seg.user_id, seg.starts_at) for seg in timeline] == [
        (D, utc(2027, 1, 3)),
        (A, utc(2027, 1, 5)),
    ]
    assert next_handoffs(s, [early], utc(2027, 1, 1), 2) == [
        Handoff(utc(2027, 1, 3), D, None),
        Handoff(utc(2027, 1, 5), A, D),
    ]


def test_next_handoffs_with_overrides_and_a_one_member_rotation() -> None:
    s = schedule()
    cover = override(D, local(BERLIN, 2026, 1, 13, 9), local(BERLIN, 2026, 1, 14, 9), utc(2026, 1, 1))
    t = local(BERLIN, 2026, 1, 12, 10)
    assert next_handoffs(s, [cover], t, 3) == [
        Handoff(local(BERLIN, 2026, 1, 13, 9), D, B),
        Handoff(local(BERLIN, 2026, 1, 14, 9), B, D),
        Handoff(local(BERLIN, 2026, 1, 19, 9), C, B),
    ]
    alone = schedule(members=(A,))
    assert next_handoffs(alone, [cover], t, 3) == [
        Handoff(local(BERLIN, 2026, 1, 13, 9), D, A),
        Handoff(local(BERLIN, 2026, 1, 14, 9), A, D),
    ]


def _brute_on_call(s, overrides, t):  # type: ignore[no-untyped-def]
    covering = [o for o in overrides if o.starts_at <= t < o.ends_at]
    if covering:
        return max(covering, key=lambda o: (o.created_at, o.id)).user_id
    if t < handoff_at(s, 0):
        return None
    k = 0
    while handoff_at(s, k + 1) <= t:
        k += 1
    return s.members[k % len(s.members)]


ROTATIONS = [("daily", "09:00"), ("weekly", "sun 02:30"), ("P3D", "01:30"), ("PT12H", "02:30"), ("PT7H", "00:00")]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]
instants = st.integers(min_value=0, max_value=400 * 24 * 60).map(lambda m: utc(2026, 1, 1) + timedelta(minutes=m))


@settings(max_examples=60, deadline=None)
@given(
    rotation=st.sampled_from(ROTATIONS),
    zone=st.sampled_from(ZONES),
    t=instants,
    spans=st.lists(st.tuples(instants, st.integers(1, 72 * 60), st.sampled_from([A, B, C, D])), max_size=6),
)
def test_on_call_matches_a_brute_force_reading(rotation, zone, t, spans) -> None:  # type: ignore[no-untyped-def]
    s = schedule(timezone=zone, rotation=rotation[0], handoff=rotation[1], start=date(2026, 1, 3))
    overrides = [
        override(user, start, start + timedelta(minutes=minutes), utc(2025, 1, 1) + timedelta(hours=i % 3), id=i)
        for i, (start, minutes, user) in enumerate(spans)
    ]
    assert on_call_at(s, overrides, t) == _brute_on_call(s, overrides, t)
    index = OverrideIndex(overrides)
    window = effective_shifts(s, index, t, t + timedelta(days=4))
    for segment in window:
        assert segment.starts_at < segment.ends_at
        for probe in (segment.starts_at, segment.ends_at - timedelta(seconds=1)):
            assert _brute_on_call(s, overrides, probe) == segment.user_id
    for a, b in itertools.pairwise(window):
        assert a.ends_at <= b.starts_at
        assert not (a.ends_at == b.starts_at and a.user_id == b.user_id)


def test_who_is_on_call_is_a_bisect_not_a_scan() -> None:
    # The aim (benchmarks/oncall_bench.py) is 50 schedules in under 5 ms; here a loose bound that
    # only a scan over every override (or re-indexing per call) would break on a busy CI machine.
    import time

    s = schedule(rotation="daily", handoff="09:00")
    base = utc(2026, 1, 1)
    overrides = [
        override(A if i % 2 else B, base + timedelta(hours=7 * i), base + timedelta(hours=7 * i + 30),
                 utc(2025, 12, 1) + timedelta(minutes=i), id=i)
        for i in range(20_000)
    ]
    index = OverrideIndex(overrides)
    t = utc(2026, 6, 1, 12)
    expected = _brute_on_call(s, overrides, t)
    started = time.perf_counter()
    for _ in range(50):
        assert on_call_at(s, index, t) == expected
    assert time.perf_counter() - started < 0.05
