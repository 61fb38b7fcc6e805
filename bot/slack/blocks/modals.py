"""The modals: declare an incident, resolve it, add a follow-up."""

from __future__ import annotations

import json
from typing import Any

from bot.ids import INPUT, Block, Callback
from bot.incidents.forms import TITLE_MAX
from storage.models import CATEGORIES, ROOT_CAUSE_CLASSES, SEVERITIES, SEVERITY_MEANINGS, Incident


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _option(value: str, text: str | None = None, description: str | None = None) -> dict[str, Any]:
    option: dict[str, Any] = {"text": _plain(text or value), "value": value}
    if description:
        option["description"] = _plain(description[:75])
    return option


def _input(
    block: Block, label: str, element: dict[str, Any], *, optional: bool = False, hint: str | None = None
) -> dict[str, Any]:
    element = {**element, "action_id": block.value + INPUT}
    result: dict[str, Any] = {
        "type": "input",
        "block_id": block.value,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        result["hint"] = _plain(hint)
    return result


def _text_input(
    initial: str | None = None, *, multiline: bool = False, max_length: int = 3000, placeholder: str | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline, "max_length": max_length}
    if initial:
        element["initial_value"] = initial[:max_length]
    if placeholder:
        element["placeholder"] = _plain(placeholder)
    return element


def _select(options: list[dict[str, Any]], initial: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "static_select", "options": options}
    chosen = [o for o in options if o["value"] == initial]
    if chosen:
        element["initial_option"] = chosen[0]
    return element


def declare_modal(
    *, title: str | None = None, detection: str | None = None, source: dict[str, str] | None = None
) -> dict[str, Any]:
    severities = [_option(s, f"{s}: {SEVERITY_MEANINGS[s].split(':')[0]}", SEVERITY_MEANINGS[s]) for s in SEVERITIES]
    return {
        "type": "modal",
        "callback_id": Callback.DECLARE.value,
        "title": _plain("Declare an incident"),
        "submit": _plain("Declare"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(source or {})[:3000],
        "blocks": [
            _input(Block.TITLE, "Title", _text_input(title, max_length=TITLE_MAX, placeholder="API returns 502s")),
            _input(Block.SEVERITY, "Severity", _select(severities)),
            _input(Block.AFFECTED, "What is affected", _text_input(placeholder="Service or feature"), optional=True),
            _input(
                Block.AFFECTED_USERS,
                "Affected users (approximate)",
                {"type": "number_input", "is_decimal_allowed": False, "min_value": "0"},
                optional=True,
            ),
            _input(
                Block.DETECTION,
                "Detection",
                _text_input(detection, placeholder="Alert, user report, monitoring…"),
                optional=True,
            ),
            _input(Block.CATEGORY, "Category", _select([_option(c) for c in CATEGORIES]), optional=True),
            _input(
                Block.COMMANDER,
                "Commander",
                {"type": "users_select"},
                optional=True,
                hint="Leave empty: whoever acknowledges becomes commander.",
            ),
        ],
    }


def resolve_modal(incident: Incident) -> dict[str, Any]:
    blocks = [
        _input(Block.ROOT_CAUSE, "Root cause", _text_input(incident.root_cause, multiline=True)),
        _input(Block.RESOLUTION, "Resolution: what fixed it?", _text_input(incident.resolution, multiline=True)),
        _input(
            Block.ROOT_CAUSE_CLASS,
            "Root-cause class",
            _select([_option(c) for c in ROOT_CAUSE_CLASSES], incident.root_cause_class),
        ),
        _input(Block.CATEGORY, "Category", _select([_option(c) for c in CATEGORIES], incident.category), optional=True),
        _input(Block.IMPACT, "Impact", _text_input(incident.impact, multiline=True), optional=True),
        _input(
            Block.REVENUE,
            "Revenue impact (USD)",
            {"type": "number_input", "is_decimal_allowed": True, "min_value": "0"},
            optional=True,
        ),
        _input(Block.LESSONS_WORKED, "Lessons: what worked", _text_input(multiline=True), optional=True),
        _input(Block.LESSONS_DIDNT, "Lessons: what didn't", _text_input(multiline=True), optional=True),
    ]
    if incident.severity in ("P0", "P1"):
        blocks.append(
            _input(
                Block.RCA_URL,
                "RCA document",
                {"type": "url_text_input"},
                optional=True,
                hint="Expected for P0 and P1 incidents.",
            )
        )
    return {
        "type": "modal",
        "callback_id": Callback.RESOLVE.value,
        "private_metadata": incident.id,
        "title": _plain("Resolve incident"),
        "submit": _plain("Resolve"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{incident.id}* [{incident.severity}]"}},
            *blocks,
        ],
    }


def follow_up_modal(incident_id: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": Callback.FOLLOW_UP.value,
        "private_metadata": incident_id,
        "title": _plain("Add a follow-up"),
        "submit": _plain("Add"),
        "close": _plain("Cancel"),
        "blocks": [
            _input(Block.FOLLOW_UP_TEXT, "What needs doing", _text_input(multiline=True)),
            _input(Block.FOLLOW_UP_OWNER, "Owner", {"type": "users_select"}, optional=True),
            _input(Block.FOLLOW_UP_DUE, "Due date", {"type": "datepicker"}, optional=True),
        ],
    }
