"""Sending a claimed digest: the message from the database, then its chart into the thread."""

from __future__ import annotations

import functools
from typing import Any

from slack_sdk import WebClient
from sqlmodel import Session

from bot.incidents.outbox import OutboxKind, enqueue
from bot.reports import chart
from bot.reports.digest import (
    STEP_CHART,
    chart_points,
    chart_title,
    load,
    period_of,
    period_start_date,
    run_for,
)
from bot.reports.periods import Period
from bot.settings import Settings
from bot.slack.blocks.digest import digest_message
from bot.slack.delivery import Deliverer
from bot.slack.sends import Send
from storage.models import DigestRun, Outbox, utcnow


def send(deliverer: Deliverer, session: Session, row: Outbox) -> Send | None:
    """The Slack call for a DIGEST row: the message first, then (its own row) the chart in its thread."""
    payload = dict(row.payload)
    period = period_of(payload)
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


def install(deliverer: Deliverer) -> None:
    """Let the deliverer send DIGEST rows (this module builds on delivery, so it registers itself)."""
    deliverer.register(OutboxKind.DIGEST, functools.partial(send, deliverer))
