"""The promised next public update: its reminder to the commander, in the incident's thread, once."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot import mrkdwn
from bot.incidents.outbox import OutboxKind, enqueue
from bot.statuspage import service
from storage.models import Incident


def remind_due(*, session: Session, now: datetime) -> list[int]:
    """Claim every due reminder and queue its thread reply in the same transaction (commit them together).

    A replica that loses the claim queues nothing; the outbox row's key absorbs a repeat of the same
    promise. A public incident published by hand (no internal incident) has no thread: its claim
    only marks it reminded.
    """
    reminded = []
    for public in service.due_reminders(session=session, now=now):
        incident = session.get(Incident, public.incident_id) if public.incident_id else None
        if incident is None or public.next_update_due is None:
            continue
        who = mrkdwn.user(incident.commander) if incident.commander else "No commander yet:"
        text = (
            f":alarm_clock: {who} the next status page update for *{mrkdwn.escape(public.title)}* is due "
            f"({mrkdwn.slack_time(public.next_update_due)}). Use *Post status update* on the card."
        )
        enqueue(
            session,
            OutboxKind.THREAD_REPLY,
            incident_id=incident.id,
            payload={"text": text},
            dedupe_key=f"statuspage-reminder:{public.id}:{public.next_update_due.isoformat()}",
        )
        reminded.append(public.id or 0)
    return reminded
