"""`incident-bot outbox [retry [ID…]]`: the dead letters of Slack calls and of page notices.

Outbox rows (Slack calls) have plain numbers as ids; page notices (an e-mail or webhook of a
page) are `page-<n>`, so the two never collide and `retry` takes either.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from bot.incidents import outbox
from bot.oncall import dead_letters
from storage import db
from storage.models import utcnow


class BadId(ValueError):
    """An id that is neither an outbox row's number nor `page-<n>`."""


@dataclass
class Ids:
    outbox: list[int] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)


def parse_ids(texts: Sequence[str]) -> Ids:
    ids = Ids()
    for text in texts:
        page = dead_letters.parse_id(text)
        if page is not None:
            ids.pages.append(page)
        elif text.strip().isdigit() and int(text) > 0:
            ids.outbox.append(int(text))
        else:
            raise BadId(f"{text!r} is not a dead letter id: use a number (a Slack call) or page-N (a page notice)")
    return ids


def retry(sessions: db.SessionFactory, texts: Sequence[str], out: TextIO | None = None) -> int:
    """Queue the named dead letters again (all of them without ids); the running bot sends them."""
    out = out or sys.stdout  # looked up now: tests swap sys.stdout
    ids = parse_ids(texts)
    every = not texts
    now = utcnow()
    queued = 0
    with db.unit_of_work(sessions) as session:
        if every or ids.outbox:
            queued += outbox.retry_dead_letters(session, None if every else ids.outbox, now=now)
        retried = dead_letters.Retried(0, [])
        if every or ids.pages:
            retried = dead_letters.retry_dead_notices(session, None if every else ids.pages, now=now)
        queued += retried.queued
    print(f"queued {queued} dead letter{'s' if queued != 1 else ''} again; the running bot sends them", file=out)
    for notice in retried.not_queued:
        print(f"{notice.label}: not queued, its page was {notice.page_ended} (nobody is paged for it now)", file=out)
    return 0


def listing(sessions: db.SessionFactory, out: TextIO | None = None) -> int:
    """One line per dead letter: id, kind, incident, when (UTC), reason; Slack calls first."""
    out = out or sys.stdout
    with db.unit_of_work(sessions) as session:
        letters = outbox.dead_letters(session)
        notices = dead_letters.dead_notices(session)
    if not letters and not notices:
        print("no dead letters", file=out)
        return 0
    for row in letters:
        print(f"{row.id}\t{row.kind}\t{row.incident_id or '-'}\t{_when(row.dead_at)}\t{row.last_error or ''}", file=out)
    for notice in notices:
        print(f"{notice.label}\tpage_{notice.channel}\t{notice.incident_id}\t{_when(notice.dead_at)}\t{notice.reason}",
              file=out)
    return 0


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "?"
