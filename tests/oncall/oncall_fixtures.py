"""Small builders shared by the on-call tests: schedules and overrides from a few words."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from bot.oncall.config import Schedule
from bot.oncall.schedules import Override


def schedule(
    *,
    timezone: str = "Europe/Berlin",
    rotation: str = "weekly",
    handoff: str = "mon 09:00",
    start: date = date(2026, 1, 5),
    members: tuple[str, ...] = ("U01ALICE", "U02BOB", "U03CAROL"),
    **extra: Any,
) -> Schedule:
    return Schedule.model_validate(
        {"timezone": timezone, "rotation": rotation, "handoff": handoff, "start": start, "members": list(members)}
        | extra
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


def override(user: str, starts: datetime, ends: datetime, created: datetime, id: int = 0) -> Override:
    return Override(user_id=user, starts_at=starts, ends_at=ends, created_at=created, id=id)
