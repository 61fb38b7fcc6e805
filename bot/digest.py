"""The weekly, monthly and quarterly digests: claimed once per period, posted through the outbox with a chart.

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

import logging
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient
from sqlmodel import Session, select

from bot import chart, metrics, mrkdwn
from bot.blocks.digest import ActionItem, DigestData, digest_message
from bot.delivery import Deliverer, Send
from bot.jobs import database_errors
from bot.outbox import OutboxKind, enqueue, insert_ignoring_conflict
from bot.periods import Period, current_period, periods_back, previous_period
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError
from storage.db import SessionFactory, unit_of_work
from storage.models import DigestRun, FollowUp, Incident, Outbox, utcnow

log = logging.getLogger(__name__)

KINDS = ("weekly", "monthly", "quarterly")
STEP_POST = "post"
STEP_CHART = "chart"
# A fire delayed by a busy or suspended host still posts within this; a bot that was down is
# covered by catch_up() at start-up instead.
MISFIRE_GRACE_SECONDS = 6 * 3600
CHART_PERIODS = {"weekly": 12, "monthly": 12, "quarterly": 8}
ACTION_ITEM_LIMIT = 10
# How long `report --post` keeps retrying before it leaves the post queued for a running bot.
SYNC_TIMEOUT_SECONDS = 60.0


# ---------------------------------------------------------------------------------------------
# Scheduling


def crons(settings: Settings) -> dict[str, str]:
    """The enabled digests and their crontab; an empty setting switches that digest off."""
    configured = {
        "weekly": settings.digest_cron,
        "monthly": settings.monthly_digest_cron,
        "quarterly": settings.quarterly_digest_cron,
    }
    return {kind: expr for kind, expr in configured.items() if expr.strip()}


def trigger(expr: str, settings: Settings) -> CronTrigger:
    return CronTrigger.from_crontab(expr, timezone=settings.digest_timezone)


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    """One cron job per enabled digest, and a one-off catch-up at start-up for a digest missed while down."""
    enabled = crons(rt.settings)
    found: list[dict[str, Any]] = [
        {
            "func": run_digest,
            "trigger": trigger(expr, rt.settings),
            "args": [rt, kind],
            "id": f"digest-{kind}",
            "name": f"{kind} digest",
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        }
        for kind, expr in enabled.items()
    ]
    if enabled:
        found.append(
            {
                "func": catch_up,
                "trigger": "date",
                "run_date": utcnow(),
                "args": [rt],
                "id": "digest-catch-up",
                "name": "missed digests",
                "misfire_grace_time": None,  # however late the scheduler starts, run it once
            }
        )
    return found


def run_digest(rt: Runtime, kind: str, *, now: datetime | None = None) -> bool:
    """The scheduled job: claim the period that just ended and queue its post; True when this call won."""
    now = now or utcnow()
    period = previous_period(kind, now, rt.settings.digest_timezone)
    won = False
    with database_errors(log, f"claiming the {kind} digest for {period.label}"):
        with unit_of_work(rt.sessions) as session:
            claimed = claim(session, period, now=now)
        won = claimed  # only once the claim is committed
    if won:
        log.info("claimed the %s digest for %s", kind, period.label)
        rt.deliverer.kick()
    return won


def missed(expr: str, kind: str, now: datetime, tz: str) -> bool:
    """The cron fired (or should have) since the current period began: its digest is due now.

    A fire time before the current period reported on an older period; that one is not posted late.
    """
    window = current_period(kind, now, tz)
    fire = CronTrigger.from_crontab(expr, timezone=tz).get_next_fire_time(None, window.start)
    return fire is not None and fire <= now


def catch_up(rt: Runtime, *, now: datetime | None = None) -> list[str]:
    """At start-up: post each enabled digest whose scheduled time passed while the bot was down.

    The claim makes this safe to run on every start of every replica: a period already claimed
    (posted, or being posted) is left alone.
    """
    now = now or utcnow()
    tz = rt.settings.digest_timezone
    return [
        kind
        for kind, expr in crons(rt.settings).items()
        if missed(expr, kind, now, tz) and run_digest(rt, kind, now=now)
    ]


# ---------------------------------------------------------------------------------------------
# The claim


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


def _period_of(payload: dict[str, Any]) -> Period:
    start = datetime.fromisoformat(payload["start"])
    return current_period(payload["period"], start, payload.get("timezone") or "UTC")


# ---------------------------------------------------------------------------------------------
# What the digest shows (read at send time)


def load(session: Session, settings: Settings, period: Period, now: datetime) -> DigestData:
    m = metrics.period_metrics(session, settings=settings, period=period, now=now)
    links = card_links(session, [incident.id for incident in m.open_incidents])
    if period.kind == "weekly":
        return DigestData(kind=period.kind, metrics=m, now=now, links=links)
    items, total = open_action_items(session, limit=ACTION_ITEM_LIMIT)
    return DigestData(
        kind=period.kind,
        metrics=m,
        now=now,
        links=links,
        action_items=items,
        action_total=total,
        recurring=metrics.recurring_issues(session, start=period.start, end=period.end),
    )


def card_links(session: Session, incident_ids: Sequence[str]) -> dict[str, str]:
    """Incident id -> link to its card's thread, for the incidents whose card is posted."""
    if not incident_ids:
        return {}
    c = cast(sa.Table, Incident.__table__).c
    rows = session.execute(sa.select(c.id, c.channel_id, c.card_ts).where(c.id.in_(list(incident_ids))))
    return {row.id: mrkdwn.thread_link(row.channel_id, row.card_ts) for row in rows if row.channel_id and row.card_ts}


