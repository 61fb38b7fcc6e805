"""Rows about the running service itself: each scheduled job's last run, and when the database was created."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from storage.models import UTCDateTime, _ts


class JobRun(SQLModel, table=True):
    """The latest run of a scheduled job by any replica: GET /metrics reads the sweep's lag from it."""

    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=64)
    finished_at: datetime = _ts(nullable=False)
    duration_seconds: float = 0.0


class Installation(SQLModel, table=True):
    """When this database was created (one row, written by its migration): the start-up catch-up
    posts no digest whose scheduled time came before it, so a fresh install posts nothing."""

    __tablename__ = "installation"

    id: int = Field(default=1, primary_key=True)
    created_at: datetime = Field(
        sa_column=Column(UTCDateTime(), nullable=False, server_default=sa.text("CURRENT_TIMESTAMP"))
    )
