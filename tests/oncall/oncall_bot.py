"""The on-call config the end-to-end tests run the bot with, and helpers to read what it paged."""

from __future__ import annotations

from typing import Any

from bot_harness import Bot, poll
from fake_slack import FakeSlack
from sqlmodel import select

from bot.oncall.service import notifications
from storage import db
from storage.oncall import Page

ONCALL: dict[str, Any] = {
    "schedules": {
        # One member: whoever is on call "now" (the real clock) is known without computing it.
        "primary": {"timezone": "Europe/Berlin", "rotation": "weekly", "handoff": "mon 09:00",
                    "start": "2026-01-05", "members": ["U01ALICE"]},
    },
    "policies": {
        "default": {"steps": [
            {"after": "PT0M", "notify": ["schedule:primary"]},
            {"after": "PT10M", "notify": ["U0LEAD"]},
            {"after": "PT20M", "notify": ["S0SRE"]},
        ]},
    },
    "routes": [{"match": {"severity": ["P0"]}, "policy": "default"}],
}


def open_dms(fake: FakeSlack) -> None:
    """conversations.open answers a DM channel id derived from the user (D + user id)."""
    fake.respond_with("conversations.open", lambda p: {"ok": True, "channel": {"id": "D" + str(p["users"])}})


def dms_to(fake: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [c.params for c in fake.calls("chat.postMessage") if c.params.get("channel") == "D" + user]


def wait_dm(fake: FakeSlack, user: str, count: int = 1) -> list[dict[str, Any]]:
    return poll(lambda: (dms := dms_to(fake, user)) and len(dms) >= count and dms, message=f"a DM to {user}")


def pages(bot: Bot, incident_id: str) -> list[Page]:
    with db.unit_of_work(bot.sessions) as session:
        return list(session.exec(select(Page).where(Page.incident_id == incident_id).order_by(Page.id)))


def notices(bot: Bot, page_id: int) -> list[tuple[int, int, str, str]]:
    with db.unit_of_work(bot.sessions) as session:
        return [(n.round, n.step, n.target, n.channel) for n in notifications(session=session, page_id=page_id)]


def thread_texts(fake: FakeSlack, ts: str) -> list[str]:
    return [str(c.params.get("text")) for c in fake.calls("chat.postMessage") if c.params.get("thread_ts") == ts]
