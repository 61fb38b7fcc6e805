"""The escalation policy and runbooks as types, with the hand-kept tracker's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel, Field

from bot.oncall.config import OnCallConfig

DEFAULT_RESPONSE_TARGETS = {
    "P0": timedelta(minutes=5),
    "P1": timedelta(minutes=15),
    "P2": timedelta(hours=1),
    "P3": timedelta(hours=4),
}
DEFAULT_RESOLUTION_TARGETS = {
    "P0": timedelta(minutes=10),
    "P1": timedelta(minutes=30),
    "P2": timedelta(hours=2),
    "P3": timedelta(hours=8),
}
DEFAULT_UPDATE_REMINDER = {"P0": timedelta(minutes=30), "P1": timedelta(hours=1)}


@dataclass(frozen=True)
class Policy:
    """The escalation settings, severity-keyed."""

    response_targets: dict[str, timedelta]
    resolution_targets: dict[str, timedelta]
    update_reminder: dict[str, timedelta] = field(default_factory=dict)
    repeat: timedelta | None = None  # None: the severity's response target
    max_repeats: int = 2
    # The `oncall:` section: which incidents start a page (bot/oncall/paging.py); None: no paging.
    oncall: OnCallConfig | None = None

    def repeat_for(self, severity: str) -> timedelta:
        return self.repeat or self.response_targets[severity]


class Runbook(BaseModel):
    """A runbook and what it applies to; empty lists mean "any"."""

    url: str
    severities: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)


# The runbooks the hand-kept tracker links to ("Related Documentation"). Relative
# paths are resolved against RUNBOOK_BASE_URL so a team only sets one value.
DEFAULT_RUNBOOKS: dict[str, Runbook] = {
    "P0: Service Down": Runbook(url="runbooks/p0-service-down.md", severities=["P0"], categories=["Infrastructure"]),
    "P0: Database Failure": Runbook(url="runbooks/p0-database-failure.md", severities=["P0"], categories=["Database"]),
    "P0: Memory Leak": Runbook(url="runbooks/p0-memory-leak.md", severities=["P0"], categories=["Performance"]),
    "P1: Login Failure": Runbook(url="runbooks/p1-login-failure.md", severities=["P1"], categories=["Authentication"]),
    "P1: Payment Failure": Runbook(
        url="runbooks/p1-payment-failure.md", severities=["P1"], categories=["Payment Gateway"]
    ),
    "P1: Slow Queries": Runbook(
        url="runbooks/p1-slow-queries.md", severities=["P1"], categories=["Performance", "Database"]
    ),
    "Rollback Procedures": Runbook(url="ROLLBACK_PROCEDURES.md"),
    "Deployment Runbook": Runbook(url="DEPLOYMENT_RUNBOOK.md"),
}
