"""People the bot has seen: Slack user ids and the names Markdown outputs print for them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.models import _ts


class Person(SQLModel, table=True):
    """A cached Slack profile (from event payloads or users.info); the id is printed when none is known."""

    __tablename__ = "person"

    user_id: str = Field(primary_key=True, max_length=32)
    display_name: str = ""  # what Slack shows; often empty, then real_name
    real_name: str = ""
    email: str | None = None
    updated_at: datetime = _ts(nullable=False)
