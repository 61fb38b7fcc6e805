"""Pure rotation math: who is on call when, from a schedule, its overrides and an instant.

Shift k starts at handoff k and belongs to member k mod n. Handoff k is the first handoff plus k
rotation steps *in local wall-clock time*, so a daily 09:00 handoff stays at 09:00 across a
daylight-saving change and that day's shift is 23 or 25 hours long. The first handoff is the
schedule's handoff time on its `start` date (weekly: on the first handoff weekday on or after it).
A handoff at a wall time the clock skips (02:30 on the spring change) happens when the clock reads
it after the jump, 03:30; one at a wall time that occurs twice happens at the first of them.

Overrides replace whoever is on call for [starts_at, ends_at); where two overlap the one created
last wins. An `OverrideIndex` flattens them once into sorted, non-overlapping segments, so a look-up
is one bisect (pass the index, not the list, where speed matters: the list is indexed on each call).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.oncall.config import Schedule


@dataclass(frozen=True)
class Shift:
    """Shift `index` of the rotation: [starts_at, ends_at) in UTC."""

    index: int
    user_id: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Override:
    """Someone covering a schedule for [starts_at, ends_at); `id` breaks ties in `created_at`."""

    user_id: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    id: int = 0


@dataclass(frozen=True)
class Segment:
    """A stretch of the effective timeline: one person on call, from the rotation or an override."""

    user_id: str
    starts_at: datetime
    ends_at: datetime
    overridden: bool = False


@dataclass(frozen=True)
class Handoff:
    """The moment `user_id` takes over from `previous_user_id` (None: nobody was on call)."""

    at: datetime
    user_id: str
    previous_user_id: str | None


class OverrideIndex:
    """Overrides flattened into sorted, disjoint segments with the winner of each."""

    __slots__ = ("ends", "last_end", "starts", "users")

    def __init__(self, overrides: Sequence[Override] = ()) -> None:
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []
        self.users: list[str] = []
        self.last_end: datetime | None = max((o.ends_at for o in overrides), default=None)
        self._flatten([o for o in overrides if o.ends_at > o.starts_at])

    def _flatten(self, overrides: list[Override]) -> None:
        overrides.sort(key=lambda o: o.starts_at)
        boundaries = sorted({o.starts_at for o in overrides} | {o.ends_at for o in overrides})
        # Max-heap on (created_at, id, position): the latest created active override wins.
        active: list[tuple[float, int, int, datetime, str]] = []
        upcoming = 0
        for i, at in enumerate(boundaries[:-1]):
            while upcoming < len(overrides) and overrides[upcoming].starts_at <= at:
                o = overrides[upcoming]
                heapq.heappush(active, (-o.created_at.timestamp(), -o.id, -upcoming, o.ends_at, o.user_id))
                upcoming += 1
            while active and active[0][3] <= at:
                heapq.heappop(active)
            if not active:
                continue
            user, until = active[0][4], boundaries[i + 1]
            if self.users and self.users[-1] == user and self.ends[-1] == at:
                self.ends[-1] = until
            else:
                self.starts.append(at)
                self.ends.append(until)
                self.users.append(user)

    def user_at(self, t: datetime) -> str | None:
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and t < self.ends[i]:
            return self.users[i]
        return None

    def segments(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime, str]]:
        """The override segments overlapping [start, end), clipped to it."""
        i = max(0, bisect_right(self.starts, start) - 1)
        while i < len(self.starts) and self.starts[i] < end:
            if self.ends[i] > start:
                yield max(self.starts[i], start), min(self.ends[i], end), self.users[i]
            i += 1


Overrides = OverrideIndex | Sequence[Override]


def _index(overrides: Overrides | None) -> OverrideIndex:
    if isinstance(overrides, OverrideIndex):
        return overrides
    return OverrideIndex(overrides or ())


def first_handoff_local(schedule: Schedule) -> datetime:
    """The first handoff as a naive local wall time."""
    day = schedule.start
    if schedule.handoff_weekday is not None:
        day += timedelta(days=(schedule.handoff_weekday - day.weekday()) % 7)
    return datetime.combine(day, schedule.handoff_time)


def handoff_at(schedule: Schedule, k: int) -> datetime:
    """Handoff k (the start of shift k) in UTC; k may be negative (before the schedule starts)."""
    local = first_handoff_local(schedule) + k * schedule.step
    # fold=0: a repeated wall time means its first occurrence; a skipped one maps past the jump.
    return local.replace(tzinfo=schedule.zone).astimezone(UTC)


def _shift(schedule: Schedule, k: int) -> Shift:
    members = schedule.members
    return Shift(k, members[k % len(members)], handoff_at(schedule, k), handoff_at(schedule, k + 1))


def _index_at(schedule: Schedule, t: datetime) -> int:
    """The k with handoff k <= t < handoff k+1 (negative before the first handoff)."""
    local = t.astimezone(schedule.zone).replace(tzinfo=None)
    k = (local - first_handoff_local(schedule)) // schedule.step
    # The wall-clock estimate can be one off next to a daylight-saving change: settle it in UTC.
    while handoff_at(schedule, k) > t:
        k -= 1
    while handoff_at(schedule, k + 1) <= t:
        k += 1
    return k


def shift_at(schedule: Schedule, t: datetime) -> Shift | None:
    """The rotation's shift at t (overrides not applied); None before the schedule starts."""
    k = _index_at(schedule, t)
    return _shift(schedule, k) if k >= 0 else None


