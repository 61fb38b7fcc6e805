"""What the fault tests share: fast retry settings, and reading the outbox and the fake Slack."""

from __future__ import annotations

from collections.abc import Callable

from bot_harness import Bot
from fake_slack import Call

from bot.incidents.outbox import pending_count
from storage.db import unit_of_work
from storage.models import Incident

FAST = {
    "response_targets": {"P0": 2},
    "resolution_targets": {"P0": 120},
    "escalation_contacts": ["U0ONCALL"],
    "escalation_check_interval": 0.5,
    "escalation_max_repeats": 0,
}


def in_thread_of(incident: Incident, fragment: str) -> Callable[[Call], bool]:
    return lambda c: c.params.get("thread_ts") == incident.card_ts and fragment in str(c.params.get("text"))


def pending(bot: Bot) -> int:
    with unit_of_work(bot.sessions) as session:
        return pending_count(session)
