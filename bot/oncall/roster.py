"""Who is on call now and next, per schedule (for `/incident oncall`, the CLI, App Home), and covering a shift."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.oncall import service
from bot.oncall.config import OnCallConfig
from bot.oncall.schedules import Handoff, OverrideIndex, next_handoffs, on_call_at

HANDOFFS_SHOWN = 3
# Overrides further back cannot change who is on call now (none lasts this long in practice;
# the index needs only those that overlap now and what follows).
LOOKBACK = timedelta(days=366)


@dataclass(frozen=True)
class ScheduleNow:
    name: str
    timezone: str
    on_call: str | None  # None before the schedule starts
    covering: bool  # an override put them there
    until: datetime | None  # the next handoff
    handoffs: list[Handoff]


@dataclass(frozen=True)
class CoverForm:
    """An override asked for in the cover form: `user` covers `schedule` for [starts_at, ends_at)."""

    schedule: str
    user: str
    starts_at: datetime
    ends_at: datetime


def indexes(session: Session, now: datetime) -> dict[str, OverrideIndex]:
    return service.override_indexes(session=session, start=now - LOOKBACK)


def roster(config: OnCallConfig, overrides: dict[str, OverrideIndex], now: datetime,
           only: str | None = None, shown: int = HANDOFFS_SHOWN) -> list[ScheduleNow]:
    """Each schedule (or just `only`) in name order: who is on call at `now`, until when, the next handoffs."""
    found: list[ScheduleNow] = []
    for name in sorted(config.schedules):
        if only is not None and name != only:
            continue
        schedule, index = config.schedules[name], overrides.get(name) or OverrideIndex()
        coming = next_handoffs(schedule, index, now, shown)
        found.append(ScheduleNow(
            name=name, timezone=schedule.timezone, on_call=on_call_at(schedule, index, now),
            covering=index.user_at(now) is not None, until=coming[0].at if coming else None, handoffs=coming,
        ))
    return found


def local(when: datetime, timezone: str) -> str:
    """`Mon 2026-12-07 09:00 CET`: a moment as the schedule's people read it."""
    return when.astimezone(ZoneInfo(timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def roster_lines(statuses: list[ScheduleNow]) -> list[str]:
    """Plain text for the CLI: one line per schedule, then its coming handoffs."""
    lines: list[str] = []
    for s in statuses:
        who = s.on_call or "nobody (the rotation has not started)"
        covering = " (covering)" if s.covering else ""
        until = f" until {local(s.until, s.timezone)}" if s.until else ""
        lines.append(f"{s.name} ({s.timezone}): {who}{covering}{until}")
        lines.extend(f"  {local(h.at, s.timezone)}  {h.previous_user_id or '-'} -> {h.user_id}" for h in s.handoffs)
    return lines


def on_call_for(config: OnCallConfig, overrides: dict[str, OverrideIndex], user: str,
                now: datetime) -> list[ScheduleNow]:
    """The schedules `user` is on call for at `now` (App Home's "you are on call until …")."""
    return [s for s in roster(config, overrides, now, shown=1) if s.on_call == user]


class CoverError(ValueError):
    """A cover form that cannot be stored; `field` names the form's field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def add_cover(session: Session, config: OnCallConfig, form: CoverForm, *, by: str | None, now: datetime) -> int:
    """Store the override (the latest one wins where two overlap); its id."""
    if form.schedule not in config.schedules:
        raise CoverError("schedule", f"There is no schedule {form.schedule!r}.")
    if form.ends_at <= form.starts_at:
        raise CoverError("until", "The cover must end after it starts.")
    if form.ends_at <= now:
        raise CoverError("until", "That time is past already.")
    row = service.add_override(session=session, schedule=form.schedule, user_id=form.user,
                               starts_at=form.starts_at, ends_at=form.ends_at, created_by=by, now=now)
    return int(row.id or 0)