def shifts_between(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The rotation's shifts overlapping [start, end), unclipped, in order."""
    k = max(0, _index_at(schedule, start))
    shifts: list[Shift] = []
    while True:
        shift = _shift(schedule, k)
        if shift.starts_at >= end:
            return shifts
        if shift.ends_at > start and shift.ends_at > shift.starts_at:
            shifts.append(shift)
        k += 1


def on_call_at(schedule: Schedule, overrides: Overrides | None, t: datetime) -> str | None:
    """Who is on call at t: an override's person, else the rotation's; None before the start.

    An override counts even before the rotation starts (someone was explicitly put on call).
    """
    covering = _index(overrides).user_at(t)
    if covering is not None:
        return covering
    k = _index_at(schedule, t)
    if k < 0:
        return None
    return schedule.members[k % len(schedule.members)]


def effective_shifts(schedule: Schedule, overrides: Overrides | None, start: datetime, end: datetime) -> list[Segment]:
    """The timeline over [start, end) with overrides applied, clipped, adjacent equal people merged."""
    index = _index(overrides)
    pieces: list[Segment] = []
    covered = list(index.segments(start, end))
    ci = 0
    # Walk the rotation's shifts and cut the override segments into them.
    for shift in shifts_between(schedule, start, end):
        at, until = max(shift.starts_at, start), min(shift.ends_at, end)
        while at < until:
            while ci < len(covered) and covered[ci][1] <= at:
                ci += 1
            if ci < len(covered) and covered[ci][0] <= at:
                piece_end = min(covered[ci][1], until)
                pieces.append(Segment(covered[ci][2], at, piece_end, True))
            else:
                piece_end = min(covered[ci][0], until) if ci < len(covered) else until
                pieces.append(Segment(shift.user_id, at, piece_end, False))
            at = piece_end
    # Overrides outside the rotation's span (before it starts) stand on their own.
    first = pieces[0].starts_at if pieces else end
    for o_start, o_end, user in covered:
        if o_start < first:
            pieces.append(Segment(user, o_start, min(o_end, first), True))
    pieces.sort(key=lambda s: s.starts_at)
    return _merged(pieces)


def _merged(pieces: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last is not None and last.user_id == piece.user_id and last.ends_at == piece.starts_at:
            merged[-1] = Segment(last.user_id, last.starts_at, piece.ends_at, last.overridden or piece.overridden)
        else:
            merged.append(piece)
    return merged


def next_handoffs(schedule: Schedule, overrides: Overrides | None, t: datetime, n: int) -> list[Handoff]:
    """The next n moments after t when someone else goes on call (overrides included).

    Fewer when the timeline never changes hands again (a one-member rotation past its overrides).
    """
    if n <= 0:
        return []
    index = _index(overrides)
    members = len(set(schedule.members))
    start_at = handoff_at(schedule, 0)
    # Past this, nothing new can happen: the overrides are over and every member has had turns.
    limit = max(t, start_at, index.last_end or t) + schedule.step * (n + 1) * (members + 1) + timedelta(days=1)
    horizon = t + schedule.step * (n + 1)
    while True:
        handoffs: list[Handoff] = []
        previous = on_call_at(schedule, index, t)
        last_end = t
        for segment in effective_shifts(schedule, index, t, horizon):
            if segment.starts_at > last_end:
                previous = None  # a gap: nobody on call in between
            if segment.starts_at > t and segment.user_id != previous:
                handoffs.append(Handoff(segment.starts_at, segment.user_id, previous))
            previous, last_end = segment.user_id, segment.ends_at
        if len(handoffs) >= n or horizon >= limit:
            return handoffs[:n]
        horizon = min(limit, t + (horizon - t) * 2)
