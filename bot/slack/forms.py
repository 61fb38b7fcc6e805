"""Modal submissions and slash-command text parsed into the typed forms of bot.incidents.forms, with field errors."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

from bot.ids import INPUT, Block
from bot.incidents.forms import (
    INCIDENT_ID,
    SUBCOMMANDS,
    TEXT_MAX,
    USER_ID,
    CommandText,
    DeclareForm,
    FollowUpForm,
    FormErrors,
    ResolveForm,
    clean,
    parse_title,
)
from bot.oncall.roster import CoverForm
from storage.models import CATEGORIES, ROOT_CAUSE_CLASSES, SEVERITIES


class _Values:
    """Reads `view.state.values` defensively: any field may be missing or of the wrong shape."""

    def __init__(self, values: Any) -> None:
        self.values = values if isinstance(values, dict) else {}

    def _element(self, block: str) -> dict[str, Any]:
        elements = self.values.get(block)
        if not isinstance(elements, dict):
            return {}
        element = elements.get(block + INPUT)
        if not isinstance(element, dict):
            # Tolerate another action id inside the block: take its only element.
            element = next((v for v in elements.values() if isinstance(v, dict)), {})
        return element

    def text(self, block: str) -> str | None:
        element = self._element(block)
        value = element.get("value")
        if value is None:
            value = element.get("selected_date") if "selected_date" in element else None
        if not isinstance(value, str):
            return None
        value = clean(value).strip()
        return value or None

    def option(self, block: str) -> str | None:
        option = self._element(block).get("selected_option")
        if isinstance(option, dict) and isinstance(option.get("value"), str):
            return option["value"]
        return None

    def user(self, block: str) -> str | None:
        user = self._element(block).get("selected_user")
        return user if isinstance(user, str) and USER_ID.match(user) else None

    def date(self, block: str) -> str | None:
        value = self._element(block).get("selected_date")
        return value if isinstance(value, str) else None


def _long_text(values: _Values, block: str, errors: dict[str, str], *, required: bool = False) -> str | None:
    text = values.text(block)
    if text is None and required:
        errors[block] = "Please fill this in."
    elif text is not None and len(text) > TEXT_MAX:
        errors[block] = f"Keep it under {TEXT_MAX} characters."
    return text


def _choice(
    values: _Values, block: str, allowed: tuple[str, ...], errors: dict[str, str], *, required: bool
) -> str | None:
    choice = values.option(block)
    if choice is None:
        if required:
            errors[block] = "Please choose one."
        return None
    if choice not in allowed:
        errors[block] = f"Choose one of: {', '.join(allowed)}."
        return None
    return choice


def _url(values: _Values, block: str, errors: dict[str, str]) -> str | None:
    url = values.text(block)
    if url is not None and not re.match(r"^https?://\S+$", url):
        errors[block] = "Enter a link starting with https://"
        return None
    return url


def parse_declare(
    state_values: Any, *, detection_url: str | None = None, reported_by: str | None = None
) -> DeclareForm:
    values = _Values(state_values)
    errors: dict[str, str] = {}
    title: str | None = None
    try:
        title = parse_title(values.text(Block.TITLE))
    except FormErrors as exc:
        errors.update(exc.errors)
    severity = _choice(values, Block.SEVERITY, SEVERITIES, errors, required=True)
    users: int | None = None
    raw_users = values.text(Block.AFFECTED_USERS)
    if raw_users is not None:
        try:
            number = float(raw_users.replace(",", "").replace("_", ""))
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number != int(number):
            errors[Block.AFFECTED_USERS] = "Enter a whole number of users, e.g. 250."
        elif number < 0:
            errors[Block.AFFECTED_USERS] = "The number of affected users cannot be negative."
        elif number > 10**12:
            errors[Block.AFFECTED_USERS] = "That is more users than there are people."
        else:
            users = int(number)
    affected = _long_text(values, Block.AFFECTED, errors)
    detection = _long_text(values, Block.DETECTION, errors)
    category = _choice(values, Block.CATEGORY, CATEGORIES, errors, required=False)
    if errors:
        raise FormErrors(errors)
    assert title is not None and severity is not None
    return DeclareForm(
        title=title,
        severity=severity,
        affected=affected,
        affected_users=users,
        detection=detection,
        detection_url=detection_url,
        reported_by=reported_by,
        category=category,
        commander=values.user(Block.COMMANDER),
    )


def parse_resolve(state_values: Any) -> ResolveForm:
    values = _Values(state_values)
    errors: dict[str, str] = {}
    root_cause = _long_text(values, Block.ROOT_CAUSE, errors, required=True)
    resolution = _long_text(values, Block.RESOLUTION, errors, required=True)
    root_cause_class = _choice(values, Block.ROOT_CAUSE_CLASS, ROOT_CAUSE_CLASSES, errors, required=True)
    category = _choice(values, Block.CATEGORY, CATEGORIES, errors, required=False)
    revenue: float | None = None
    raw_revenue = values.text(Block.REVENUE)
    if raw_revenue is not None:
        try:
            revenue = float(raw_revenue.replace(",", "").lstrip("$"))
        except ValueError:
            errors[Block.REVENUE] = "Enter an amount in dollars, e.g. 1200."
        else:
            if not math.isfinite(revenue) or revenue < 0:
                errors[Block.REVENUE] = "Enter an amount of zero or more."
                revenue = None
    form_kwargs = {
        "impact": _long_text(values, Block.IMPACT, errors),
        "lessons_worked": _long_text(values, Block.LESSONS_WORKED, errors),
        "lessons_didnt": _long_text(values, Block.LESSONS_DIDNT, errors),
        "rca_url": _url(values, Block.RCA_URL, errors),
    }
    if errors:
        raise FormErrors(errors)
    assert root_cause is not None and resolution is not None and root_cause_class is not None
    return ResolveForm(
        root_cause=root_cause,
        resolution=resolution,
        root_cause_class=root_cause_class,
        category=category,
        revenue_impact=revenue,
        **form_kwargs,
    )


def parse_follow_up(state_values: Any) -> FollowUpForm:
    values = _Values(state_values)
    errors: dict[str, str] = {}
    description = _long_text(values, Block.FOLLOW_UP_TEXT, errors, required=True)
    due: date | None = None
    raw_due = values.date(Block.FOLLOW_UP_DUE)
    if raw_due is not None:
        try:
            due = date.fromisoformat(raw_due)
        except ValueError:
            errors[Block.FOLLOW_UP_DUE] = "Pick a date."
    if errors:
        raise FormErrors(errors)
    assert description is not None
    return FollowUpForm(description=description, owner=values.user(Block.FOLLOW_UP_OWNER), due_date=due)


def parse_command_text(text: str | None) -> CommandText:
    words = (text or "").split()
    if not words:
        return CommandText("declare")
    head = words[0].lower()
    if head in SUBCOMMANDS:
        rest = words[1:]
        if head == "status":
            if len(rest) != 1:
                return CommandText("usage", problem="`status` takes one incident id, e.g. `INC-2026-01-04-001`.")
            incident_id = rest[0].upper()
            if not INCIDENT_ID.match(incident_id):
                return CommandText("usage", problem=f"`{rest[0][:40]}` is not an incident id (INC-YYYY-MM-DD-NNN).")
            return CommandText("status", incident_id=incident_id)
        if head == "oncall" and [w.lower() for w in rest] == ["cover"]:
            return CommandText("oncall_cover")
        if head == "oncall" and rest:
            return CommandText("usage", problem="`oncall` takes nothing, or `cover`.")
        if rest:
            return CommandText("usage", problem=f"`{head}` takes no arguments.")
        return CommandText(head)
    if head.startswith(("-", "/")) or INCIDENT_ID.match(words[0].upper()):
        return CommandText("usage", problem=f"I don't know `{words[0][:40]}`.")
    try:
        return CommandText("declare", title=parse_title(text))
    except FormErrors as exc:
        return CommandText("usage", problem=exc.errors[Block.TITLE])


def parse_cover(state_values: Any) -> CoverForm:
    """The cover form: schedule, who, from, until (Slack's datetimepicker gives Unix seconds)."""
    values = _Values(state_values)
    errors: dict[str, str] = {}
    schedule = values.option(Block.COVER_SCHEDULE)
    if schedule is None:
        errors[Block.COVER_SCHEDULE] = "Please choose one."
    user = values.user(Block.COVER_USER)
    if user is None:
        errors[Block.COVER_USER] = "Choose who covers."
    moments: list[datetime] = []
    for block in (Block.COVER_FROM, Block.COVER_UNTIL):
        seconds = values._element(block).get("selected_date_time")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 < seconds < 2**37:
            moments.append(datetime.fromtimestamp(seconds, UTC))
        else:
            errors[block] = "Pick a date and time."
    if len(moments) == 2 and moments[1] <= moments[0]:
        errors[Block.COVER_UNTIL] = "The cover must end after it starts."
    if errors:
        raise FormErrors(errors)
    assert schedule is not None and user is not None
    return CoverForm(schedule=schedule, user=user, starts_at=moments[0], ends_at=moments[1])
