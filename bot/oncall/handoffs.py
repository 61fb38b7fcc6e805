"""Handoffs: at each shift change the incoming person gets one DM and the schedule's user group follows.

`sweep` finds, per schedule, the stretch of the timeline that holds `now` (overrides applied); when
it began within `GRACE`, that is a handoff to announce. Its notice is claimed by inserting its row
(bot/oncall/service.claim_handoff_notice, unique on schedule and shift start: one replica wins),
and what Slack must be told goes to the outbox in the same transaction: the DM, and the
`usergroups.users.update` of the schedule's `usergroup`. The outbox sends each once, with retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.incidents.outbox import OutboxKind, enqueue
from bot.oncall import service
from bot.oncall.config import OnCallConfig
from bot.oncall.schedules import effective_shifts, next_handoffs
from storage.db import SessionFactory, unit_of_work

log = logging.getLogger(__name__)
# A shift change noticed this late is still announced (a bot restarted within the hour); an older
# one is not: a fresh install does not DM everyone about shifts that began days ago.
GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Announced:
    schedule: str
    user_id: str
    shift_start: datetime
    until: datetime | None


def sweep(sessions: SessionFactory, config: OnCallConfig, *, now: datetime, worker: str) -> list[Announced]:
    """Claim and queue every handoff that happened within GRACE before `now`; what this process won."""
    if not config.schedules:
        return []
    won: list[Announced] = []
    with unit_of_work(sessions) as session:
        indexes = service.override_indexes(session=session, start=now - GRACE)
        for name in sorted(config.schedules):
            schedule, index = config.schedules[name], indexes.get(name)
            current = [s for s in effective_shifts(schedule, index, now - GRACE, now + timedelta(seconds=1))
                       if s.starts_at <= now < s.ends_at]
            if not current or current[0].starts_at <= now - GRACE:
                continue
            segment = current[0]
            claimed = service.claim_handoff_notice(session=session, schedule=name, shift_start=segment.starts_at,
                                                   user_id=segment.user_id, worker=worker, now=now)
            if claimed is None:
                continue
            coming = next_handoffs(schedule, index, now, 1)
            until = coming[0].at if coming else None
            enqueue(session, OutboxKind.HANDOFF_DM, dedupe_key=f"handoff_dm:{claimed}", payload={
                "user": segment.user_id, "schedule": name, "timezone": schedule.timezone,
                "until": until.isoformat() if until else None, "notice_id": claimed,
            })
            if schedule.usergroup:
                enqueue(session, OutboxKind.USERGROUP_UPDATE, dedupe_key=f"usergroup:{claimed}",
                        payload={"usergroup": schedule.usergroup, "users": [segment.user_id], "schedule": name})
            service.mark_handoff_sent(session=session, notice_id=claimed, now=now)  # handed to the outbox
            won.append(Announced(name, segment.user_id, segment.starts_at, until))
    for item in won:
        log.info("handoff: %s on call for %s from %s", item.user_id, item.schedule, item.shift_start.isoformat())
    return won
