"""Paging end to end, through the real HTTP server and the fake Slack: declare, page, step, acknowledge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import slack_requests as sr
from bot_harness import SECRET, Bot, poll
from oncall_bot import ONCALL, dms_to, notices, open_dms, pages, thread_texts, wait_dm

from bot.ids import Action, Block
from bot.runtime.oncall_jobs import paging_pass


def work_rt(bot: Bot):  # type: ignore[no-untyped-def]
    assert bot.service.background is not None
    return bot.service.background.rt


def test_p0_pages_on_call_then_next_step_then_acknowledged_from_the_dm(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    incident = bot.declare("Checkout is down", "P0")
    # Step 1 (PT0M): the paging job DMs whoever is on call for primary, with the card's Acknowledge.
    dm = wait_dm(bot.fake, "U01ALICE")[0]
    assert incident.id in dm["text"]
    actions = next(b for b in dm["blocks"] if b.get("block_id") == Block.PAGE_ACTIONS.value)
    assert actions["elements"][0]["action_id"] == Action.ACKNOWLEDGE.value
    assert actions["elements"][0]["value"] == incident.id
    assert f"/archives/{incident.channel_id}/p" in dm["blocks"][0]["text"]["text"]  # the thread link
    assert bot.fake.last("conversations.open").params["users"] == "U01ALICE"
    # No acknowledgement: step 2 at its offset (the job called with an explicit `now`).
    (page,) = pages(bot, incident.id)
    paging_pass(work_rt(bot), now=page.started_at + timedelta(minutes=10))
    lead_dm = wait_dm(bot.fake, "U0LEAD")[0]
    # Acknowledged from the DM, by the lead: the same handler as the card's button.
    bot.send_ok(sr.block_action(Action.ACKNOWLEDGE.value, value=incident.id, secret=SECRET, user_id="U0LEAD",
                                channel_id="DU0LEAD", message_ts=str(bot.fake.calls("chat.postMessage")[-1].params
                                                                      .get("ts", "1.0")), block_id=Block.PAGE_ACTIONS))
    acked = bot.wait_incident(lambda i: i.id == incident.id and i.acknowledged_at is not None)
    assert acked.commander == "U0LEAD"
    (page,) = poll(lambda: [p for p in pages(bot, incident.id) if p.acknowledged_at is not None], message="page ack")
    assert page.acknowledged_by == "U0LEAD" and page.ended_reason == "acknowledged"
    # Step 3 would mention the SRE group in the thread: it never comes.
    swept = paging_pass(work_rt(bot), now=page.started_at + timedelta(minutes=25))
    assert swept is not None and swept.queued == 0
    assert notices(bot, page.id or 0) == [(0, 0, "U01ALICE", "dm"), (0, 1, "U0LEAD", "dm")]
    assert not any("S0SRE" in text for text in thread_texts(bot.fake, incident.card_ts or ""))
    assert len(dms_to(bot.fake, "U01ALICE")) == 1 and lead_dm


def test_group_step_is_a_mention_in_the_thread_and_resolution_ends_the_page(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    incident = bot.declare("Payments fail", "P0")
    wait_dm(bot.fake, "U01ALICE")
    (page,) = pages(bot, incident.id)
    paging_pass(work_rt(bot), now=page.started_at + timedelta(minutes=20))
    poll(lambda: any("<!subteam^S0SRE>" in t for t in thread_texts(bot.fake, incident.card_ts or "")),
         message="the group's mention in the thread")
    assert len(dms_to(bot.fake, "U0LEAD")) == 1  # step 2, due by then too, went once
    paging_pass(work_rt(bot), now=page.started_at + timedelta(minutes=20))  # again: nothing new
    assert len(notices(bot, page.id or 0)) == 3


def test_unrouted_severity_pages_nobody_until_raised(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    incident = bot.declare("Slow search", "P2")
    assert pages(bot, incident.id) == []
    bot.click(Action.SEVERITY.value, "", selected=f"{incident.id}|P0", card=incident)
    wait_dm(bot.fake, "U01ALICE")
    assert len(pages(bot, incident.id)) == 1


def test_an_alert_declared_p0_pages_too(make_bot: Callable[..., Bot]) -> None:
    import alert_payloads as ap

    bot = make_bot(oncall=ONCALL, alertmanager_token=ap.TOKEN)
    open_dms(bot.fake)
    status, answer = ap.post(bot, ap.notification(ap.alert("CheckoutDown", severity="critical")))
    assert status == 200
    wait_dm(bot.fake, "U01ALICE")
    assert len(pages(bot, answer["incident"])) == 1
    status, body = bot.get("/healthz?detail=1")
    assert status == 200 and b'"page_dead_letters": 0' in body


def test_a_service_route_matches_the_alerts_service_label(make_bot: Callable[..., Bot]) -> None:
    import alert_payloads as ap

    # Only checkout's alerts page, at any severity: the route names the service, not a severity.
    routes = [{"match": {"service": "checkout"}, "policy": "default"}]
    bot = make_bot(oncall={**ONCALL, "routes": routes}, alertmanager_token=ap.TOKEN)
    open_dms(bot.fake)
    status, other = ap.post(bot, ap.notification(ap.alert("SearchSlow", severity="warning", service="search")))
    assert status == 200 and other["incident"]
    status, answer = ap.post(bot, ap.notification(ap.alert("CheckoutSlow", severity="warning", service="checkout")))
    assert status == 200
    wait_dm(bot.fake, "U01ALICE")
    assert len(pages(bot, answer["incident"])) == 1
    assert pages(bot, other["incident"]) == []
