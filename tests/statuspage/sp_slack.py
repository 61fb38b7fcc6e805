"""Helpers for driving the status page from Slack in tests: the bot with the page on, the forms' values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import slack_requests as sr
import sp_data
from bot_harness import SECRET, Bot, poll

from bot.ids import Action, Block, Callback
from storage.models import Incident

COMPONENTS = [{"key": c.key, "name": c.name} for c in sp_data.CONFIG.components]


def page_settings(**extra: Any) -> dict[str, Any]:
    return {"status_page": True, "status_page_config": sp_data.CONFIG, "status_page_title": "Acme Status", **extra}


def values(**fields: dict[str, Any]) -> dict[str, Any]:
    return {block: {block + "_input": element} for block, element in fields.items()}


def publish_values(
    title: str = "Checkout unavailable",
    components: tuple[str, ...] = ("api",),
    impact: str = "major_outage",
    message: str = "Payments fail for most users.",
    next_update: str | None = "30",
) -> dict[str, Any]:
    return values(
        **{
            Block.PUBLIC_TITLE.value: sr.plain(title),
            Block.COMPONENTS.value: sr.multi_select(components),
            Block.PUBLIC_IMPACT.value: sr.select(impact),
            Block.PUBLIC_MESSAGE.value: sr.plain(message),
            Block.NEXT_UPDATE.value: sr.select(next_update),
        }
    )


def update_values(status: str, message: str, next_update: str | None = None) -> dict[str, Any]:
    return values(
        **{
            Block.PUBLIC_STATUS.value: sr.select(status),
            Block.PUBLIC_MESSAGE.value: sr.plain(message),
            Block.NEXT_UPDATE.value: sr.select(next_update),
        }
    )


def maintenance_values(components: tuple[str, ...], starts: datetime, ends: datetime, message: str) -> dict[str, Any]:
    return values(
        **{
            Block.COMPONENTS.value: sr.multi_select(components),
            Block.STARTS_AT.value: {"type": "datetimepicker", "selected_date_time": int(starts.timestamp())},
            Block.ENDS_AT.value: {"type": "datetimepicker", "selected_date_time": int(ends.timestamp())},
            Block.PUBLIC_MESSAGE.value: sr.plain(message),
        }
    )


def card_buttons(bot: Bot, incident: Incident) -> dict[str, str]:
    """action_id -> value of the card's latest rendering."""
    calls = [
        c
        for c in bot.fake.calls()
        if c.method in ("chat.postMessage", "chat.update")
        and "thread_ts" not in c.params
        and (c.method == "chat.postMessage" or c.params.get("ts") == incident.card_ts)
        and incident.id in str(c.params.get("text", ""))
    ]
    blocks = calls[-1].params["blocks"]
    actions = next(b for b in blocks if b["type"] == "actions")
    return {e["action_id"]: e.get("value", "") for e in actions["elements"]}


def thread_texts(bot: Bot, incident: Incident) -> list[str]:
    return [
        str(c.params.get("text"))
        for c in bot.fake.calls("chat.postMessage")
        if c.params.get("thread_ts") == incident.card_ts
    ]


def publish(bot: Bot, incident: Incident, **form: Any) -> dict[str, Any]:
    """Click Publish on the card, check the form opened, and submit it."""
    before = len(bot.fake.calls("views.open"))
    bot.click(Action.PUBLISH.value, incident.id, card=incident)
    view = bot.fake.wait_for("views.open", count=before + 1)[-1].params["view"]
    assert view["callback_id"] == Callback.PUBLISH.value and view["private_metadata"] == incident.id
    return bot.send_ok(
        sr.view_submission(Callback.PUBLISH.value, publish_values(**form), secret=SECRET, private_metadata=incident.id)
    )


def page(bot: Bot, path: str = "/status") -> str:
    status, body = bot.get(path)
    assert status == 200, (path, status)
    return body.decode()


def wait_page(bot: Bot, text: str, path: str = "/status", timeout: float = 5) -> str:
    return poll(lambda: text in (p := page(bot, path)) and p, timeout=timeout, message=f"{text!r} on {path}")
