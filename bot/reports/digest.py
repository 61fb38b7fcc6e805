"""The weekly, monthly and quarterly digests: claimed once per period, then loaded from the database to be sent.

How one period ends up as exactly one post, whatever the number of replicas, restarts and retries:

1. The cron job (or the start-up catch-up, or `incident-bot report … --post`) inserts a DigestRun for
   (period kind, period start) with INSERT … ON CONFLICT DO NOTHING. Only the transaction whose row
   went in goes on, and it enqueues a DIGEST outbox row in that same transaction.
2. The deliverer renders the message from the database when it sends it and posts it once; the
   message's channel and ts are stored on the DigestRun together with a second outbox row for the chart.
3. That row uploads the chart into the digest's thread (files_upload_v2 needs the channel ID, which
   chat.postMessage answered) and marks the DigestRun delivered. A failed upload is retried on its
   own, so it never posts the message again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from bot import mrkdwn
from bot.incidents.outbox import OutboxKind, enqueue, insert_ignoring_conflict
from bot.oncall.load import period_load
from bot.oncall.pages import Load
from bot.reports import chart, metrics
from bot.reports.metrics import PeriodMetrics, RecurringIssue
from bot.reports.periods import Period, current_period, periods_back
from bot.settings import Settings
from storage.models import DigestRun, FollowUp, Incident, Outbox, table_of


@dataclass(frozen=True)
class ActionItem:
    """An open follow-up, shown as an action item in the monthly and quarterly summaries."""

    id: int
    description: str
    incident_id: str
    owner: str | None = None
    due: date | None = None


@dataclass(frozen=True)
class DigestData:
    """Everything one digest shows, read from the database at send time."""

    kind: str  # weekly | monthly | quarterly
    metrics: PeriodMetrics
    now: datetime
    links: Mapping[str, str] = field(default_factory=dict)  # incident id -> its card's thread link
    action_items: Sequence[ActionItem] = ()
    action_total: int = 0
    recurring: Sequence[RecurringIssue] = ()
    oncall_load: Mapping[str, Load] = field(default_factory=dict)  # per person; empty without schedules


KINDS = ("weekly", "monthly", "quarterly")


STEP_POST = "post"


STEP_CHART = "chart"


CHART_PERIODS = {"weekly": 12, "monthly": 12, "quarterly": 8}


ACTION_ITEM_LIMIT = 10


def period_start_date(period: Period) -> date:
    """The DigestRun key: the period's first day in DIGEST_TIMEZONE."""
    return period.local_start.date()


def claim(session: Session, period: Period, *, now: datetime) -> bool:
    """Insert the period's DigestRun and queue its post, in the caller's transaction; False if taken."""
    start = period_start_date(period)
    won = insert_ignoring_conflict(
        session, DigestRun, {"period": period.kind, "period_start": start, "claimed_at": now}
    )
    if won:
        enqueue(
            session,
            OutboxKind.DIGEST,
            payload={
                "period": period.kind,
                "start": period.start.isoformat(),
                "timezone": period.timezone,
                "label": period.label,
                "step": STEP_POST,
            },
            dedupe_key=f"digest:{period.kind}:{start.isoformat()}",
            now=now,
        )
    return won


def run_for(session: Session, period: Period) -> DigestRun | None:
    return session.exec(
        select(DigestRun).where(DigestRun.period == period.kind, DigestRun.period_start == period_start_date(period))
    ).first()


def period_of(payload: dict[str, Any]) -> Period:
    start = datetime.fromisoformat(payload["start"])
    return current_period(payload["period"], start, payload.get("timezone") or "UTC")


def load(session: Session, settings: Settings, period: Period, now: datetime) -> DigestData:
    m = metrics.period_metrics(session, settings=settings, period=period, now=now)
    links = card_links(session, [incident.id for incident in m.open_incidents])
    load = period_load(session, settings.oncall, period.start, period.end)
    if period.kind == "weekly":
        return DigestData(kind=period.kind, metrics=m, now=now, links=links, oncall_load=load)
    items, total = open_action_items(session, limit=ACTION_ITEM_LIMIT)
    return DigestData(
        kind=period.kind,
        metrics=m,
        now=now,
        links=links,
        action_items=items,
        action_total=total,
        recurring=metrics.recurring_issues(session, start=period.start, end=period.end),
        oncall_load=load,
    )


def card_links(session: Session, incident_ids: Sequence[str]) -> dict[str, str]:
    """Incident id -> link to its card's thread, for the incidents whose card is posted."""
    if not incident_ids:
        return {}
    c = table_of(Incident).c
    rows = session.execute(sa.select(c.id, c.channel_id, c.card_ts).where(c.id.in_(list(incident_ids))))
    return {row.id: mrkdwn.thread_link(row.channel_id, row.card_ts) for row in rows if row.channel_id and row.card_ts}


def open_action_items(session: Session, *, limit: int) -> tuple[list[ActionItem], int]:
    """Open follow-ups, soonest due first (undated last), and how many are open in all."""
    f = table_of(FollowUp).c
    statement = (
        sa.select(f.id, f.description, f.incident_id, f.owner, f.due_date)
        .where(f.done.is_(False))
        .order_by(sa.nulls_last(f.due_date.asc()), f.id)
        .limit(limit)
    )
    items = [ActionItem(row[0], row[1], row[2], row[3], row[4]) for row in session.execute(statement)]
    total = session.execute(sa.select(sa.func.count()).where(f.done.is_(False))).scalar_one()
    return items, int(total)


def chart_points(session: Session, settings: Settings, period: Period, now: datetime) -> list[chart.ChartPoint]:
    periods = periods_back(period, CHART_PERIODS.get(period.kind, 12))
    return chart.points_from(metrics.summaries(session, settings=settings, periods=periods, now=now))


def chart_title(period: Period, points: Sequence[chart.ChartPoint]) -> str:
    unit = chart.UNITS.get(period.kind, "period")
    span = f"{points[0].label} to {points[-1].label}" if points else period.label
    return f"Incidents per {unit} by severity, and MTTR ({span})"


def next_attempt(session: Session, period: Period) -> datetime | None:
    """When the period's pending digest row is next due (after a failure's back-off)."""
    prefix = f"digest:{period.kind}:{period_start_date(period).isoformat()}"
    o = table_of(Outbox).c
    statement = (
        sa.select(o.next_attempt_at)
        .where(o.kind == OutboxKind.DIGEST.value, o.delivered_at.is_(None), o.dedupe_key.like(prefix + "%"))
        .order_by(o.next_attempt_at)
        .limit(1)
    )
    return session.execute(statement).scalar_one_or_none()
