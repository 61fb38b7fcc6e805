"""The status page's modals: publish an incident, post a status update, schedule maintenance, and the
final public update the resolve form asks for. Only what the public may read goes in them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.ids import Block, Callback
from bot.slack.blocks.modals import _input, _option, _plain, _select, _text_input
from bot.statuspage.config import StatusPageConfig
from bot.statuspage.model import LABELS, NEXT_UPDATE_MINUTES, Impact, PublicStatus
from storage.models import Incident

PUBLIC_TITLE_MAX = 200
MESSAGE_MAX = 3000
FINAL_MESSAGE = "This incident has been resolved."


def _components(config: StatusPageConfig, initial: list[str] | None = None) -> dict[str, Any]:
    options = [_option(c.key, c.name[:75], c.description) for c in config.components][:100]
    element: dict[str, Any] = {"type": "multi_static_select", "options": options}
    chosen = [o for o in options if o["value"] in (initial or [])]
    if chosen:
        element["initial_options"] = chosen
    if not options:  # Slack refuses a menu without options: the submission then says what to do
        element = {"type": "plain_text_input", "placeholder": _plain("no components in status_page.components")}
    return element


def _next_update() -> dict[str, Any]:
    return _select([_option(str(m), f"in {m} minutes") for m in NEXT_UPDATE_MINUTES], "30")


def publish_modal(incident: Incident, config: StatusPageConfig) -> dict[str, Any]:
    impacts = [_option(i.value, LABELS[i.value]) for i in Impact]
    suggested = config.components_for_incident(category=incident.category, service=incident.affected)
    return {
        "type": "modal",
        "callback_id": Callback.PUBLISH.value,
        "private_metadata": incident.id,
        "title": _plain("Publish to status page"),
        "submit": _plain("Publish"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{incident.id}*: anyone can read what you publish. "
                    "The internal title, timeline and people stay private.",
                },
            },
            _input(
                Block.PUBLIC_TITLE,
                "Public title",
                _text_input(max_length=PUBLIC_TITLE_MAX, placeholder="Elevated error rates on the API"),
            ),
            _input(Block.COMPONENTS, "Affected components", _components(config, suggested)),
            _input(Block.PUBLIC_IMPACT, "Impact", _select(impacts, Impact.PARTIAL_OUTAGE.value)),
            _input(
                Block.PUBLIC_MESSAGE,
                "First message",
                _text_input("We are investigating this issue.", multiline=True, max_length=MESSAGE_MAX),
            ),
            _input(Block.NEXT_UPDATE, "Next update due", _next_update(), optional=True),
        ],
    }


def status_update_modal(public_id: int, *, title: str, status: str) -> dict[str, Any]:
    statuses = [_option(s.value, LABELS[s.value]) for s in PublicStatus]
    return {
        "type": "modal",
        "callback_id": Callback.STATUS_UPDATE.value,
        "private_metadata": str(public_id),
        "title": _plain("Post status update"),
        "submit": _plain("Post"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": title[:3000]}},
            _input(Block.PUBLIC_STATUS, "Status", _select(statuses, status)),
            _input(Block.PUBLIC_MESSAGE, "Message", _text_input(multiline=True, max_length=MESSAGE_MAX)),
            _input(Block.NEXT_UPDATE, "Next update due", _next_update(), optional=True, hint="Not for resolved."),
        ],
    }


def maintenance_modal(config: StatusPageConfig, now: datetime) -> dict[str, Any]:
    start = int(now.timestamp()) // 60 * 60 + 3600
    return {
        "type": "modal",
        "callback_id": Callback.MAINTENANCE.value,
        "title": _plain("Schedule maintenance"),
        "submit": _plain("Schedule"),
        "close": _plain("Cancel"),
        "blocks": [
            _input(Block.COMPONENTS, "Components", _components(config)),
            _input(Block.STARTS_AT, "From", {"type": "datetimepicker", "initial_date_time": start}),
            _input(Block.ENDS_AT, "Until", {"type": "datetimepicker", "initial_date_time": start + 3600}),
            _input(
                Block.PUBLIC_MESSAGE,
                "Message",
                _text_input(multiline=True, max_length=MESSAGE_MAX, placeholder="What is done, and what users notice"),
                hint="Alerts for these components open no incident and page no one during the window.",
            ),
        ],
    }


def final_update_block(message: str = FINAL_MESSAGE) -> dict[str, Any]:
    return _input(
        Block.FINAL_UPDATE,
        "Final public update",
        _text_input(message, multiline=True, max_length=MESSAGE_MAX),
        hint="Posted to the status page as the incident is resolved.",
    )
