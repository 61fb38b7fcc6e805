"""SQLModel tables and the domain's enumerations (see DOMAIN.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel

SEVERITIES = ("P0", "P1", "P2", "P3")
SEVERITY_MEANINGS = {
    "P0": "Critical: complete outage or data loss",
    "P1": "High: major feature down, severe degradation",
    "P2": "Medium: minor degradation, workaround exists",
    "P3": "Low: cosmetic, minimal impact",
}
CATEGORIES = (
    "Database",
    "Authentication",
    "Payment Gateway",
    "Performance",
    "Infrastructure",
    "Third-Party Service",
)
ROOT_CAUSE_CLASSES = (
    "Configuration Error",
    "Code Bug",
    "Capacity Issue",
    "External Dependency",
    "Human Error",
)
PREVENTION_STRATEGIES = {
    "Configuration Error": "Config validation in CI/CD",
    "Code Bug": "Increased test coverage",
    "Capacity Issue": "Better scaling policies",
    "External Dependency": "Circuit breakers + fallbacks",
    "Human Error": "Automation + checklists",
}


class Status(StrEnum):
    INVESTIGATING = "Investigating"
    MITIGATED = "Mitigated"
    RESOLVED = "Resolved"


class EntryKind(StrEnum):
    MESSAGE = "message"  # a human reply in the card's thread
    SYSTEM = "system"  # something the bot did or recorded


class SystemEvent(StrEnum):
    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    PAGE_ACKNOWLEDGED = "page_acknowledged"  # a reopened incident's new page, owned by someone
    STATUS_CHANGED = "status_changed"
    SEVERITY_CHANGED = "severity_changed"
    COMMANDER_CHANGED = "commander_changed"
    FOLLOWUP_ADDED = "followup_added"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ESCALATED = "escalated"
    NUDGED = "nudged"
    ALERT_FIRED = "alert_fired"
    ALERT_UPDATED = "alert_updated"
    ALERT_RESOLVED = "alert_resolved"
    RUNBOOK_OPENED = "runbook_opened"


class EscalationKind(StrEnum):
    RESPONSE = "response"
    RESOLUTION = "resolution"
    UPDATE_NUDGE = "update_nudge"


def utcnow() -> datetime:
    """The one place the bot reads the clock (frozen in tests with freezegun)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend.

    PostgreSQL stores timestamptz. SQLite has no time zones, so values are stored as naive
    UTC text (which sorts correctly) and given back their UTC zone on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a `table=True` model, for queries written against its columns (`.c`)."""
    # SQLModel's metaclass sets __table__ on table models, but SQLModel declares no such attribute.
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Incident(SQLModel, table=True):
    __tablename__ = "incident"
    __table_args__ = (
        sa.Index("ix_incident_open", "status", "declared_at"),
        sa.Index("ix_incident_card", "channel_id", "card_ts"),
        sa.Index("ix_incident_started", "started_at"),
        sa.Index("ix_incident_resolved", "resolved_at"),
        sa.Index("ix_incident_declared", "declared_at"),
    )

    id: str = Field(primary_key=True, max_length=32)  # INC-YYYY-MM-DD-NNN
    title: str = Field(max_length=150)
    severity: str = Field(max_length=2)
    status: str = Field(default=Status.INVESTIGATING.value, max_length=16)

    affected: str | None = None  # what is affected (service, feature)
    affected_users: int | None = None
    detection: str | None = None
    detection_url: str | None = None
    impact: str | None = None
    category: str | None = Field(default=None, max_length=32)
    root_cause: str | None = None
    root_cause_class: str | None = Field(default=None, max_length=32)
    resolution: str | None = None
    revenue_impact: float | None = None
    rca_url: str | None = None
    runbook: str | None = None
    lessons_worked: str | None = None
    lessons_didnt: str | None = None

    declared_by: str | None = Field(default=None, max_length=32)
    reported_by: str | None = Field(default=None, max_length=32)  # whose message it was declared from
    commander: str | None = Field(default=None, max_length=32)
    source: str = Field(default="slack", max_length=16)
    alert_name: str | None = None
    # Set to the Alertmanager groupKey while the incident is open, cleared on resolve: the
    # unique index makes "one open incident per alert group" hold across replicas.
    alert_group_open: str | None = Field(default=None, sa_column_kwargs={"unique": True})
    # The groupKey for good: what reopening the incident links back to alert_group_open.
    alert_group: str | None = None

    started_at: datetime = _ts(nullable=False)
    declared_at: datetime = _ts(nullable=False)
    acknowledged_at: datetime | None = _ts()
    mitigated_at: datetime | None = _ts()
    resolved_at: datetime | None = _ts()
    # When the escalation sweep next has to look at this incident (NULL: never, e.g. resolved).
    # Kept current by the service layer so the sweep is one indexed range query.
    next_check_at: datetime | None = _ts(index=True)
    last_activity_at: datetime | None = _ts()
    reopened_count: int = 0

    channel_id: str | None = Field(default=None, max_length=32)
    card_ts: str | None = Field(default=None, max_length=32)


class Reopen(SQLModel, table=True):
    """One reopening of a resolved incident and the spell of impact it began (DOMAIN.md, Metrics).

    The incident row keeps its first mitigation and its latest resolution; each reopening keeps
    the resolution it undid, so the time spent resolved is neither downtime nor MTTR.
    """

    __tablename__ = "reopen"
    __table_args__ = (sa.UniqueConstraint("incident_id", "seq", name="uq_reopen_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    seq: int  # 1 for the first reopening: equals the incident's reopened_count once it is written
    resolved_before: datetime = _ts(nullable=False)  # the resolution this reopening undid
    reopened_at: datetime = _ts(nullable=False)
    reopened_by: str | None = Field(default=None, max_length=32)
    # When this spell's impact ended: its mitigation, else its resolution (NULL while ongoing).
    mitigated_at: datetime | None = _ts()


class DayCounter(SQLModel, table=True):
    """Per-day sequence for incident ids; an upsert on it is the atomic id allocator."""

    __tablename__ = "incident_day_counter"

    day: date = Field(primary_key=True)
    last: int = 0


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline_entry"
    __table_args__ = (
        # A Slack message is one entry whatever Slack retries or replays.
        sa.UniqueConstraint("incident_id", "slack_ts", name="uq_timeline_incident_ts"),
        sa.Index("ix_timeline_incident_time", "incident_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    kind: str = Field(max_length=16)  # EntryKind
    event: str | None = Field(default=None, max_length=32)  # SystemEvent for system entries
    author: str | None = Field(default=None, max_length=32)
    text: str = ""
    slack_ts: str | None = Field(default=None, max_length=32)
    edited_ts: str | None = Field(default=None, max_length=32)
    files: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    deleted: bool = False
    key_event: bool = False
    occurred_at: datetime = _ts(nullable=False)


class FollowUp(SQLModel, table=True):
    """A follow-up ("bead" in the tracker): something to do so it doesn't happen again."""

    __tablename__ = "follow_up"
    __table_args__ = (sa.Index("ix_follow_up_open", "done", "due_date"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    description: str
    owner: str | None = Field(default=None, max_length=32)
    due_date: date | None = None
    done: bool = False
    created_at: datetime = _ts(nullable=False)
    done_at: datetime | None = _ts()


class Escalation(SQLModel, table=True):
    """One lapsed target announced (or being announced). The unique key is the exactly-once claim."""

    __tablename__ = "escalation"
    __table_args__ = (sa.UniqueConstraint("incident_id", "kind", "level", name="uq_escalation_claim"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    kind: str = Field(max_length=16)  # EscalationKind
    level: int = 0
    due_at: datetime = _ts(nullable=False)
    fired_at: datetime = _ts(nullable=False)
    delivered_at: datetime | None = _ts()


class Outbox(SQLModel, table=True):
    """Slack calls still to make. Written in the same transaction as the change they announce,
    delivered after the ack, retried until Slack takes them, claimed so one replica sends each."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
        # "Is an earlier row of this incident still waiting?" is asked of every candidate
        # (bot/delivery.py): only the waiting rows are indexed, a few among months of delivered ones.
        sa.Index(
            "ix_outbox_incident_waiting",
            "incident_id",
            "id",
            postgresql_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
            sqlite_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    incident_id: str | None = Field(default=None, foreign_key="incident.id", index=True, max_length=32)
    # Optional natural key: a second insert with the same key is a no-op (coalescing, dedupe).
    dedupe_key: str | None = Field(default=None, sa_column_kwargs={"unique": True})
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts(nullable=False)
    next_attempt_at: datetime = _ts(nullable=False)
    # Set while a sender holds the row (renewed while its call runs); cleared when the outcome is
    # recorded. Still set but past means the outcome is unknown (the sender died, or its request
    # timed out after it left): the next sender first looks in Slack for the message's metadata.
    claimed_until: datetime | None = _ts()
    # The current claim's fence: only its holder may record the delivery.
    claim_token: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    last_error: str | None = None
    delivered_at: datetime | None = _ts()
    # Set when Slack refused the call for good (channel_not_found, invalid_blocks, …): a dead
    # letter, no longer retried nor blocking its incident's later rows; `incident-bot outbox retry`.
    dead_at: datetime | None = _ts()


class ProcessedEvent(SQLModel, table=True):
    """Events API event ids already handled: Slack redelivers, replicas race."""

    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = _ts(nullable=False)


class PendingPin(SQLModel, table=True):
    """A :pushpin: that arrived before the reply it pins (Slack does not promise event order, and
    a reaction carries no thread_ts to find the incident by). Applied when the reply is stored."""

    __tablename__ = "pending_pin"

    channel_id: str = Field(primary_key=True, max_length=32)
    ts: str = Field(primary_key=True, max_length=32)
    key_event: bool = True
    received_at: datetime = _ts(nullable=False)


class DigestRun(SQLModel, table=True):
    """One report period posted (or claimed): the unique key makes each period post once."""

    __tablename__ = "digest_run"
    __table_args__ = (sa.UniqueConstraint("period", "period_start", name="uq_digest_period"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=16)  # weekly | monthly | quarterly
    period_start: date
    claimed_at: datetime = _ts(nullable=False)
    # Where the digest message landed: set once it is posted, so a retry of the chart upload (or a
    # restart between the two steps) threads the chart under it instead of posting the message again.
    channel_id: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    delivered_at: datetime | None = _ts()  # message and chart both delivered


class RunbookUse(SQLModel, table=True):
    __tablename__ = "runbook_use"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str | None = Field(default=None, foreign_key="incident.id", index=True, max_length=32)
    runbook: str
    user_id: str | None = Field(default=None, max_length=32)
    used_at: datetime = _ts(nullable=False, index=True)


class AlertNotification(SQLModel, table=True):
    """An Alertmanager notification already taken: keyed on group, fingerprints and status."""

    __tablename__ = "alert_notification"

    dedupe_key: str = Field(primary_key=True, max_length=64)
    group_key: str
    incident_id: str | None = Field(default=None, foreign_key="incident.id", max_length=32)
    status: str = Field(max_length=16)
    received_at: datetime = _ts(nullable=False)


class InboxRequest(SQLModel, table=True):
    """A Slack request the bot answered with 200, stored before the answer left (the durable intake).

    Workers of any replica claim rows (a lease, fenced by `claimed_by` + `attempts`), run the work
    the request asks for, and mark it done in the same transaction as that work's first write.
    """

    __tablename__ = "inbox"
    __table_args__ = (sa.Index("ix_inbox_pending", "done_at", "lease_until"),)

    id: int | None = Field(default=None, primary_key=True)
    # What makes a redelivery the same request: event_id, view id, user + message + action_ts, …
    key: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    mode: str = Field(max_length=16)  # "http" (raw form or JSON body) or "socket_mode" (JSON payload)
    body: str = Field(sa_column=Column(sa.Text, nullable=False))
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = _ts(nullable=False)
    claimed_by: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = _ts()
    attempts: int = 0
    done_at: datetime | None = _ts()
    error: str | None = None


class ViewSubmission(SQLModel, table=True):
    """A modal submission already stored, by Slack's `view.id`: a resubmission stores nothing new."""

    __tablename__ = "view_submission"

    view_id: str = Field(primary_key=True, max_length=64)
    callback_id: str = Field(max_length=64)
    received_at: datetime = _ts(nullable=False, index=True)
