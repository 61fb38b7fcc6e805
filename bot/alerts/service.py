"""Alertmanager notifications -> incidents: validate, store once, and let the outbox tell Slack.

One notification is one transaction: its dedupe key (group, alerts, status) is claimed with an
INSERT … ON CONFLICT DO NOTHING alongside the work, so Alertmanager's retries and an HA pair's
twin deliveries, even to two replicas in the same instant, change the database once. Slack is
only told through the outbox, after the response: a Slack outage never makes Alertmanager retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.alerts.mapping import (
    AlertState,
    changed_text,
    changes,
    declaration,
    dedupe_key,
    ended_at_of,
    fired_text,
    merged,
    resolve_offer,
    resolved_text,
    state_of,
)
from bot.alerts.payload import Webhook
from bot.incidents import lifecycle as incidents
from bot.incidents import queries as incident_queries
from bot.incidents.outbox import OutboxKind, enqueue, insert_ignoring_conflict
from bot.settings import Settings
from bot.statuspage import service as statuspage
from storage.db import SessionFactory, unit_of_work
from storage.models import AlertNotification, Incident, SystemEvent, TimelineEntry, utcnow
from storage.models import Status as S

log = logging.getLogger(__name__)


ALERT_EVENTS = (SystemEvent.ALERT_FIRED.value, SystemEvent.ALERT_UPDATED.value, SystemEvent.ALERT_RESOLVED.value)


# The database is away (restart, failover, locked, not migrated yet): Alertmanager retries a 5xx.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, sa.exc.ProgrammingError)


DECLARE_ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    incident_id: str | None
    declared: bool = False
    duplicate: bool = False
    changed: bool = False  # something was written for Slack


def open_incident(session: Session, group_key: str) -> Incident | None:
    """The group's open incident, locked: notifications for one group are taken one at a time."""
    statement = select(Incident).where(Incident.alert_group_open == group_key).with_for_update()
    return session.exec(statement).first()


def last_state(session: Session, incident_id: str) -> AlertState:
    statement = (
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id, TimelineEntry.event.in_(ALERT_EVENTS))  # type: ignore[union-attr]
        # By id, not time: entries for a group are written one at a time under its incident's row
        # lock, so the newest id is the latest state whatever the replicas' clocks say.
        .order_by(TimelineEntry.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    entry = session.exec(statement).first()
    alerts = entry.data.get("alerts") if entry is not None else None
    return alerts if isinstance(alerts, dict) else {}


def receive(session: Session, webhook: Webhook, *, settings: Settings, now: datetime) -> Outcome:
    """Take one notification in the caller's transaction. Raises IntegrityError if another
    transaction declared the group's incident first: roll back and call again (it is then an update)."""
    key = dedupe_key(webhook)
    claimed = insert_ignoring_conflict(
        session,
        AlertNotification,
        {"dedupe_key": key, "group_key": webhook.group_key, "status": webhook.status, "received_at": now},
    )
    if not claimed:
        seen = session.get(AlertNotification, key)
        return Outcome(incident_id=seen.incident_id if seen else None, duplicate=True)

    incident = open_incident(session, webhook.group_key)
    if incident is None and webhook.status == "resolved":
        # Nothing open for this group (resolved by hand already, or never seen firing).
        return Outcome(incident_id=None)

    if incident is None and under_maintenance(session, webhook, settings=settings, now=now):
        # Recorded (the notification row above) but no incident, so no card and no page.
        log.info("alert group %r fired during a maintenance window of its components", webhook.group_key)
        return Outcome(incident_id=None)

    state = state_of(webhook)
    data: dict[str, Any] = {"group_key": webhook.group_key, "notification": key}
    if incident is None:
        form, extras = declaration(webhook, default_severity=settings.alert_default_severity, now=now)
        incident = incidents.declare(session, form, declared_by=None, policy=settings.policy(), now=now, extras=extras)
        text = fired_text(webhook)
        incident_queries.add_system_entry(
            session, incident, SystemEvent.ALERT_FIRED, text, author=None, now=now, data={**data, "alerts": state}
        )
        _reply(session, incident.id, key, text, now=now)
        outcome = Outcome(incident_id=incident.id, declared=True, changed=True)
    else:
        before = last_state(session, incident.id)
        change = changes(before, state)
        if not change:
            outcome = Outcome(incident_id=incident.id)  # a repeat: nothing new to say
        elif webhook.status == "resolved":
            text = resolved_text(change, webhook)
            incident_queries.add_system_entry(
                session,
                incident,
                SystemEvent.ALERT_RESOLVED,
                text,
                author=None,
                now=now,
                data={**data, "alerts": merged(before, state)},
            )
            _reply(session, incident.id, key, text, now=now, blocks=resolve_offer(incident.id, text))
            if settings.alert_auto_mitigate and incident.status == S.INVESTIGATING:
                incidents.mitigate(
                    session,
                    incident.id,
                    user=None,
                    policy=settings.policy(),
                    now=now,
                    at=ended_at_of(webhook, now),
                    note="its alerts resolved",
                )
            outcome = Outcome(incident_id=incident.id, changed=True)
        else:
            text = changed_text(change, webhook)
            incident_queries.add_system_entry(
                session,
                incident,
                SystemEvent.ALERT_UPDATED,
                text,
                author=None,
                now=now,
                data={**data, "alerts": merged(before, state)},
            )
            _reply(session, incident.id, key, text, now=now)
            outcome = Outcome(incident_id=incident.id, changed=True)
    session.execute(
        sa.update(AlertNotification).where(AlertNotification.dedupe_key == key).values(incident_id=incident.id)  # type: ignore[arg-type]
    )
    return outcome


def under_maintenance(session: Session, webhook: Webhook, *, settings: Settings, now: datetime) -> bool:
    """Every firing alert maps to status page components, and all of them are in a maintenance window."""
    components: set[str] = set()
    for alert in webhook.firing:
        found = statuspage.components_for_alert(
            {**webhook.common_labels, **alert.labels}, config=settings.status_page_config
        )
        if not found:
            return False  # an alert for something not under maintenance still opens an incident
        components.update(found)
    return statuspage.in_maintenance(components, now, session=session)


def _reply(
    session: Session,
    incident_id: str,
    key: str,
    text: str,
    *,
    now: datetime,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    payload: dict[str, Any] = {"text": text}
    if blocks:
        payload["blocks"] = blocks
    enqueue(
        session, OutboxKind.THREAD_REPLY, incident_id=incident_id, payload=payload, dedupe_key=f"alert:{key}", now=now
    )


def take(sessions: SessionFactory, webhook: Webhook, *, settings: Settings, now: datetime | None = None) -> Outcome:
    """`receive` in its own transaction, again as an update when a replica declared first."""
    for attempt in range(1, DECLARE_ATTEMPTS + 1):
        try:
            with unit_of_work(sessions) as session:
                return receive(session, webhook, settings=settings, now=now or utcnow())
        except sa.exc.IntegrityError:
            if attempt == DECLARE_ATTEMPTS:
                raise
            log.info(
                "alert group %r was declared concurrently; taking the notification as an update", webhook.group_key
            )
    raise AssertionError("unreachable")
