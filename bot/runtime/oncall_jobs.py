"""The on-call jobs: the paging sweep (due page steps), every few seconds while `oncall:` has routes."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.oncall import paging
from bot.oncall.outbound import Senders, send_outbound
from bot.settings import Settings
from bot.slack.context import Runtime
from bot.slack.page_delivery import SlackEmails
from storage.errors import run_logged
from storage.models import utcnow

log = logging.getLogger(__name__)
# A page's first step is usually at PT0M: the sweep looks at least this often (seconds).
PAGING_INTERVAL = 5.0


def channels(settings: Settings) -> paging.Channels:
    return paging.Channels(email=settings.smtp_url is not None, webhook=bool(settings.page_webhook_url))


def senders(rt: Runtime) -> Senders:
    settings = rt.settings
    return Senders(
        smtp_url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
        email_from=settings.email_from,
        webhook_url=settings.page_webhook_url,
        webhook_secret=settings.page_webhook_secret.get_secret_value() if settings.page_webhook_secret else None,
        email_lookup=SlackEmails(rt.client),
    )


def paging_pass(rt: Runtime, *, now: datetime | None = None, sending: Senders | None = None) -> paging.Swept | None:
    """One paging sweep at `now` (tests pass it: no waiting for a step's offset), then what it claimed sent."""
    now = now or utcnow()
    config = rt.settings.oncall
    swept = run_logged(
        log, "paging sweep",
        lambda: paging.sweep(rt.sessions, config, now=now, worker=rt.deliverer.worker, channels=channels(rt.settings)),
    )
    if swept is None:
        return None
    if swept.queued:
        rt.deliverer.kick()
    if swept.outbound:
        run_logged(log, "sending page notices",
                   lambda: send_outbound(rt.sessions, config, swept.outbound or [], sending or senders(rt), now=now))
    return swept


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    """The paging sweep, when some route can start a page."""
    if not rt.settings.oncall.routes:
        return []
    return [
        {
            "func": paging_pass,
            "trigger": "interval",
            "seconds": min(PAGING_INTERVAL, rt.settings.escalation_check_interval),
            "args": [rt],
            "id": "paging-sweep",
            "name": "paging sweep",
            "next_run_time": utcnow(),  # a page left due while the bot was down goes out now
            "max_instances": 1,
            "coalesce": True,
        }
    ]
