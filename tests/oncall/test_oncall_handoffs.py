"""Handoffs end to end: the incoming person's one DM, the user group set, App Home's "you are on call until …"."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot, poll
from oncall_bot import dms_to, open_dms

from bot.oncall.config import parse_oncall
from bot.oncall.schedules import shift_at
from bot.runtime.oncall_jobs import handoff_pass
from bot.slack.listeners.home import home_view

# The tests run the handoff job at explicit instants; the bot's own (at the real clock) is removed.
ONCALL = {"schedules": {"primary": {
    "timezone": "Europe/Berlin", "rotation": "daily", "handoff": "09:00", "start": "2027-03-01",
    "members": ["U01ALICE", "U02BOB"], "usergroup": "S0PRIMARY"}}}
HANDOFF = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)  # Tue 09:00 CET: Bob takes over from Alice


def started(make_bot: Callable[..., Bot]) -> Bot:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    bot.fake.respond_with("usergroups.users.update", {"ok": True})
    assert bot.service.background is not None
    bot.service.background.scheduler.remove_job("handoffs")
    return bot


def work_rt(bot: Bot):  # type: ignore[no-untyped-def]
    assert bot.service.background is not None
    return bot.service.background.rt


def test_one_dm_and_one_usergroup_update_per_handoff(make_bot: Callable[..., Bot]) -> None:
    bot = started(make_bot)
    schedule = parse_oncall(ONCALL).schedules["primary"]
    shift = shift_at(schedule, HANDOFF)
    assert shift is not None and shift.user_id == "U02BOB" and shift.starts_at == HANDOFF
    for minutes in (5, 6, 30):  # every pass within the hour after: still one announcement
        handoff_pass(work_rt(bot), now=HANDOFF + timedelta(minutes=minutes))
    (dm,) = poll(lambda: dms_to(bot.fake, "U02BOB"), message="the handoff DM")
    assert dm["text"] == ":pager: You are on call for primary until Wed 09:00 CET."
    update = bot.fake.wait_for("usergroups.users.update")[0].params
    assert (update["usergroup"], update["users"]) == ("S0PRIMARY", "U02BOB")
    assert dms_to(bot.fake, "U01ALICE") == []
    # The next day's handoff is its own: Alice gets hers, once.
    handoff_pass(work_rt(bot), now=HANDOFF + timedelta(days=1, minutes=1))
    poll(lambda: dms_to(bot.fake, "U01ALICE"), message="the next handoff")
    update = bot.fake.wait_for("usergroups.users.update", count=2)[1].params
    assert update["users"] == "U01ALICE"
    assert len(dms_to(bot.fake, "U02BOB")) == 1 and len(dms_to(bot.fake, "U01ALICE")) == 1


def test_a_handoff_noticed_too_late_is_not_announced(make_bot: Callable[..., Bot]) -> None:
    bot = started(make_bot)
    assert handoff_pass(work_rt(bot), now=HANDOFF + timedelta(hours=2)) == []
    assert dms_to(bot.fake, "U02BOB") == []


def test_two_replicas_announce_each_handoff_once(db_url: str, make_bot: Callable[..., Bot]) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas race on PostgreSQL; SQLite has one writer at a time")
    bots = [started(make_bot), started(make_bot)]
    barrier = threading.Barrier(2)

    def run(bot: Bot) -> None:
        barrier.wait()
        handoff_pass(work_rt(bot), now=HANDOFF + timedelta(minutes=1))

    threads = [threading.Thread(target=run, args=(b,)) for b in bots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    poll(lambda: dms_to(bots[0].fake, "U02BOB") and bots[0].fake.calls("usergroups.users.update"))
    handoff_pass(work_rt(bots[1]), now=HANDOFF + timedelta(minutes=2))
    poll(lambda: all(b.service.rt.deliverer.deliver_pending() == 0 for b in bots), message="nothing left to send")
    assert len(dms_to(bots[0].fake, "U02BOB")) == 1
    assert len(bots[0].fake.calls("usergroups.users.update")) == 1


def test_app_home_says_you_are_on_call_until(make_bot: Callable[..., Bot]) -> None:
    bot = started(make_bot)
    view = home_view(bot.service.rt, HANDOFF + timedelta(hours=3), "U02BOB")
    texts = [b["text"]["text"] for b in view["blocks"] if b.get("type") == "section" and "text" in b]
    (oncall,) = [t for t in texts if t.startswith("*On call*")]
    assert ":pager: *You are on call* for *primary* until Wed 09:00 CET." in oncall
    assert "*primary*: <@U02BOB>" in oncall
    other = home_view(bot.service.rt, HANDOFF + timedelta(hours=3), "U01ALICE")
    assert "You are on call" not in str(other)
    # Opened for real (at the real clock): the tab has its on-call section.
    bot.send_ok(sr.event(sr.app_home_opened("U01ALICE"), secret=SECRET))
    published = bot.fake.wait_for("views.publish")[0].params["view"]
    assert "*On call*" in str(published) and "*primary*: " in str(published)
