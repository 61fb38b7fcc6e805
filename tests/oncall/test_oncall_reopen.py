"""A reopened incident is a new spell: a route that matches it pages again, and acknowledging stops that page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import slack_requests as sr
from bot_harness import SECRET, Bot, poll
from oncall_bot import ONCALL, open_dms, pages, thread_texts, wait_dm

from bot.ids import Action, Block, Callback
from storage.models import Incident


def _resolve(bot: Bot, incident: Incident) -> None:
    fields = {Block.ROOT_CAUSE: sr.plain("A bad deploy"), Block.RESOLUTION: sr.plain("Rolled back"),
              Block.ROOT_CAUSE_CLASS: sr.select("Configuration Error")}
    values: dict[str, Any] = {b.value: {b.value + "_input": element} for b, element in fields.items()}
    bot.send_ok(sr.view_submission(Callback.RESOLVE.value, values, secret=SECRET, private_metadata=incident.id))
    bot.wait_incident(lambda i: i.id == incident.id and i.resolved_at is not None)


def _card_buttons(bot: Bot, incident: Incident) -> list[str]:
    """The action ids on the newest rendering of the incident's card (post or update) Slack holds."""
    for call in reversed(bot.fake.calls()):
        if call.method in ("chat.postMessage", "chat.update") and call.params.get("channel") == incident.channel_id:
            actions = [b for b in call.params.get("blocks") or [] if b.get("block_id") == Block.CARD_ACTIONS.value]
            if actions and "thread_ts" not in call.params:
                return [e["action_id"] for e in actions[0]["elements"]]
    return []


def _reopen(bot: Bot, incident: Incident, user: str = "U0CAROL") -> None:
    bot.click(Action.REOPEN.value, incident.id, user=user, card=incident)
    bot.wait_incident(lambda i: i.id == incident.id and i.resolved_at is None)


def test_a_reopened_p0_pages_again_and_the_cards_acknowledge_stops_that_page(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    incident = bot.declare("Checkout is down", "P0")
    wait_dm(bot.fake, "U01ALICE")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0BOB", card=incident)
    first_ack = bot.wait_incident(lambda i: i.id == incident.id and i.acknowledged_at is not None).acknowledged_at
    _resolve(bot, incident)
    _reopen(bot, incident)
    # The first life's acknowledgement does not own the new spell: a second page, a second DM.
    wait_dm(bot.fake, "U01ALICE", count=2)
    first, second = poll(lambda: len(found := pages(bot, incident.id)) == 2 and found, message="a second page")
    assert (first.spell, first.ended_reason, second.spell, second.ended_at) == (1, "acknowledged", 2, None)
    # The card offers Acknowledge again while that page runs, though the incident was acknowledged.
    poll(lambda: Action.ACKNOWLEDGE.value in _card_buttons(bot, incident), message="Acknowledge back on the card")
    # Acknowledged again (the card's button, or the page DM's: the same handler): the page stops,
    # the timeline says who, and the incident keeps its first acknowledgement (MTTA counts from it).
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0DAN", card=incident)
    poll(lambda: pages(bot, incident.id)[1].ended_reason == "acknowledged", message="the second page acknowledged")
    assert pages(bot, incident.id)[1].acknowledged_by == "U0DAN"
    poll(lambda: any("Page acknowledged by <@U0DAN>" in t for t in thread_texts(bot.fake, incident.card_ts or "")),
         message="the page acknowledgement in the thread")
    again = bot.wait_incident(lambda i: i.id == incident.id)
    assert again.acknowledged_at == first_ack and again.commander == "U0BOB"
    poll(lambda: Action.ACKNOWLEDGE.value not in _card_buttons(bot, incident), message="Acknowledge gone again")
    # A third press (a stale card) finds no page running: the usual "already acknowledged".
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0DAN", card=incident)
    refusal = bot.fake.wait_for("chat.postEphemeral", where=lambda c: "already acknowledged" in c.params["text"])
    assert refusal[0].params["user"] == "U0DAN" and len(pages(bot, incident.id)) == 2


def test_a_reopened_incident_raised_into_a_paging_severity_pages_its_new_spell(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    incident = bot.declare("Slow search", "P2")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0BOB", card=incident)
    bot.wait_incident(lambda i: i.id == incident.id and i.acknowledged_at is not None)
    _resolve(bot, incident)
    _reopen(bot, incident)
    assert pages(bot, incident.id) == []  # P2: no route matches the reopened incident
    bot.click(Action.SEVERITY.value, "", selected=f"{incident.id}|P0", card=incident)
    wait_dm(bot.fake, "U01ALICE")
    assert [p.spell for p in pages(bot, incident.id)] == [1]


def test_a_reopened_incident_raised_after_its_page_was_acknowledged_pages_nobody(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    incident = bot.declare("Checkout is down", "P1")
    bot.click(Action.SEVERITY.value, "", selected=f"{incident.id}|P0", card=incident)  # page 1
    wait_dm(bot.fake, "U01ALICE")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0BOB", card=incident)
    # The work after each ack runs in the worker's pool: wait, or the acknowledgement could land
    # after the reopening and take the new page before its DM went.
    bot.wait_incident(lambda i: i.id == incident.id and i.acknowledged_at is not None)
    _resolve(bot, incident)
    _reopen(bot, incident)
    wait_dm(bot.fake, "U01ALICE", count=2)  # page 2, for the reopened spell
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0BOB", card=incident)
    poll(lambda: pages(bot, incident.id)[-1].ended_reason == "acknowledged", message="page 2 acknowledged")
    for severity in ("P1", "P0"):  # one at a time: the pool could take two clicks in either order
        bot.click(Action.SEVERITY.value, "", selected=f"{incident.id}|{severity}", card=incident)
        bot.wait_incident(lambda i, s=severity: i.id == incident.id and i.severity == s)
    assert len(pages(bot, incident.id)) == 2  # this spell has an owner: raising it pages nobody
