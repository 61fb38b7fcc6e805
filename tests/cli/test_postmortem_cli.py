"""`incident-bot postmortem` over an incident run through Slack end to end."""

from __future__ import annotations

import os
import subprocess
import time

import cli_process
import slack_requests as sr
from bot_harness import SECRET, Bot, poll

from bot.ids import Action
from bot.incidents import timeline
from storage.db import unit_of_work


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["DATABASE_URL"] = db_url
    return cli_process.run_cli(args, env=env, timeout=60)


def test_postmortem_of_a_real_incident(bot: Bot, db_url: str) -> None:
    incident = bot.declare("Checkout returns 502s", "P0", affected_users="1200", detection="PagerDuty alert")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0BOB", card=incident)
    channel, thread = incident.channel_id or "", incident.card_ts or ""
    base = time.time()
    first, second, third = (f"{base + offset:.6f}" for offset in (1, 2, 3))
    bot.reply(incident, first, "Rolling back deploy 4512", user="U0BOB")
    bot.reply(incident, second, "typo mesage", user="U0CAROL")
    bot.reply(incident, third, "wrong thread, ignore", user="U0DAVE")
    bot.send_ok(
        sr.event(
            sr.message_changed(
                channel, thread, second, "U0CAROL", "Error rate back to normal", f"{base + 4:.6f}", "typo mesage"
            ),
            secret=SECRET,
        )
    )
    bot.send_ok(sr.event(sr.message_deleted(channel, thread, third, "U0DAVE"), secret=SECRET))
    bot.send_ok(sr.event(sr.reaction_added(channel, second, "U0BOB"), secret=SECRET))

    def settled() -> bool:
        with unit_of_work(bot.sessions) as session:
            entries = {e.slack_ts: e for e in timeline.timeline(session, incident.id) if e.slack_ts}
        return (
            len(entries) == 3
            and entries[third].deleted
            and entries[second].key_event
            and entries[second].text == "Error rate back to normal"
        )

    poll(settled, message="timeline settled")
    result = run_cli(db_url, "postmortem", incident.id)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"## {incident.id}: Checkout returns 502s")
    for field in (
        "**Date:**",
        "**Severity:** P0",
        "**Status:** Investigating",
        "**MTTR:**",
        "**Affected Users:** ~1,200 users",
        "**Detection:**",
        "PagerDuty alert",
        "**Impact:**",
        "**Root Cause:**",
        "**Resolution:**",
        "**Timeline:**",
        "**Follow-up Beads:**",
        "**RCA Document:**",
    ):
        assert field in text, field
    body = text[text.index("**Timeline:**") : text.index("**Follow-up Beads:**")]
    assert "Rolling back deploy 4512" in body and "Error rate back to normal" in body
    assert "typo mesage" not in body and "wrong thread" not in body  # edits applied, deletions left out
    assert (
        body.index("Declared") < body.index("Acknowledged") < body.index("Rolling back") < body.index("Error rate back")
    )
    assert "📌" in body  # the pinned reply is a key event

    missing = run_cli(db_url, "postmortem", "INC-2099-01-01-001")
    assert missing.returncode == 1 and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
