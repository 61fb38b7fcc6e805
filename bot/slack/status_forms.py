"""The status page's modal submissions parsed into typed forms, with errors under their fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.ids import Block
from bot.incidents.forms import FormErrors
from bot.slack.forms import _Values
from bot.statuspage.model import NEXT_UPDATE_MINUTES, Impact, PublicStatus


@dataclass(frozen=True)
class PublishForm:
    title: str
    components: list[str]
    impact: str
    message: str
    next_update_in: int | None


@dataclass(frozen=True)
class StatusUpdateForm:
    status: str
    message: str
    next_update_in: int | None


@dataclass(frozen=True)
class MaintenanceForm:
    components: list[str]
    starts_at: datetime
    ends_at: datetime
    message: str


def _components(values: _Values) -> list[str]:
    selected = values._element(Block.COMPONENTS.value).get("selected_options")
    if not isinstance(selected, list):
        return []
    return [o["value"] for o in selected if isinstance(o, dict) and isinstance(o.get("value"), str)]


def _minutes(values: _Values) -> int | None:
    chosen = values.option(Block.NEXT_UPDATE.value)
    return int(chosen) if chosen and chosen.isdigit() and int(chosen) in NEXT_UPDATE_MINUTES else None


def _time(values: _Values, block: Block) -> datetime | None:
    raw = values._element(block.value).get("selected_date_time")
    return datetime.fromtimestamp(raw, UTC) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def parse_publish(raw: Any) -> PublishForm:
    values, errors = _Values(raw), {}
    title = values.text(Block.PUBLIC_TITLE.value)
    components = _components(values)
    impact = values.option(Block.PUBLIC_IMPACT.value)
    message = values.text(Block.PUBLIC_MESSAGE.value)
    if not title:
        errors[Block.PUBLIC_TITLE.value] = "Give the incident a title the public can read."
    if not components:
        errors[Block.COMPONENTS.value] = "Choose at least one component."
    if impact not in {i.value for i in Impact}:
        errors[Block.PUBLIC_IMPACT.value] = "Choose the impact."
    if not message:
        errors[Block.PUBLIC_MESSAGE.value] = "Say what users see, in a sentence or two."
    if errors:
        raise FormErrors(errors)
    assert title and impact and message
    return PublishForm(title, components, impact, message, _minutes(values))


def parse_status_update(raw: Any) -> StatusUpdateForm:
    values, errors = _Values(raw), {}
    status = values.option(Block.PUBLIC_STATUS.value)
    message = values.text(Block.PUBLIC_MESSAGE.value)
    if status not in {s.value for s in PublicStatus}:
        errors[Block.PUBLIC_STATUS.value] = "Choose a status."
    if not message:
        errors[Block.PUBLIC_MESSAGE.value] = "Say what changed."
    if errors:
        raise FormErrors(errors)
    assert status and message
    return StatusUpdateForm(status, message, None if status == PublicStatus.RESOLVED else _minutes(values))


def parse_final_update(raw: Any) -> str | None:
    """The resolve form's final public update; None when the form has no such field."""
    values = _Values(raw)
    if Block.FINAL_UPDATE.value not in values.values:
        return None
    message = values.text(Block.FINAL_UPDATE.value)
    if not message:
        raise FormErrors({Block.FINAL_UPDATE.value: "The status page needs a final update."})
    return message


def parse_maintenance(raw: Any, *, now: datetime) -> MaintenanceForm:
    values, errors = _Values(raw), {}
    components = _components(values)
    starts_at, ends_at = _time(values, Block.STARTS_AT), _time(values, Block.ENDS_AT)
    message = values.text(Block.PUBLIC_MESSAGE.value) or ""
    if not components:
        errors[Block.COMPONENTS.value] = "Choose at least one component."
    if starts_at is None:
        errors[Block.STARTS_AT.value] = "Choose when it starts."
    if ends_at is None:
        errors[Block.ENDS_AT.value] = "Choose when it ends."
    elif starts_at is not None and ends_at <= starts_at:
        errors[Block.ENDS_AT.value] = "It must end after it starts."
    elif ends_at <= now:
        errors[Block.ENDS_AT.value] = "That time has passed."
    if errors:
        raise FormErrors(errors)
    assert starts_at and ends_at
    return MaintenanceForm(components, starts_at, ends_at, message)
