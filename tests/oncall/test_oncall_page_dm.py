"""A page's DM through the outbox: sent once even when its sender died after Slack took it; skipped once acked."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from bot_harness import Bot, poll
from fake_slack import FakeSlack
from oncall_bot import ONCALL, dms_to, open_dms, wait_dm
from sqlmodel import select

from bot.incidents.outbox import OutboxKind
from bot.slack.page_delivery import send
from storage import db
from storage.models import Outbox


@pytest.fixture
def fake_slack(recent_slack: FakeSlack) -> FakeSlack:
    return recent_slack  # ts from the real clock, as Slack's: a lookup reads only since the row was written


def dm_row(bot: Bot) -> Outbox:
    with db.unit_of_work(bot.sessions) as session:
        return session.exec(select(Outbox).where(Outbox.kind == OutboxKind.PAGE_DM.value)).one()


def test_a_dm_whose_outcome_was_lost_is_found_in_slack_not_sent_again(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    bot.declare("Checkout is down", "P0")
    wait_dm(bot.fake, "U01ALICE")
    row = poll(lambda: (r := dm_row(bot)).delivered_at is not None and r, message="the DM recorded")
    # As if its sender had died after Slack took the DM, before recording it: the row is due again.
    with db.unit_of_work(bot.sessions) as session:
        session.execute(sa.update(Outbox).where(Outbox.id == row.id).values(delivered_at=None, claimed_until=None))
    bot.service.rt.deliverer.kick()
    poll(lambda: dm_row(bot).delivered_at is not None, message="the DM recorded again")
    assert len(dms_to(bot.fake, "U01ALICE")) == 1
    assert any(c.params.get("channel") == "DU01ALICE" for c in bot.fake.calls("conversations.history"))


def test_a_dm_queued_for_a_page_that_ended_is_not_sent(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(oncall=ONCALL)
    open_dms(bot.fake)
    incident = bot.declare("Checkout is down", "P0")
    wait_dm(bot.fake, "U01ALICE")
    row = dm_row(bot)
    with db.unit_of_work(bot.sessions) as session:
        assert send(bot.service.rt.deliverer, session, row) is not None  # the page still runs
    from bot.oncall.service import acknowledge_page
    from storage.models import utcnow

    with db.unit_of_work(bot.sessions) as session:
        acknowledge_page(session=session, incident_id=incident.id, user_id="U0BOB", now=utcnow())
    with db.unit_of_work(bot.sessions) as session:
        assert send(bot.service.rt.deliverer, session, dm_row(bot)) is None
    assert len(dms_to(bot.fake, "U01ALICE")) == 1
