"""What is due, and when to look again: a pure function of an incident, the policy and "now".

Everything the escalation sweep decides comes from here, so it can be tested with frozen time
and without a database or Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.settings import Policy
from storage.models import EscalationKind, Status


@dataclass(frozen=True)
class IncidentClock:
    """The parts of an incident that deadlines depend on."""

    severity: str
    status: str
    declared_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    last_activity_at: datetime | None = None


def clock_of(incident: Any) -> IncidentClock:
    """The clock of anything shaped like an incident (the Incident table row, in practice)."""
    return IncidentClock(
        severity=incident.severity,
        status=incident.status,
        declared_at=incident.declared_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        last_activity_at=incident.last_activity_at,
    )


@dataclass(frozen=True)
class Fired:
    """An escalation already claimed for this incident."""

    kind: str
    level: int
    fired_at: datetime


@dataclass(frozen=True)
class Due:
    kind: EscalationKind
    level: int
    due_at: datetime
    target: timedelta | None  # the lapsed target (None for update nudges)


def response_deadline(clock: IncidentClock, policy: Policy) -> datetime:
    return clock.declared_at + policy.response_targets[clock.severity]


def resolution_deadline(clock: IncidentClock, policy: Policy) -> datetime:
    return clock.declared_at + policy.resolution_targets[clock.severity]


def _target_due(
    kind: EscalationKind,
    deadline: datetime,
    target: timedelta,
    every: timedelta,
    policy: Policy,
    fired: list[Fired],
    now: datetime,
) -> tuple[Due | None, datetime | None]:
    """The level to announce now (if any), else when this target next needs a look.

    Levels go up one at a time, never skipped: level N is due at deadline + N x repeat, and never
    sooner than one repeat after the level before it was announced. A bot that was down through
    several levels therefore pages once at start-up, then widens on schedule.
    """
    mine = [f for f in fired if f.kind == kind]
    level = max((f.level for f in mine), default=-1) + 1
    if level > policy.max_repeats:
        return None, None
    due_at = deadline + every * level
    if mine:
        due_at = max(due_at, max(f.fired_at for f in mine) + every)
    if due_at <= now:
        return Due(kind=kind, level=level, due_at=due_at, target=target), None
    return None, due_at


def plan(clock: IncidentClock, policy: Policy, fired: list[Fired], now: datetime) -> tuple[list[Due], datetime | None]:
    """What must be announced now, and when the sweep next has to look at this incident."""
    if clock.status == Status.RESOLVED or clock.resolved_at is not None:
        return [], None
    due: list[Due] = []
    looks: list[datetime] = []
    every = policy.repeat_for(clock.severity)

    if clock.acknowledged_at is None:
        target = policy.response_targets[clock.severity]
        now_due, later = _target_due(
            EscalationKind.RESPONSE, response_deadline(clock, policy), target, every, policy, fired, now
        )
        due += [now_due] if now_due else []
        looks += [later] if later else []

    target = policy.resolution_targets[clock.severity]
    now_due, later = _target_due(
        EscalationKind.RESOLUTION, resolution_deadline(clock, policy), target, every, policy, fired, now
    )
    due += [now_due] if now_due else []
    looks += [later] if later else []

    nudge = _nudge(clock, policy, fired, now)
    if nudge is not None:
        if nudge.due_at <= now:
            due.append(nudge)
        else:
            looks.append(nudge.due_at)
    return due, min(looks, default=None)


def quiet_since(clock: IncidentClock) -> datetime | None:
    """When the current quiet spell began: the acknowledgement or the last timeline activity."""
    if clock.acknowledged_at is None:
        return None
    return max([clock.acknowledged_at] + ([clock.last_activity_at] if clock.last_activity_at else []))


def _nudge(clock: IncidentClock, policy: Policy, fired: list[Fired], now: datetime) -> Due | None:
    """The next update nudge: UPDATE_REMINDER of silence after the spell began or its last nudge.

    At most ESCALATION_MAX_REPEATS + 1 per quiet spell: a commander who has not answered three
    reminders is not helped by a fourth every half hour. Activity in the thread starts a new spell
    (and moves last_activity_at). Only while Investigating: once mitigated the pressure is off.
    """
    silence = policy.update_reminder.get(clock.severity)
    since = quiet_since(clock)
    if silence is None or since is None or clock.status != Status.INVESTIGATING:
        return None
    nudges = [f for f in fired if f.kind == EscalationKind.UPDATE_NUDGE]
    # A nudge is due a whole silence after the spell began, so this spell's fired strictly after it.
    spell = [f for f in nudges if f.fired_at > since]
    if len(spell) > policy.max_repeats:
        return None
    # Levels count across spells: each (incident, kind, level) is claimed once, for good.
    level = max((f.level for f in nudges), default=-1) + 1
    due_at = max([since] + [f.fired_at for f in spell]) + silence
    return Due(kind=EscalationKind.UPDATE_NUDGE, level=level, due_at=due_at, target=None)


def contacts_for_level(contacts: list[str], levels: list[list[str]] | None, level: int) -> list[str]:
    """Level N mentions the base contacts plus lists 0..N of ESCALATION_LEVELS (a widening page)."""
    mentions = list(contacts)
    for extra in (levels or [])[: level + 1]:
        mentions += [c for c in extra if c not in mentions]
    return mentions


def format_duration(delta: timedelta) -> str:
    """Compact human duration: 45s, 12m, 1h 05m, 2d 3h."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
