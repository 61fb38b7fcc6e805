"""Who is who: Slack profiles cached in `person`, the ids incidents refer to that it lacks, and names.

Profiles come from event payloads (`user_profile`, where Slack sends one) and from users.info,
asked by bot/slack/people.py for the ids this module says are unknown. The Markdown outputs print
names from here, else the id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bot.incidents.outbox import dialect_insert
from storage.models import FollowUp, Incident, TimelineEntry, table_of
from storage.people import Person

# Thread authors are looked for in recent incidents only: the timeline is the biggest table, and
# people who spoke in older threads were named by their events' profiles or by earlier runs.
RECENT_THREADS = timedelta(days=30)


@dataclass(frozen=True)
class Profile:
    user_id: str
    display_name: str = ""
    real_name: str = ""
    email: str | None = None

    @property
    def named(self) -> bool:
        return bool(self.display_name or self.real_name)


def profile_from(user_id: str, payload: Mapping[str, Any]) -> Profile:
    """From a users.info `user` object (names under `profile`) or an event's `user_profile`."""
    inner = payload.get("profile")
    profile: Mapping[str, Any] = inner if isinstance(inner, Mapping) else payload
    email = profile.get("email")
    return Profile(
        user_id=user_id,
        display_name=str(profile.get("display_name") or "").strip()[:200],
        real_name=str(profile.get("real_name") or payload.get("real_name") or "").strip()[:200],
        email=email.strip()[:320] if isinstance(email, str) and email.strip() else None,
    )


def remember(session: Session, profile: Profile, *, now: datetime, replace: bool = True) -> None:
    """Store a profile; `replace=False` keeps a stored one (an event's copy may be older than users.info's)."""
    values = {
        "user_id": profile.user_id,
        "display_name": profile.display_name,
        "real_name": profile.real_name,
        "email": profile.email,
        "updated_at": now,
    }
    statement = dialect_insert(session, Person).values(**values)
    if replace:
        changed = {k: v for k, v in values.items() if k != "user_id"}
        statement = statement.on_conflict_do_update(index_elements=["user_id"], set_=changed)
    else:
        statement = statement.on_conflict_do_nothing()
    session.execute(statement)


def unknown_ids(session: Session, *, now: datetime, limit: int) -> list[str]:
    """Up to `limit` user ids that incidents refer to and `person` does not know, sorted."""
    c = table_of(Incident).c
    f = table_of(FollowUp).c
    t = table_of(TimelineEntry).c
    recent = sa.select(c.id).where(c.declared_at >= now - RECENT_THREADS)
    referenced = sa.union(
        sa.select(c.declared_by.label("user_id")),
        sa.select(c.commander),
        sa.select(c.reported_by),
        sa.select(f.owner),
        sa.select(t.author).where(t.incident_id.in_(recent), t.kind == "message"),
    ).subquery()
    known = table_of(Person).c
    user_id = referenced.c.user_id
    statement = (
        sa.select(user_id)
        .where(
            sa.or_(user_id.like("U%"), user_id.like("W%")),
            ~sa.exists().where(known.user_id == user_id),
        )
        .order_by(user_id)
        .limit(limit)
    )
    # Only what can be a Slack user id: imported history may hold names or e-mail addresses.
    return [row[0] for row in session.execute(statement) if is_user_id(row[0])]


def names(session: Session, user_ids: Iterable[str]) -> dict[str, str]:
    """The name to print for each of these ids that has one (display name, else real name)."""
    wanted = sorted(set(user_ids))
    found: dict[str, str] = {}
    p = table_of(Person).c
    for offset in range(0, len(wanted), 500):
        chunk = wanted[offset : offset + 500]
        for user_id, display, real in session.execute(
            sa.select(p.user_id, p.display_name, p.real_name).where(p.user_id.in_(chunk))
        ):
            if display or real:
                found[user_id] = display or real
    return found


def is_user_id(value: str) -> bool:
    return len(value) <= 32 and value[:1] in ("U", "W") and value[1:].isalnum()
