"""On-call tables: overrides, pages, each claimed notification of a page, and handoff notices.

Every row that stands for something sent (a notification, a handoff notice) has a unique key, so
inserting it is the claim: of two replicas that race, one inserts and the other sees the conflict.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.models import _ts


class OnCallOverride(SQLModel, table=True):
    """Someone covering a schedule for [starts_at, ends_at); the latest created wins an overlap."""

    __tablename__ = "oncall_override"
    __table_args__ = (
        sa.Index("ix_oncall_override_window", "schedule", "ends_at", "starts_at"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_oncall_override_span"),
    )

    id: int | None = Field(default=None, primary_key=True)
    schedule: str = Field(max_length=64)
    user_id: str = Field(max_length=32)
    starts_at: datetime = _ts(nullable=False)
    ends_at: datetime = _ts(nullable=False)
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = _ts(nullable=False)


class Page(SQLModel, table=True):
    """One paging spell of an incident: it follows `policy` until acknowledged or ended.

    `spell` counts the pages of one incident (a new one may start after an earlier one ended,
    e.g. when a reopened incident is raised into a paging severity); unique with the incident, so
    two replicas that both see the declaration start one page.
    """

    __tablename__ = "page"
    __table_args__ = (
        sa.UniqueConstraint("incident_id", "spell", name="uq_page_spell"),
        sa.Index("ix_page_active", "ended_at", "acknowledged_at"),
        sa.Index("ix_page_next_step", "next_step_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    spell: int = 1
    policy: str = Field(max_length=64)
    started_at: datetime = _ts(nullable=False)
    acknowledged_at: datetime | None = _ts()
    acknowledged_by: str | None = Field(default=None, max_length=32)
    ended_at: datetime | None = _ts()
    ended_reason: str | None = Field(default=None, max_length=32)  # acknowledged | resolved | …
    # When the paging sweep must look at this page again (its next step's due time; None once no
    # step is left or the page ended): the sweep is one range scan however many pages are open.
    next_step_at: datetime | None = _ts()


class PageNotification(SQLModel, table=True):
    """One notice of a page step to one target through one channel: inserted once, sent once.

    After the insert, a sender claims the row for a lease (`claimed_by`, `lease_until`; `attempts`
    fences the claim as in the inbox), and records the outcome: sent, retry at `next_attempt_at`,
    or dead (a permanent failure, kept with its reason).
    """

    __tablename__ = "page_notification"
    __table_args__ = (
        sa.UniqueConstraint("page_id", "round", "step", "target", "channel", name="uq_page_notification"),
        sa.Index("ix_page_notification_pending", "sent_at", "dead_at", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="page.id")
    round: int = 0
    step: int = 0
    target: str = Field(max_length=32)  # a user id (dm, email, webhook) or a user-group id (mention)
    channel: str = Field(max_length=16)  # dm | email | webhook | mention
    schedule: str | None = Field(default=None, max_length=64)  # the schedule that resolved the target
    created_at: datetime = _ts(nullable=False)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = _ts()
    lease_until: datetime | None = _ts()
    next_attempt_at: datetime | None = _ts()
    attempts: int = 0
    sent_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    dead_at: datetime | None = _ts()


class HandoffNotice(SQLModel, table=True):
    """The direct message (and user-group update) for one handoff, claimed once per shift start."""

    __tablename__ = "handoff_notice"
    __table_args__ = (sa.UniqueConstraint("schedule", "shift_start", name="uq_handoff_notice"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule: str = Field(max_length=64)
    shift_start: datetime = _ts(nullable=False)
    user_id: str = Field(max_length=32)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
