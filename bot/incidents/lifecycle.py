"""The incident's lifecycle: declare, acknowledge, mitigate, resolve, reopen, change severity, add follow-ups.

Every function takes a session and does one unit of work; the caller commits. Each change writes
its timeline entry and its Slack announcement (to the outbox) in the same transaction, so what the
database says happened and what Slack is told can never disagree for long.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from bot import mrkdwn
from bot.incidents import deadlines
from bot.incidents.forms import DeclareExtras, DeclareForm, FollowUpForm, ResolveForm
from bot.incidents.outbox import OutboxKind, announce, enqueue
from bot.incidents.queries import InvalidChange, add_system_entry, allocate_id, current_reopen, get, reschedule
from bot.oncall import paging
from storage.models import (
    FollowUp,
    Incident,
    Reopen,
    RunbookUse,
    SystemEvent,
)
from storage.models import Status as S

log = logging.getLogger(__name__)


def declare(
    session: Session,
    form: DeclareForm,
    *,
    declared_by: str | None,
    policy: deadlines.Policy,
    now: datetime,
    extras: DeclareExtras | None = None,
) -> Incident:
    extras = extras or DeclareExtras()
    incident = Incident(
        id=allocate_id(session, now),
        title=form.title,
        severity=form.severity,
        status=S.INVESTIGATING.value,
        affected=form.affected,
        affected_users=form.affected_users,
        detection=form.detection,
        detection_url=form.detection_url,
        reported_by=form.reported_by,
        category=form.category,
        declared_by=declared_by,
        commander=form.commander,
        source=extras.source,
        alert_name=extras.alert_name,
        alert_group_open=extras.alert_group,
        alert_group=extras.alert_group,
        runbook=extras.runbook,
        started_at=min(extras.started_at or now, now),
        declared_at=now,
        last_activity_at=now,
    )
    session.add(incident)
    session.flush()
    who = mrkdwn.user(declared_by) if declared_by else extras.source.capitalize()
    add_system_entry(
        session,
        incident,
        SystemEvent.DECLARED,
        f"Declared by {who} as {incident.severity}: {mrkdwn.escape(incident.title)}",
        author=declared_by,
        now=now,
        data={"severity": incident.severity},
    )
    enqueue(
        session,
        OutboxKind.CARD_POST,
        incident_id=incident.id,
        dedupe_key=f"card_post:{incident.id}",
        payload={"notify_user": declared_by} if declared_by else {},
        now=now,
    )
    if form.commander:
        enqueue(
            session,
            OutboxKind.THREAD_REPLY,
            incident_id=incident.id,
            payload={"text": f"{mrkdwn.user(form.commander)} is the incident commander."},
            now=now,
        )
    reschedule(session, incident, policy, now)
    paging.incident_paged(session, incident, policy.oncall, now)  # a routed incident pages someone
    return incident


def acknowledge(session: Session, incident_id: str, *, user: str, policy: deadlines.Policy, now: datetime) -> Incident:
    incident = get(session, incident_id, for_update=True)
    if incident.status == S.RESOLVED:
        raise InvalidChange(f"{incident.id} is already resolved.")
    if incident.acknowledged_at is not None:
        # A reopened incident keeps its first acknowledgement, but its new page runs until someone
        # owns this spell: the card's button or the page DM's stops that page.
        page = paging.page_acknowledged(session, incident.id, user=user, now=now)
        if page is None:
            raise InvalidChange(f"{incident.id} was already acknowledged.")
        text = f"Page acknowledged by {mrkdwn.user(user)}"
        _touch(incident, now)
        data = {"page": page.id, "reopen": incident.reopened_count}
        add_system_entry(session, incident, SystemEvent.PAGE_ACKNOWLEDGED, text, author=user, now=now, data=data)
        announce(session, incident.id, f":eyes: {text}.", now=now)
        reschedule(session, incident, policy, now)
        return incident
    incident.acknowledged_at = now
    text = f"Acknowledged by {mrkdwn.user(user)}"
    if incident.commander is None:
        incident.commander = user
        text += f"; {mrkdwn.user(user)} is now the incident commander"
    _touch(incident, now)
    add_system_entry(session, incident, SystemEvent.ACKNOWLEDGED, text, author=user, now=now)
    announce(session, incident.id, f":eyes: {text}.", now=now)
    reschedule(session, incident, policy, now)
    paging.page_acknowledged(session, incident.id, user=user, now=now)  # the card's button or a page DM's
    return incident


def mitigate(
    session: Session,
    incident_id: str,
    *,
    user: str | None,
    policy: deadlines.Policy,
    now: datetime,
    at: datetime | None = None,
    note: str | None = None,
) -> Incident:
    incident = get(session, incident_id, for_update=True)
    if incident.status != S.INVESTIGATING:
        raise InvalidChange(f"{incident.id} is {incident.status}, not Investigating.")
    incident.status = S.MITIGATED.value
    spell = current_reopen(session, incident)
    if spell is None:
        incident.mitigated_at = min(at or now, now)
    elif spell.mitigated_at is None:
        # A reopened spell: the incident keeps its first mitigation, this one ends the new spell
        # (never before the reopening, whatever an alert's end time says).
        spell.mitigated_at = max(min(at or now, now), spell.reopened_at)
        session.add(spell)
    _touch(incident, now)
    by = f" by {mrkdwn.user(user)}" if user else ""
    text = f"Status changed to Mitigated{by}" + (f" ({note})" if note else "")
    add_system_entry(
        session, incident, SystemEvent.STATUS_CHANGED, text, author=user, now=now, data={"status": "Mitigated"}
    )
    announce(session, incident.id, f":large_yellow_circle: {text}.", now=now)
    reschedule(session, incident, policy, now)
    return incident


def resolve(
    session: Session,
    incident_id: str,
    form: ResolveForm,
    *,
    user: str,
    policy: deadlines.Policy,
    now: datetime,
) -> Incident:
    incident = get(session, incident_id, for_update=True)
    if incident.status == S.RESOLVED:
        raise InvalidChange(f"{incident.id} is already resolved.")
    incident.status = S.RESOLVED.value
    incident.resolved_at = now
    spell = current_reopen(session, incident)
    if spell is None:
        if incident.mitigated_at is None:
            incident.mitigated_at = now
    elif spell.mitigated_at is None:
        spell.mitigated_at = now  # never mitigated: the spell's impact lasted until now
        session.add(spell)
    incident.root_cause = form.root_cause
    incident.resolution = form.resolution
    incident.root_cause_class = form.root_cause_class
    incident.category = form.category or incident.category
    incident.impact = form.impact or incident.impact
    incident.revenue_impact = form.revenue_impact if form.revenue_impact is not None else incident.revenue_impact
    incident.lessons_worked = form.lessons_worked
    incident.lessons_didnt = form.lessons_didnt
    incident.rca_url = form.rca_url or incident.rca_url
    incident.alert_group_open = None  # a new alert for that group may open a new incident now
    _touch(incident, now)
    mttr_time = open_time(session, incident)
    text = f"Resolved by {mrkdwn.user(user)}; MTTR {deadlines.format_duration(mttr_time)}"
    add_system_entry(
        session,
        incident,
        SystemEvent.RESOLVED,
        text,
        author=user,
        now=now,
        data={"mttr_seconds": int(mttr_time.total_seconds())},
    )
    announce(session, incident.id, f":white_check_mark: {text}.", now=now)
    reschedule(session, incident, policy, now)
    paging.pages_resolved(session, incident.id, now=now)
    return incident


def reopen(session: Session, incident_id: str, *, user: str, policy: deadlines.Policy, now: datetime) -> Incident:
    incident = get(session, incident_id, for_update=True)
    if incident.status != S.RESOLVED:
        raise InvalidChange(f"{incident.id} is not resolved.")
    # Reopening continues the same incident (it still counts once); deadlines stay anchored to the
    # declaration, so a reopened incident past its resolution target escalates unless it already did.
    # The first mitigation stays on the incident and the resolution undone goes to the reopen row:
    # the time it sat resolved is neither downtime nor MTTR (DOMAIN.md, "Reopened incidents").
    # Imported history may say Resolved without a time: then nothing is known to leave out.
    resolved_before = incident.resolved_at or now
    incident.status = S.INVESTIGATING.value
    incident.resolved_at = None
    incident.reopened_count += 1
    session.add(
        Reopen(
            incident_id=incident.id,
            seq=incident.reopened_count,
            resolved_before=resolved_before,
            reopened_at=max(now, resolved_before),
            reopened_by=user,
        )
    )
    _touch(incident, now)
    relinked = _relink_alert_group(session, incident)
    text = f"Reopened by {mrkdwn.user(user)}"
    data: dict[str, Any] = {"seq": incident.reopened_count, "resolved_before": resolved_before.isoformat()}
    if relinked:
        data["alert_group"] = relinked
    add_system_entry(session, incident, SystemEvent.REOPENED, text, author=user, now=now, data=data)
    announce(session, incident.id, f":rotating_light: {text}.", now=now)
    reschedule(session, incident, policy, now)
    session.flush()  # the Reopen row, which tells the paging whose spell this is
    paging.incident_paged(session, incident, policy.oncall, now)  # a reopened routed incident pages again
    return incident


def open_time(session: Session, incident: Incident, *, now: datetime | None = None) -> timedelta:
    """Started -> resolved (else `now`) less the time the incident sat resolved before reopenings."""
    end = incident.resolved_at or now
    if end is None:
        raise ValueError(f"{incident.id} is open: open_time needs `now`")
    gaps = session.execute(
        sa.select(col(Reopen.reopened_at), col(Reopen.resolved_before)).where(col(Reopen.incident_id) == incident.id)
    ).all()
    return end - incident.started_at - sum((r - b for r, b in gaps), timedelta())


def _relink_alert_group(session: Session, incident: Incident) -> str | None:
    """Give a reopened alert incident its group back, so that group firing again updates it.

    Not when another incident holds the group already (it fired again while this one was
    resolved): the unique index allows one open incident per group, and that one is newer.
    """
    group = incident.alert_group
    if group is None or incident.alert_group_open is not None:
        return None
    taken = session.execute(sa.select(col(Incident.id)).where(col(Incident.alert_group_open) == group)).first()
    if taken is not None:
        log.info("%s reopened; alert group %r stays with %s", incident.id, group, taken[0])
        return None
    session.flush()  # the reopening itself, outside the savepoint below
    try:
        # A savepoint: a declaration for the group committed since the check above must not cost
        # the reopening itself; it only keeps the group.
        with session.begin_nested():
            incident.alert_group_open = group
            session.add(incident)
            session.flush()
    except sa.exc.IntegrityError:
        log.info("%s reopened; alert group %r was declared again meanwhile", incident.id, group)
        return None
    return group


def change_severity(
    session: Session,
    incident_id: str,
    severity: str,
    *,
    user: str,
    policy: deadlines.Policy,
    now: datetime,
) -> Incident:
    if severity not in policy.response_targets:
        raise InvalidChange(f"{severity!r} is not a severity: use P0, P1, P2 or P3.")
    incident = get(session, incident_id, for_update=True)
    if incident.severity == severity:
        raise InvalidChange(f"{incident.id} is already {severity}.")
    before = incident.severity
    incident.severity = severity
    _touch(incident, now)
    text = f"Severity changed from {before} to {severity} by {mrkdwn.user(user)}"
    add_system_entry(
        session,
        incident,
        SystemEvent.SEVERITY_CHANGED,
        text,
        author=user,
        now=now,
        data={"from": before, "to": severity},
    )
    announce(session, incident.id, f":arrows_counterclockwise: {text}.", now=now)
    # Deadlines count from the declaration, so raising a P2 to P0 twenty minutes in is overdue
    # already: the sweep is told to look now.
    reschedule(session, incident, policy, now)
    paging.incident_paged(session, incident, policy.oncall, now)  # raised into a paging severity
    return incident


def add_follow_up(session: Session, incident_id: str, form: FollowUpForm, *, user: str, now: datetime) -> FollowUp:
    incident = get(session, incident_id, for_update=True)
    follow_up = FollowUp(
        incident_id=incident.id,
        description=form.description,
        owner=form.owner,
        due_date=form.due_date,
        created_at=now,
    )
    session.add(follow_up)
    session.flush()
    details = [f"owner {mrkdwn.user(form.owner)}" if form.owner else "no owner yet"]
    if form.due_date:
        details.append(f"due {form.due_date.isoformat()}")
    description = mrkdwn.escape(form.description)
    text = f"Follow-up FU-{follow_up.id} added by {mrkdwn.user(user)}: {description} ({', '.join(details)})"
    add_system_entry(
        session, incident, SystemEvent.FOLLOWUP_ADDED, text, author=user, now=now, data={"follow_up": follow_up.id}
    )
    announce(session, incident.id, f":memo: {text}.", now=now)
    return follow_up


def record_runbook_use(session: Session, incident_id: str, runbook: str, *, user: str | None, now: datetime) -> None:
    incident = get(session, incident_id)
    session.add(RunbookUse(incident_id=incident.id, runbook=runbook, user_id=user, used_at=now))
    if incident.runbook is None:
        incident.runbook = runbook
        session.add(incident)
    add_system_entry(
        session,
        incident,
        SystemEvent.RUNBOOK_OPENED,
        f"Runbook {mrkdwn.escape(runbook)} opened by {mrkdwn.user(user)}",
        author=user,
        now=now,
        data={"runbook": runbook},
    )


def _touch(incident: Incident, now: datetime) -> None:
    incident.last_activity_at = now


def card_posted(session: Session, incident_id: str, *, channel_id: str, ts: str) -> None:
    incident = get(session, incident_id, for_update=True)
    incident.channel_id = channel_id
    incident.card_ts = ts
    session.add(incident)