def open_action_items(session: Session, *, limit: int) -> tuple[list[ActionItem], int]:
    """Open follow-ups, soonest due first (undated last), and how many are open in all."""
    f = cast(sa.Table, FollowUp.__table__).c
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


# ---------------------------------------------------------------------------------------------
# Delivery (the outbox handler for OutboxKind.DIGEST)


def send(deliverer: Deliverer, session: Session, row: Outbox) -> Send | None:
    """The Slack call for a DIGEST row: the message first, then (its own row) the chart in its thread."""
    payload = dict(row.payload)
    period = _period_of(payload)
    run = run_for(session, period)
    if run is None or run.delivered_at is not None:
        return None
    if payload.get("step") == STEP_CHART:
        return _chart_send(deliverer.settings, session, run, period)
    if run.ts:
        return None  # posted by a sender that stopped before marking the row; the chart has its own row
    return _post_send(deliverer, session, run, period, payload)


def _post_send(deliverer: Deliverer, session: Session, run: DigestRun, period: Period, payload: dict[str, Any]) -> Send:
    settings = deliverer.settings
    message = digest_message(load(session, settings, period, utcnow()), settings)
    channel = settings.incident_channel
    run_id = run.id
    chart_key = f"digest:{period.kind}:{period_start_date(period).isoformat()}:{STEP_CHART}"

    def call(client: WebClient) -> Any:
        return client.chat_postMessage(channel=channel, **message)

    def after(session: Session, response: Any) -> None:
        stored = session.get(DigestRun, run_id)
        assert stored is not None
        stored.channel_id = response["channel"]
        stored.ts = response["ts"]
        session.add(stored)
        enqueue(session, OutboxKind.DIGEST, payload={**payload, "step": STEP_CHART}, dedupe_key=chart_key)
        deliverer.kick()  # the chart row is new: the running pass did not see it

    return Send(call, after)


def _chart_send(settings: Settings, session: Session, run: DigestRun, period: Period) -> Send:
    points = chart_points(session, settings, period, utcnow())
    title = chart_title(period, points)
    channel, ts, run_id = run.channel_id, run.ts, run.id
    filename = f"incidents-{period.kind}-{period_start_date(period).isoformat()}.png"

    def call(client: WebClient) -> Any:
        # Rendered here, outside the database transaction: matplotlib takes a moment.
        png = chart.render_png(points, title=title, unit=chart.UNITS.get(period.kind, "period"))
        return client.files_upload_v2(
            content=png,
            filename=filename,
            title=title,
            alt_txt=title,
            channel=channel,
            thread_ts=ts,
        )

    def after(session: Session, _response: Any) -> None:
        stored = session.get(DigestRun, run_id)
        assert stored is not None
        stored.delivered_at = utcnow()
        session.add(stored)

    return Send(call, after)


# ---------------------------------------------------------------------------------------------
# `incident-bot report weekly|monthly|quarterly --post`


def post_report_now(settings: Settings, sessions: SessionFactory, period: str) -> int:
    """Post the last complete period's digest now, through the same claim as the scheduled job.

    Returns the exit code: 0 when posted (or already posted for that period), 1 when Slack did not
    take it in time; it then stays queued and a running bot delivers it.
    """
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        raise SettingsError(
            "SLACK_BOT_TOKEN is not set: `report --post` posts as the bot; copy the Bot User OAuth Token "
            "(xoxb-…) from the app's OAuth & Permissions page."
        )
    from bot.runtime import make_client

    now = utcnow()
    target = previous_period(period, now, settings.digest_timezone)
    with unit_of_work(sessions) as session:
        won = claim(session, target, now=now)
    if not won:
        print(
            f"incident-bot: the {period} digest for {target.label} was already posted (or is being posted); "
            "not posting it again",
            file=sys.stderr,
        )
        return 0
    deliverer = Deliverer(sessions, make_client(settings), settings)
    deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
    while True:
        deliverer.deliver_pending()
        with unit_of_work(sessions) as session:
            run = run_for(session, target)
            delivered = run is not None and run.delivered_at is not None
            waiting = _next_attempt(session, target)
        if delivered:
            print(f"incident-bot: posted the {period} digest for {target.label}", file=sys.stderr)
            return 0
        pause = max(0.2, (waiting - utcnow()).total_seconds()) if waiting else 0.5
        if time.monotonic() + pause > deadline:
            print(
                f"incident-bot: Slack did not take the {period} digest for {target.label} yet; it stays queued "
                "and the running bot will post it",
                file=sys.stderr,
            )
            return 1
        time.sleep(pause)


def _next_attempt(session: Session, period: Period) -> datetime | None:
    """When the period's pending digest row is next due (after a failure's back-off)."""
    prefix = f"digest:{period.kind}:{period_start_date(period).isoformat()}"
    o = cast(sa.Table, Outbox.__table__).c
    statement = (
        sa.select(o.next_attempt_at)
        .where(o.kind == OutboxKind.DIGEST.value, o.delivered_at.is_(None), o.dedupe_key.like(prefix + "%"))
        .order_by(o.next_attempt_at)
        .limit(1)
    )
    return session.execute(statement).scalar_one_or_none()
