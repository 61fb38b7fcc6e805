"""Paging wired into the incidents: a page starts with a routed incident, and the sweep claims due notices.

The lifecycle (bot/incidents/lifecycle.py) calls `incident_paged` on declaration, on a severity
change and on a reopening, `page_acknowledged` and `pages_resolved`, each in the transaction of the
change itself.

`sweep` is the paging job's pass (bot/runtime/scheduler.py): the pages whose next step is due
(one range scan on `page.next_step_at`), each due notice claimed by inserting its row
(bot/oncall/service.claim_notices: one replica wins each), and, in the same transaction, what
Slack must be told written to the outbox (a direct message per user, a mention in the thread per
user group). The outbox then sends each exactly once and retries it. E-mail and webhook notices
are sent by `send_outbound` after the commit, through their own claim (`mark_sent` is fenced).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import mrkdwn
from bot.incidents.outbox import OutboxKind, enqueue
from bot.incidents.queries import current_reopen
from bot.oncall import service
from bot.oncall.config import SCHEDULE_PREFIX, OnCallConfig, Policy
from bot.oncall.pages import Notice, channels_for, due_steps, next_due_at, resolve_targets, route_for
from bot.oncall.schedules import OverrideIndex, on_call_at
from storage.db import SessionFactory, unit_of_work
from storage.models import Incident
from storage.oncall import Page

log = logging.getLogger(__name__)

# The `oncall.email.to` list is one notice per page (its first step), not one per person.
LIST_TARGET = "oncall.email.to"
MAX_ATTEMPTS = 8  # e-mail and webhook: past this many failed attempts a notice is a dead letter
EmailLookup = Callable[[str], str | None]


def incident_fields(incident: Incident) -> dict[str, Any]:
    """What a route matches on; an incident's `service` is what it says is affected."""
    return {"severity": incident.severity, "category": incident.category, "service": incident.affected}


def incident_paged(session: Session, incident: Incident, config: OnCallConfig | None, now: datetime) -> Page | None:
    """Start a page when a route matches the incident (declared, raised into a paging severity, or reopened).

    None when no route matches, a page of this incident is running already, or someone owns the
    incident's current spell (raising an acknowledged incident's severity pages nobody: it has an
    owner). A reopened incident is a new spell: the acknowledgement of its first life does not
    own it, so it pages again, as a new page (`Page.spell`).
    """
    if config is None or incident.resolved_at is not None or owned(session, incident):
        return None
    policy = route_for(incident_fields(incident), config.routes)
    if policy is None:
        return None
    page = service.start_page(session=session, incident_id=incident.id, policy=policy, now=now)
    if page is not None:
        log.info("%s: page %s started (policy %s)", incident.id, page.id, policy)
    return page


def owned(session: Session, incident: Incident) -> bool:
    """Someone acknowledged the incident's current spell: since its last reopening, if it has one.

    The incident's `acknowledged_at` is its first acknowledgement (MTTA counts from it, and
    reopening keeps it); after a reopening, the acknowledgement of that spell's page owns it.
    """
    if incident.acknowledged_at is None:
        return False
    if not incident.reopened_count:
        return True
    spell = current_reopen(session, incident)
    if spell is None or incident.acknowledged_at >= spell.reopened_at:
        return True
    reopened_at = spell.reopened_at
    acked_since = select(Page.id).where(Page.incident_id == incident.id, col(Page.acknowledged_at) >= reopened_at)
    return session.exec(acked_since).first() is not None


def page_acknowledged(session: Session, incident_id: str, *, user: str, now: datetime) -> Page | None:
    """The incident was acknowledged (card or DM): who and when go on the page, which ends."""
    return service.acknowledge_page(session=session, incident_id=incident_id, user_id=user, now=now)


def pages_resolved(session: Session, incident_id: str, *, now: datetime) -> int:
    return service.end_pages(session=session, incident_id=incident_id, now=now, reason="resolved")


