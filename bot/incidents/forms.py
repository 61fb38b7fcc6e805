"""What a person asks for, as typed values with their limits: declare, resolve and follow-up forms, titles, ids."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from bot.ids import Block

TITLE_MAX = 150


TEXT_MAX = 3000  # Slack's own cap on plain_text_input values


USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")  # at most 32 characters, as stored


def clean(text: str) -> str:
    """Typed text as either database can store it: without NUL characters or lone surrogates
    (which PostgreSQL, respectively the UTF-8 encoder, refuse with an error, not a message)."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate becomes U+FFFD, as any decoder would show it
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class FormErrors(ValueError):
    """Field errors keyed by block id, shown under the fields in the modal."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class DeclareForm:
    title: str
    severity: str
    affected: str | None = None
    affected_users: int | None = None
    detection: str | None = None
    detection_url: str | None = None
    reported_by: str | None = None  # who wrote the Slack message it was declared from
    category: str | None = None
    commander: str | None = None


@dataclass(frozen=True)
class ResolveForm:
    root_cause: str
    resolution: str
    root_cause_class: str
    category: str | None = None
    impact: str | None = None
    revenue_impact: float | None = None
    lessons_worked: str | None = None
    lessons_didnt: str | None = None
    rca_url: str | None = None


@dataclass(frozen=True)
class FollowUpForm:
    description: str
    owner: str | None
    due_date: date | None


def parse_title(raw: str | None) -> str:
    """The one rule for titles, shared by the modal and `/incident <title>`."""
    title = " ".join(clean(raw or "").split())
    if not title:
        raise FormErrors({Block.TITLE: "Give the incident a title."})
    if len(title) > TITLE_MAX:
        raise FormErrors({Block.TITLE: f"Titles are at most {TITLE_MAX} characters (this one is {len(title)})."})
    return title


@dataclass(frozen=True)
class CommandText:
    """What `/incident <text>` asks for."""

    kind: str  # declare | help | list | status | oncall | oncall_cover | usage
    title: str | None = None
    incident_id: str | None = None
    problem: str | None = None


INCIDENT_ID = re.compile(r"^INC-\d{4}-\d{2}-\d{2}-\d{3,}$")


SUBCOMMANDS = ("help", "list", "status", "maintenance", "oncall")


@dataclass(frozen=True)
class DeclareExtras:
    """What a non-human source adds to a declaration (Alertmanager)."""

    source: str = "slack"
    started_at: datetime | None = None
    alert_group: str | None = None
    alert_name: str | None = None
    runbook: str | None = None
