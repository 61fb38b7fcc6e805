"""Tables of the public status page: public incidents, their updates, maintenance windows, a version."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from storage.models import _ts


class PublicIncident(SQLModel, table=True):
    """What the public sees of an incident: its own title, impact and status, never the internal ones."""

    __tablename__ = "public_incident"
    __table_args__ = (
        sa.Index("ix_public_incident_open", "resolved_at", "created_at"),
        # due_reminders(): the few rows whose next update is due and not yet reminded.
        sa.Index("ix_public_incident_due", "next_update_due", "reminded_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # NULL for a public incident that has no internal incident (published by hand).
    incident_id: str | None = Field(default=None, foreign_key="incident.id", index=True, max_length=32)
    title: str = Field(max_length=200)
    impact: str = Field(max_length=24)  # the current impact: degraded_performance | partial_outage | major_outage
    status: str = Field(max_length=16)  # investigating | identified | monitoring | resolved
    created_at: datetime = _ts(nullable=False, index=True)
    updated_at: datetime = _ts(nullable=False)
    resolved_at: datetime | None = _ts()
    # When the commander promised the next update; reminded_at is set by the one replica that
    # claims the reminder, and cleared whenever a new promise is made.
    next_update_due: datetime | None = _ts()
    reminded_at: datetime | None = _ts()


class PublicIncidentComponent(SQLModel, table=True):
    """A component (by its `status_page.components` key) that a public incident affects."""

    __tablename__ = "public_incident_component"

    public_incident_id: int = Field(foreign_key="public_incident.id", primary_key=True)
    component: str = Field(primary_key=True, max_length=64, index=True)


class PublicUpdate(SQLModel, table=True):
    """One public update: what was said, the status and the impact at that moment."""

    __tablename__ = "public_update"
    __table_args__ = (sa.Index("ix_public_update_incident_time", "public_incident_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    public_incident_id: int = Field(foreign_key="public_incident.id")
    status: str = Field(max_length=16)
    impact: str = Field(max_length=24)
    message: str = Field(sa_column=Column(sa.Text, nullable=False))
    created_at: datetime = _ts(nullable=False, index=True)
    # Who posted it: kept for the internal record, never rendered on the page, the API or the feeds.
    author_id: str | None = Field(default=None, max_length=32)


class MaintenanceWindow(SQLModel, table=True):
    """Planned work on some components: shown on the page; not downtime; alerts for them page no one."""

    __tablename__ = "maintenance_window"
    __table_args__ = (sa.Index("ix_maintenance_window_time", "starts_at", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(default="Scheduled maintenance", max_length=200)
    components: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    starts_at: datetime = _ts(nullable=False)
    ends_at: datetime = _ts(nullable=False)
    message: str = Field(default="", sa_column=Column(sa.Text, nullable=False))
    created_by: str | None = Field(default=None, max_length=32)  # internal, never rendered
    created_at: datetime = _ts(nullable=False)


class StatusPageVersion(SQLModel, table=True):
    """One row, bumped in the transaction of every change: what replicas poll to drop their caches."""

    __tablename__ = "status_page_version"

    id: int = Field(default=1, primary_key=True)
    version: int = 0
    changed_at: datetime = _ts(nullable=False)