def on_call_people(
    incident: Incident, config: OnCallConfig | None, overrides: Mapping[str, OverrideIndex], now: datetime
) -> list[str]:
    """Whoever is on call now for the schedules of the first step of the incident's policy.

    The target escalation's "Escalated" reply mentions them too (CONTRACT.md On-call).
    """
    if config is None:
        return []
    policy_name = route_for(incident_fields(incident), config.routes)
    policy = config.policies.get(policy_name or "")
    if policy is None:
        return []
    people: list[str] = []
    for target in policy.steps[0].notify:
        if target.startswith(SCHEDULE_PREFIX):
            name = target[len(SCHEDULE_PREFIX):]
            user = on_call_at(config.schedules[name], overrides.get(name), now)
            if user is not None and user not in people:
                people.append(user)
    return people


# The sweep ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbound:
    """An e-mail or webhook notice this process claimed, with what it needs to say."""

    claim: service.Claim
    incident: dict[str, Any]  # id, title, severity, status, thread_url


@dataclass
class Swept:
    queued: int = 0  # notices handed to the outbox (DMs, mentions)
    outbound: list[Outbound] | None = None

    def __post_init__(self) -> None:
        self.outbound = self.outbound or []


@dataclass(frozen=True)
class Channels:
    """Which channels besides Slack are on: e-mail (SMTP_URL) and the webhook (PAGE_WEBHOOK_URL)."""

    email: bool = False
    webhook: bool = False
    email_known: Callable[[str], bool] | None = None  # default: anyone may have an address


