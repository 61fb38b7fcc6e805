"""The App Home tab: the builder within Block Kit's limits, and app_home_opened end to end."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import slack_requests as sr
from bot_harness import SECRET, Bot

from bot.ids import Action
from bot.reports.metrics import MARK_BASELINE, MARK_GREEN, MARK_RED, CurrentStatus, StatusFigure
from bot.settings import Settings
from bot.slack.blocks import home
from storage.models import Incident

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = Settings(_env_file=None).policy()  # type: ignore[call-arg]


def status(mttr: float | None = None, month: int = 0) -> CurrentStatus:
    return CurrentStatus(
        mttr=StatusFigure("MTTR (Mean Time To Recovery)", mttr, "<15 min", MARK_BASELINE if mttr is None else MARK_RED),
        incidents_this_month=StatusFigure("Incidents This Month", month, "<5", MARK_GREEN),
        p0_last_30_days=StatusFigure("P0 Incidents (Last 30 Days)", 0, "0", MARK_GREEN),
        p1_last_30_days=StatusFigure("P1 Incidents (Last 30 Days)", 0, "<3", MARK_GREEN),
        repeats_last_30_days=StatusFigure("Repeat Incidents", 0, "0", MARK_GREEN),
    )


def open_incident(number: int, severity: str = "P1", minutes_ago: int = 3, **fields: Any) -> Incident:
    declared = NOW - timedelta(minutes=minutes_ago)
    return Incident(
        id=f"INC-2026-11-26-{number:03d}",
        title=fields.pop("title", f"Checkout errors {number}"),
        severity=severity,
        status=fields.pop("status", "Investigating"),
        started_at=declared,
        declared_at=declared,
        channel_id="C0INCIDENTS",
        card_ts=f"1764158400.{number:06d}",
        **fields,
    )


def texts(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


def assert_within_limits(view: dict[str, Any]) -> None:
    assert view["type"] == "home"
    assert 0 < len(view["blocks"]) <= 100
    for block in view["blocks"]:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= 3000
        assert len(block.get("fields", [])) <= 10
        if block["type"] == "section":
            assert text or block.get("fields"), block
    assert not re.search(r"\b(None|NaN|nan)\b", texts(view))


def test_500_open_incidents_stay_within_100_blocks_and_say_how_many_more() -> None:
    incidents = [open_incident(n, "P0" if n < 5 else "P2", minutes_ago=n) for n in range(1, 501)]
    view = home.home_view(incidents, 500, status(), policy=POLICY, now=NOW)
    assert_within_limits(view)
    shown = [b for b in view["blocks"] if b.get("block_id", "").startswith("home_incident_")]
    assert len(shown) == home.INCIDENT_LIMIT
    body = texts(view)
    assert f"{500 - home.INCIDENT_LIMIT} more open incidents" in body
    assert "INC-2026-11-26-001" in body and "INC-2026-11-26-041" not in body


def test_an_incident_shows_severity_status_age_deadlines_and_a_link() -> None:
    acked = open_incident(1, "P0", minutes_ago=12, acknowledged_at=NOW - timedelta(minutes=10), commander="U0CAROL")
    fresh = open_incident(2, "P2", minutes_ago=20, title="Search <!channel> slow")
    view = home.home_view([acked, fresh], 2, status(mttr=1800.0, month=2), policy=POLICY, now=NOW)
    assert_within_limits(view)
    first, second = (b for b in view["blocks"] if b.get("block_id", "").startswith("home_incident_"))
    text = first["text"]["text"]
    assert "*P0*" in text and "Investigating" in text and "open 12m" in text and "<@U0CAROL>" in text
    # P0: resolution target 10 min from declaration, 12 min ago -> lapsed 2 min ago; response was met.
    assert "acknowledged" in text and "lapsed 2m ago" in text
    assert "<https://slack.com/archives/C0INCIDENTS/p1764158400000001|INC-2026-11-26-001>" in text
    assert first["accessory"]["action_id"] == Action.OPEN_CARD.value
    assert first["accessory"]["url"] == "https://slack.com/archives/C0INCIDENTS/p1764158400000001"
    # P2: response target 1 h -> 40 min left; resolution 2 h -> 1 h 40 min left.
    assert "Response: :hourglass_flowing_sand: 40m left" in second["text"]["text"]
    assert "Resolution: :hourglass_flowing_sand: 1h 40m left" in second["text"]["text"]
    assert "<!channel>" not in second["text"]["text"] and "&lt;!channel&gt;" in second["text"]["text"]
    # The Current Status figures, with their marks; MTTR in minutes.
    figures = json.dumps(next(b for b in view["blocks"] if "fields" in b), ensure_ascii=False)
    assert "MTTR (Mean Time To Recovery)" in figures and "30.0 min" in figures and MARK_RED in figures
    assert "Incidents This Month" in figures and "2 (target <5)" in figures
    assert "more open incident" not in texts(view)


def test_empty_state_has_the_declare_button_and_says_none() -> None:
    view = home.home_view([], 0, status(), policy=POLICY, now=NOW)
    assert_within_limits(view)
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == [Action.HOME_DECLARE.value]
    body = texts(view)
    assert "None :tada:" in body
    assert "no data yet" in body and MARK_BASELINE in body


def test_app_home_opened_publishes_the_home_tab_for_that_user(bot: Bot) -> None:
    incident = bot.declare("Payments failing", "P1")
    bot.send_ok(sr.event(sr.app_home_opened("U0DAVE"), secret=SECRET))
    (call,) = bot.fake.wait_for("views.publish")
    assert call.params["user_id"] == "U0DAVE"
    view = call.params["view"]
    assert view["type"] == "home"
    body = json.dumps(view)
    assert incident.id in body and "Payments failing" in body
    assert incident.card_ts and incident.card_ts.replace(".", "") in body  # linked to its card
    assert "Incidents This Month" in body
    assert Action.HOME_DECLARE.value in body
    bot.fake.assert_no_more("views.publish", 1)


def test_the_messages_tab_is_not_drawn(bot: Bot) -> None:
    bot.send_ok(sr.event(sr.app_home_opened("U0DAVE", tab="messages"), secret=SECRET))
    bot.send_ok(sr.event(sr.app_home_opened("U0ERIN"), secret=SECRET))
    (call,) = bot.fake.wait_for("views.publish")
    assert call.params["user_id"] == "U0ERIN"
    bot.fake.assert_no_more("views.publish", 1)
