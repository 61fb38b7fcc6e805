"""Page notices set aside for good (an e-mail or webhook refused or failed too often): listed, queued again.

They are the page side of the outbox's dead letters (bot/incidents/outbox.py): `incident-bot
outbox` lists both, `incident-bot outbox retry` queues both again, the commander's App Home shows
both. Their ids are `page-<n>` so they never collide with outbox ids (plain numbers).

Only the notices of a page still running are queued again: the paging sweep sends notices of
running pages only, and paging someone for an incident already acknowledged or resolved would wake
them for nothing. Such a notice stays listed, with why it was not queued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from storage.models import Incident
from storage.oncall import Page, PageNotification

PREFIX = "page-"
_ID = re.compile(rf"^{PREFIX}([1-9][0-9]*)$")
NOTIFICATIONS = PageNotification.__table__  # type: ignore[attr-defined]
PAGES = Page.__table__  # type: ignore[attr-defined]
CHANNEL_NAMES = {"email": "e-mail", "webhook": "webhook", "dm": "DM", "mention": "mention"}


@dataclass(frozen=True)
class DeadNotice:
    id: int
    channel: str  # email | webhook (dm and mention go through the outbox: their dead letters are its)
    target: str  # a user id, or `oncall.email.to`
    incident_id: str
    dead_at: datetime | None
    error: str
    page_ended: str | None  # why the page ended (acknowledged, resolved), None while it runs

    @property
    def label(self) -> str:
        return f"{PREFIX}{self.id}"

    @property
    def reason(self) -> str:
        """One line: how, to whom, what went wrong (and that its page is over, when it is)."""
        text = f"{CHANNEL_NAMES.get(self.channel, self.channel)} to {self.target}: {self.error}"
        return text + (f" (page {self.page_ended}: not sent again)" if self.page_ended else "")


def parse_id(text: str) -> int | None:
    """The notice number in `page-12`; None when `text` is not a page notice id."""
    found = _ID.match(text.strip().lower())
    return int(found.group(1)) if found else None


def _query() -> sa.Select[tuple[int, str, str, str, datetime | None, str | None, str | None, datetime | None]]:
    n = NOTIFICATIONS
    return (
        sa.select(n.c.id, n.c.channel, n.c.target, PAGES.c.incident_id, n.c.dead_at, n.c.last_error,
                  PAGES.c.ended_reason, PAGES.c.ended_at)
        .join(PAGES, PAGES.c.id == n.c.page_id)
        .where(n.c.dead_at.is_not(None))
        .order_by(n.c.id)
    )


def _notice(row: sa.Row[tuple[int, str, str, str, datetime | None, str | None, str | None, datetime | None]],
            ) -> DeadNotice:
    ended = (row.ended_reason or "ended") if row.ended_at is not None else None
    return DeadNotice(int(row.id), str(row.channel), str(row.target), str(row.incident_id), row.dead_at,
                      str(row.last_error or "failed"), ended)


def dead_notices(session: Session, ids: list[int] | None = None) -> list[DeadNotice]:
    """Dead page notices (only these ids, when given), oldest first."""
    query = _query()
    if ids is not None:
        query = query.where(NOTIFICATIONS.c.id.in_(ids))
    return [_notice(row) for row in session.execute(query)]


def dead_notices_of_commander(session: Session, user: str) -> list[tuple[str, str]]:
    """(incident id, reason) of the dead page notices of incidents `user` commands (App Home)."""
    query = _query().join(Incident, Incident.id == PAGES.c.incident_id).where(Incident.commander == user)  # type: ignore[arg-type]
    return [(notice.incident_id, f"{notice.label}, {notice.reason}") for notice in map(_notice, session.execute(query))]


@dataclass(frozen=True)
class Retried:
    queued: int
    not_queued: list[DeadNotice]  # dead notices whose page is over: nothing to send any more


def retry_dead_notices(session: Session, ids: list[int] | None = None, *, now: datetime) -> Retried:
    """Queue dead page notices again (all when `ids` is None): the next paging sweep sends them.

    Like the outbox's retry: attempts start again from 0 (the next claim is attempt 1, with the
    first back-off), the lease is cleared so any replica may claim it now.
    """
    dead = dead_notices(session, ids)
    over = [notice for notice in dead if notice.page_ended]
    running = [notice.id for notice in dead if not notice.page_ended]
    if not running:
        return Retried(0, over)
    statement = (
        NOTIFICATIONS.update()
        .where(NOTIFICATIONS.c.id.in_(running), NOTIFICATIONS.c.dead_at.is_not(None))
        .values(dead_at=None, claimed_by=None, lease_until=None, next_attempt_at=now, attempts=0)
        .execution_options(preserve_rowcount=True)
    )
    return Retried(int(session.execute(statement).rowcount), over)  # type: ignore[attr-defined]