def due_pages(session: Session, now: datetime, *, limit: int) -> list[Page]:
    query = (
        select(Page)
        .where(
            col(Page.ended_at).is_(None),
            col(Page.acknowledged_at).is_(None),
            col(Page.next_step_at).is_not(None),
            col(Page.next_step_at) <= now,
        )
        .order_by(col(Page.next_step_at), col(Page.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Replicas sweeping at once take different pages; an acknowledgement in flight is skipped.
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query))


def sweep(
    sessions: SessionFactory,
    config: OnCallConfig,
    *,
    now: datetime,
    worker: str,
    channels: Channels | None = None,
    limit: int = 500,
) -> Swept:
    """One pass: claim every notice due at `now` of the due pages; queue the Slack ones.

    Also takes the e-mail and webhook notices due for a retry. What this returns as `outbound`
    is this process's to send (`send_outbound`), after this transaction has committed.
    """
    channels = channels or Channels()
    swept = Swept()
    with unit_of_work(sessions) as session:
        pages = due_pages(session, now, limit=limit)
        if pages:
            incidents = _incidents(session, [p.incident_id for p in pages])
            overrides = service.override_indexes(
                session=session, start=min(p.started_at for p in pages), end=now
            ) if config.schedules else {}
            for page in pages:
                _sweep_page(session, page, config, incidents[page.incident_id], overrides, channels, now, worker, swept)
        retries = service.claim_retries(session=session, worker=worker, now=now)
        if retries:
            page_ids = {c.page_id for c in retries}
            by_page = {p.id: p for p in session.exec(select(Page).where(col(Page.id).in_(page_ids)))}
            incidents = _incidents(session, [p.incident_id for p in by_page.values()])
            for claim in retries:
                incident = incidents[by_page[claim.page_id].incident_id]
                assert swept.outbound is not None
                swept.outbound.append(Outbound(claim, incident_summary(incident)))
    return swept


def _incidents(session: Session, ids: list[str]) -> dict[str, Incident]:
    return {i.id: i for i in session.exec(select(Incident).where(col(Incident.id).in_(set(ids))))}


def _sweep_page(
    session: Session,
    page: Page,
    config: OnCallConfig,
    incident: Incident,
    overrides: Mapping[str, OverrideIndex],
    channels: Channels,
    now: datetime,
    worker: str,
    swept: Swept,
) -> None:
    policy = config.policies.get(page.policy)
    if policy is None:
        # The config changed under a running page: nothing left to follow.
        log.warning("%s: page %s follows policy %r, which the config no longer has", incident.id, page.id, page.policy)
        page.next_step_at = None
        session.add(page)
        return
    assert page.id is not None
    email_known = channels.email_known or (lambda _user: True)
    notices = new_notices(policy, page, now, config, overrides, channels, email_known)
    if channels.email and config.email is not None and incident.severity in config.email.severities:
        notices.append(Notice(0, 0, LIST_TARGET, "email"))
    claims = service.claim_notices(session=session, page_id=page.id, notices=notices, worker=worker, now=now)
    summary = incident_summary(incident)
    for claim in claims:
        if claim.channel in ("dm", "mention"):
            _queue(session, claim, incident, policy)
            service.mark_sent(session=session, claim=claim, now=now)
            swept.queued += 1
        else:
            assert swept.outbound is not None
            swept.outbound.append(Outbound(claim, summary))
    page.next_step_at = next_due_at(policy, page.started_at, now)
    session.add(page)
    if claims:
        log.info("%s: page %s claimed %d notice(s)", incident.id, page.id, len(claims))


def new_notices(
    policy: Policy, page: Page, now: datetime, config: OnCallConfig, overrides: Mapping[str, OverrideIndex],
    channels: Channels, email_known: Callable[[str], bool],
) -> list[Notice]:
    """The notices of the steps due since the page's `next_step_at` (bot.oncall.pages.plan_notices,
    less the steps before it: a pass moves `next_step_at` past a step only in the transaction that
    claimed it). Claiming stays what makes a notice once; this only spares re-inserting old ones."""
    since = page.next_step_at or page.started_at
    notices: list[Notice] = []
    for due in due_steps(policy, page.started_at, now, acknowledged=False):
        if due.due_at < since:
            continue
        for target in resolve_targets(due.step, config.schedules, overrides, due.due_at):
            known = channels.email and email_known(target.id)
            for channel in channels_for(target, email_known=known, webhook=channels.webhook):
                notices.append(Notice(due.round, due.index, target.id, channel, target.schedule))
    return notices


def _queue(session: Session, claim: service.Claim, incident: Incident, policy: Policy) -> None:
    """The Slack side of a notice, in the outbox (its dedupe key makes a second queueing a no-op).

    Queued at the wall clock's now, not the sweep's: a sweep run for a later `now` (tests) must
    not leave the row waiting until then.
    """
    step = step_label(policy, claim.round, claim.step)
    if claim.channel == "dm":
        enqueue(
            session, OutboxKind.PAGE_DM, incident_id=incident.id, dedupe_key=f"page_dm:{claim.id}",
            payload={"user": claim.target, "page_id": claim.page_id, "notice_id": claim.id, "step": step,
                     "schedule": claim.schedule},
        )
        return
    text = (
        f":rotating_light: Paging {mrkdwn.mention(claim.target)} ({step}): {incident.id} [{incident.severity}] "
        f"{mrkdwn.escape(incident.title)} is not acknowledged yet."
    )
    enqueue(session, OutboxKind.THREAD_REPLY, incident_id=incident.id, dedupe_key=f"page_mention:{claim.id}",
            payload={"text": text})


def step_label(policy: Policy, round_: int, step: int) -> str:
    label = f"step {step + 1} of {len(policy.steps)}"
    return label + (f", repeat {round_}" if round_ else "")


def incident_summary(incident: Incident) -> dict[str, Any]:
    """What a page says about its incident (DM, e-mail, webhook), with the link to its thread once posted."""
    posted = incident.channel_id and incident.card_ts
    thread_url = mrkdwn.thread_link(incident.channel_id or "", incident.card_ts or "") if posted else ""
    return {"id": incident.id, "title": incident.title, "severity": incident.severity, "status": incident.status,
            "thread_url": thread_url}


def dead_notices(session: Session | sa.Connection) -> int:
    """E-mail and webhook notices set aside for good (the /healthz detail `page_dead_letters`)."""
    table = service.NOTIFICATIONS
    return int(session.execute(sa.select(sa.func.count()).where(table.c.dead_at.is_not(None))).scalar_one())
