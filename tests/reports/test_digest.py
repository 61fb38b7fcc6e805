"""The digests: the Block Kit builder, the schedule, and one post per period end to end.

End-to-end tests run the real bot against the fake Web API on SQLite and PostgreSQL and call the job
function the scheduler calls, with `now=` given explicitly, instead of waiting for a cron minute.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bot_harness import TOKEN, Bot, poll
from cli_process import run_cli
from fake_slack import UPLOAD_METHOD, Call, FakeSlack
from incident_rows import incident, store
from sqlmodel import select

from bot.reports import digest
from bot.reports.formatting import REPORT_TITLES
from bot.reports.periods import previous_period
from bot.runtime import digest_jobs
from bot.runtime.crontab_trigger import CrontabTrigger
from bot.settings import Settings
from bot.slack.blocks.digest import MAX_BLOCKS, digest_message
from storage.db import SessionFactory, unit_of_work
from storage.models import DigestRun, FollowUp, Outbox
from storage.service_state import Installation

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday 10:00 UTC: the weekly digest's moment
# Far from the real clock, so a real start-up catch-up (which reports on the real last week) cannot
# be mistaken for the post under test.
PAST = datetime(2024, 3, 13, 12, 0, tzinfo=UTC)  # a Wednesday; the week before it is 2024-W10
PAST_LABEL = "2024-W10"
TITLES = tuple(REPORT_TITLES.values())


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def message_for(sessions: SessionFactory, kind: str, now: datetime, **overrides: Any) -> dict[str, Any]:
    config = settings(**overrides)
    period = previous_period(kind, now, config.digest_timezone)
    with sessions() as session:
        return digest_message(digest.load(session, config, period, now), config)


def body(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def assert_block_kit_limits(message: dict[str, Any]) -> None:
    assert message["text"].strip()
    blocks = message["blocks"]
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert 0 < len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= 3000, block["text"]["text"][:200]
            assert len(block.get("fields", [])) <= 10
            assert all(0 < len(f["text"]) <= 2000 for f in block.get("fields", []))
        elif block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
    # No Python None, NaN or JSON null leaks into what people read.
    assert not re.search(r"\b(None|NaN|nan|null|inf)\b", body(message)), body(message)


# ---------------------------------------------------------------------------------------------
# The builder


def test_weekly_digest_content(sessions: SessionFactory) -> None:
    store(
        sessions,
        # 2026-W47: a P0 resolved in 12 min (target 10: lapsed), acknowledged in 3 (met).
        incident(
            datetime(2026, 11, 17, 10, tzinfo=UTC),
            severity="P0",
            ack=timedelta(minutes=3),
            mitigated=timedelta(minutes=8),
            resolved=timedelta(minutes=12),
            category="Database",
        ),
        # A P1 acknowledged after 20 min (target 15: lapsed), resolved in 25 (met).
        incident(
            datetime(2026, 11, 18, 9, tzinfo=UTC),
            severity="P1",
            ack=timedelta(minutes=20),
            resolved=timedelta(minutes=25),
        ),
        # Still open, with its card posted: linked from the digest.
        incident(
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            id="INC-2026-11-20-001",
            title="Search <!here> slow",
            channel_id="C0INCIDENTS",
            card_ts="1763640000.000100",
        ),
        # 2026-W46: one P3.
        incident(datetime(2026, 11, 10, 8, tzinfo=UTC), severity="P3", resolved=timedelta(hours=1)),
    )
    message = message_for(sessions, "weekly", NOW)
    assert_block_kit_limits(message)
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == "Weekly incident digest: 2026-W47"
    text = body(message)
    assert "compared with 2026-W46" in text
    assert "3 (previous 1, ↑ +2)" in text
    p0 = next(
        b["text"]["text"] for b in blocks if b["type"] == "section" and "*P0*" in b.get("text", {}).get("text", "")
    )
    assert "MTTR 12.0 min / 12.0 min / 12.0 min (n=1) · target <10 min · met 0% (0/1)" in p0
    assert "MTTA 3.0 min / 3.0 min / 3.0 min (n=1) · target <5 min · met 100% (1/1)" in p0
    assert "*P3* · no incidents (1 the week before)" in text
    assert "response: P1 1" in text and "resolution: P0 1" in text
    # 8 minutes of P0 downtime in a 10,080-minute week.
    assert "99.921% (target 99.9%)" in text and "downtime 8.0 min" in text
    assert "<https://slack.com/archives/C0INCIDENTS/p1763640000000100|INC-2026-11-20-001>" in text
    assert "<!here>" not in text and "&lt;!here&gt;" in text
    assert message["text"].startswith("Weekly incident digest: 2026-W47. 3 incidents (previous 1)")
    assert "1 open now" in message["text"]
    # Monthly-only sections stay out of the weekly digest.
    assert "Action items" not in text and "Incidents by category" not in text


def test_monthly_summary_has_the_trackers_monthly_report(sessions: SessionFactory) -> None:
    first = incident(
        datetime(2026, 11, 3, tzinfo=UTC),
        severity="P1",
        resolved=timedelta(minutes=40),
        category="Payment Gateway",
        affected="checkout-api",
        root_cause_class="Code Bug",
    )
    second = incident(
        datetime(2026, 11, 20, tzinfo=UTC),
        severity="P2",
        resolved=timedelta(minutes=80),
        category="Payment Gateway",
        affected="checkout-api",
        root_cause_class="Code Bug",
    )
    store(sessions, first, second)
    store(
        sessions,
        FollowUp(
            incident_id=first.id,
            description="Add a circuit breaker",
            owner="U0BOB",
            due_date=date(2026, 11, 30),
            created_at=NOW,
        ),
        FollowUp(incident_id=second.id, description="Done already", done=True, created_at=NOW),
    )
    message = message_for(sessions, "monthly", datetime(2026, 12, 7, 10, tzinfo=UTC))
    assert_block_kit_limits(message)
    text = body(message)
    assert message["blocks"][0]["text"]["text"] == "Monthly incident summary: November 2026"
    assert "*Top cause* Code Bug (2)" in text and "most affected category* Payment Gateway (2)" in text
    assert "Recurring: Payment Gateway / checkout-api ×2" in text
    assert "• Payment Gateway: 2 · 100% · ↑ +2" in text
    assert "• Code Bug: 2 · 100% · ↑ +2 · _Increased test coverage_" in text
    assert f"`FU-{1}` Add a circuit breaker (<@U0BOB>, due 2026-11-30, {first.id})" in text
    assert "Done already" not in text
    assert "*Repeat incidents* (1)" in text  # the second matches the first, resolved 17 days before


@pytest.mark.parametrize(
    ("kind", "now"),
    [
        ("weekly", NOW),
        ("monthly", datetime(2026, 12, 7, 10, tzinfo=UTC)),
        ("quarterly", datetime(2027, 1, 4, 10, tzinfo=UTC)),
    ],
)
def test_many_incidents_stay_within_block_kit_limits(sessions: SessionFactory, kind: str, now: datetime) -> None:
    long_title = "Everything is on fire & <nobody> knows why " * 4
    rows = []
    for n in range(600):
        declared = datetime(2026, 11, 16, tzinfo=UTC) + timedelta(minutes=15 * n)
        rows.append(
            incident(
                declared,
                severity=("P0", "P1", "P2", "P3")[n % 4],
                id=f"INC-{declared:%Y-%m-%d}-{n:03d}",
                title=long_title[:150],
                resolved=timedelta(minutes=30) if n % 2 else None,
                ack=timedelta(minutes=n % 30),
                category="Database",
                affected="orders-db",
                root_cause_class="Capacity Issue" if n % 2 else None,
                channel_id="C0INCIDENTS",
                card_ts=f"1763300000.{n:06d}",
            )
        )
    store(sessions, *rows)
    store(
        sessions,
        *(
            FollowUp(
                incident_id=rows[n].id,
                description="x" * 400,
                due_date=date(2026, 10, 1) + timedelta(days=n),
                created_at=NOW,
            )
            for n in range(40)
        ),
    )
    message = message_for(sessions, kind, now)
    assert_block_kit_limits(message)
    text = body(message)
    assert "…and 290 more (`/incident list`)" in text  # open incidents: 10 listed, the rest counted
    assert re.search(r"\*Repeat incidents\* \(\d{3}\): .* and \d{3} more", text)
    if kind != "weekly":
        assert "…and 30 more" in text  # action items: 10 of 40 listed


@pytest.mark.parametrize("kind", ["weekly", "monthly", "quarterly"])
def test_empty_database_says_there_is_no_data(sessions: SessionFactory, kind: str) -> None:
    message = message_for(sessions, kind, NOW)
    assert_block_kit_limits(message)
    text = body(message)
    assert "No incidents were declared" in message["text"]
    assert "*Open incidents* none" in text
    assert "nothing resolved" in text
    assert "*P0* · no incidents (none" in text
    assert "*Lapsed targets* :white_check_mark: none" in text


# ---------------------------------------------------------------------------------------------
# Scheduling (pure)


def test_jobs_follow_the_settings() -> None:
    rt = SimpleNamespace(
        settings=settings(
            digest_cron="0 10 * * mon",
            digest_timezone="Europe/Berlin",
            monthly_digest_cron="0 10 * * mon#1",
            quarterly_digest_cron="",
        )
    )
    jobs = {job["id"]: job for job in digest_jobs.jobs(rt)}  # type: ignore[arg-type]
    assert set(jobs) == {"digest-weekly", "digest-monthly", "digest-catch-up"}
    weekly, monthly = jobs["digest-weekly"], jobs["digest-monthly"]
    assert weekly["func"] is digest_jobs.run_digest and weekly["args"] == [rt, "weekly"]
    assert (weekly["max_instances"], weekly["coalesce"]) == (1, True)
    assert weekly["misfire_grace_time"] >= 3600
    berlin = ZoneInfo("Europe/Berlin")
    assert weekly["trigger"].timezone == "Europe/Berlin"
    after = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert weekly["trigger"].get_next_fire_time(None, after) == datetime(2026, 11, 30, 10, tzinfo=berlin)
    # The first Monday of the month: `#1` (crontab ORs day and day-of-week, so 1-7 cannot say it).
    assert monthly["trigger"].get_next_fire_time(None, after) == datetime(2026, 12, 7, 10, tzinfo=berlin)
    assert jobs["digest-catch-up"]["func"] is digest_jobs.catch_up
    off = SimpleNamespace(settings=settings(digest_cron="", monthly_digest_cron="", quarterly_digest_cron=""))
    assert digest_jobs.jobs(off) == []  # type: ignore[arg-type]


def test_quarterly_cron_fires_on_the_first_monday_of_a_quarter() -> None:
    trigger = digest_jobs.trigger("0 10 * 1,4,7,10 mon#1", settings())
    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 26, tzinfo=UTC))
    assert fire == datetime(2027, 1, 4, 10, tzinfo=UTC)
    assert previous_period("quarterly", fire, "UTC").label == "Q4 2026"


@pytest.mark.parametrize(
    ("expr", "kind", "now", "due"),
    [
        # Weekly at Monday 10:00: due from then until the week ends, not before it in the week.
        ("0 10 * * mon", "weekly", datetime(2026, 11, 23, 10, 0, tzinfo=UTC), True),
        ("0 10 * * mon", "weekly", datetime(2026, 11, 29, 23, 59, tzinfo=UTC), True),
        ("0 10 * * mon", "weekly", datetime(2026, 11, 23, 9, 59, tzinfo=UTC), False),
        ("0 10 * * mon", "weekly", datetime(2026, 11, 30, 0, 1, tzinfo=UTC), False),
        # Monthly on the first Monday: due after it within the month, not on the 1st before it.
        ("0 10 * * mon#1", "monthly", datetime(2026, 12, 20, tzinfo=UTC), True),
        ("0 10 * * mon#1", "monthly", datetime(2026, 12, 3, tzinfo=UTC), False),
        ("0 10 * 1,4,7,10 mon#1", "quarterly", datetime(2027, 2, 1, tzinfo=UTC), True),
        ("0 10 * 1,4,7,10 mon#1", "quarterly", datetime(2027, 1, 2, tzinfo=UTC), False),
    ],
)
def test_missed_digest_is_due_only_within_the_current_period(expr: str, kind: str, now: datetime, due: bool) -> None:
    assert digest_jobs.missed(expr, kind, now, "UTC") is due


def test_missed_respects_the_digest_timezone() -> None:
    # Monday 2026-11-23 09:30 UTC is 20:30 in Sydney: 10:00 passed there this week, not yet in UTC.
    monday_morning_utc = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    assert digest_jobs.missed("0 10 * * mon", "weekly", monday_morning_utc, "Australia/Sydney")
    assert not digest_jobs.missed("0 10 * * mon", "weekly", monday_morning_utc, "UTC")


def test_missed_counts_only_fire_times_after_the_database_was_created() -> None:
    wednesday = datetime(2026, 11, 25, 12, tzinfo=UTC)  # Monday 2026-11-23 10:00 passed this week
    assert digest_jobs.missed("0 10 * * mon", "weekly", wednesday, "UTC")
    assert digest_jobs.missed(
        "0 10 * * mon", "weekly", wednesday, "UTC", since=datetime(2026, 11, 23, 9, 59, tzinfo=UTC)
    )
    assert not digest_jobs.missed(
        "0 10 * * mon", "weekly", wednesday, "UTC", since=datetime(2026, 11, 23, 10, 1, tzinfo=UTC)
    )
    # A second fire in the period after the creation still makes the period due.
    assert digest_jobs.missed("0 10 * * mon,wed", "weekly", wednesday, "UTC", since=datetime(2026, 11, 24, tzinfo=UTC))


# ---------------------------------------------------------------------------------------------
# End to end


def digest_posts(fake: FakeSlack, label: str | None = None) -> list[Call]:
    """Top-level digest messages Slack accepted."""
    return [
        c
        for c in fake.calls("chat.postMessage")
        if c.status == 200
        and "thread_ts" not in c.params
        and str(c.params.get("text", "")).startswith(TITLES)
        and (label is None or f": {label}." in c.params["text"])
    ]


def runs(sessions: SessionFactory) -> list[DigestRun]:
    with unit_of_work(sessions) as session:
        return list(session.exec(select(DigestRun).order_by(DigestRun.id)))  # type: ignore[arg-type]


def delivered_run(sessions: SessionFactory, kind: str, start: date) -> DigestRun:
    def find() -> DigestRun | None:
        return next((r for r in runs(sessions) if (r.period, r.period_start) == (kind, start) and r.delivered_at), None)

    found: DigestRun = poll(find, timeout=20, message=f"{kind} digest for {start} delivered")
    return found


def installed(sessions: SessionFactory, at: datetime) -> None:
    """Pretend the database was created at `at` (its migration wrote the time of the test's run)."""
    with unit_of_work(sessions) as session:
        row = session.get(Installation, 1)
        assert row is not None
        row.created_at = at


def all_delivered(sessions: SessionFactory) -> bool:
    return all(r.delivered_at for r in runs(sessions))


def test_scheduled_job_posts_once_per_period_with_its_chart(make_bot: Any, db_url: str) -> None:
    # An open incident first (the digest links to its card), with the digest off...
    earlier: Bot = make_bot()
    incident = earlier.declare("Checkout is down", "P1")
    earlier.stop()
    # ...then a bot with a per-minute digest: its start-up catch-up may post at once, which is fine.
    bot: Bot = make_bot(digest_cron="* * * * *", database_url=db_url)
    job = bot.service.background.scheduler.get_job("digest-weekly")
    assert isinstance(job.trigger, CrontabTrigger)
    assert job.trigger.expr == "* * * * *"
    assert job.trigger.timezone == "UTC"  # DIGEST_TIMEZONE
    assert job.func is digest_jobs.run_digest and list(job.args) == [bot.service.background.rt, "weekly"]
    assert (job.max_instances, job.coalesce) == (1, True)

    for _ in range(3):
        job.func(*job.args)  # what the scheduler runs every minute
    period = previous_period("weekly", datetime.now(UTC), "UTC")
    run = delivered_run(bot.sessions, "weekly", period.local_start.date())

    (post,) = digest_posts(bot.fake)
    assert post.params["channel"] == "ops-incidents"
    assert period.label in post.params["text"]
    blocks = json.dumps(post.params["blocks"])
    assert incident.id in blocks and (incident.card_ts or "-").replace(".", "") in blocks
    assert run.channel_id == "C0INCIDENTS" and run.ts

    (url_call,) = bot.fake.calls("files.getUploadURLExternal")
    assert url_call.params["filename"].endswith(".png")
    (upload,) = bot.fake.calls(UPLOAD_METHOD)
    assert upload.raw.startswith(PNG_MAGIC) and len(upload.raw) > 5_000
    assert bot.fake.uploaded(upload.params["file_id"]) == upload.raw
    (complete,) = bot.fake.calls("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C0INCIDENTS"  # the ID chat.postMessage answered, not the name
    assert complete.params["thread_ts"] == run.ts
    assert complete.params["files"][0]["id"] == upload.params["file_id"]

    for _ in range(3):
        job.func(*job.args)
    bot.fake.assert_no_more("files.completeUploadExternal", 1, settle=1.0)
    assert len(digest_posts(bot.fake)) == 1
    assert len(runs(bot.sessions)) == 1


def test_two_bots_on_one_database_post_once(make_bot: Any, db_url: str) -> None:
    first: Bot = make_bot()
    second: Bot = make_bot(database_url=db_url)
    won: list[bool] = []
    lock = threading.Lock()

    def run(bot: Bot) -> None:
        for _ in range(3):
            result = digest_jobs.run_digest(bot.service.rt, "weekly", now=PAST)
            with lock:
                won.append(result)

    threads = [threading.Thread(target=run, args=(bot,)) for bot in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == [False] * 11 + [True]
    delivered_run(first.sessions, "weekly", date(2024, 3, 4))
    first.fake.assert_no_more("files.completeUploadExternal", 1, settle=1.0)
    assert len(digest_posts(first.fake, PAST_LABEL)) == 1


def test_no_second_post_after_a_restart_in_the_same_period(make_bot: Any, db_url: str) -> None:
    before: Bot = make_bot(digest_cron="0 10 * * mon")
    assert digest_jobs.run_digest(before.service.rt, "weekly", now=PAST)
    delivered_run(before.sessions, "weekly", date(2024, 3, 4))
    # The real start-up catch-up may post the real last week too: make sure its claim is in (claims
    # serialise in the database), then let everything land.
    digest_jobs.catch_up(before.service.rt)
    poll(lambda: all_delivered(before.sessions), timeout=20, message="every digest delivered")
    posted = len(digest_posts(before.fake))
    before.stop()

    after: Bot = make_bot(digest_cron="0 10 * * mon", database_url=db_url)
    assert digest_jobs.catch_up(after.service.rt, now=PAST) == []
    assert not digest_jobs.run_digest(after.service.rt, "weekly", now=PAST)
    after.fake.assert_no_more("files.completeUploadExternal", posted, settle=1.5)
    assert len(digest_posts(after.fake)) == posted
    assert len(digest_posts(after.fake, PAST_LABEL)) == 1


def test_missed_digest_is_posted_at_start_up_only_within_its_period(make_bot: Any) -> None:
    bot: Bot = make_bot(digest_cron="0 10 * * mon")
    installed(bot.sessions, datetime(2024, 1, 1, tzinfo=UTC))
    rt = bot.service.rt
    # Monday 2024-03-18 09:00: the last fire (03-11 10:00) reported on the week before last: too old.
    assert digest_jobs.catch_up(rt, now=datetime(2024, 3, 18, 9, 0, tzinfo=UTC)) == []
    # Wednesday 2024-03-13: Monday 10:00 passed while the bot was down: 2024-W10 is posted now.
    assert digest_jobs.catch_up(rt, now=PAST) == ["weekly"]
    delivered_run(bot.sessions, "weekly", date(2024, 3, 4))
    assert len(digest_posts(bot.fake, PAST_LABEL)) == 1
    assert not any(r.period_start == date(2024, 3, 11) for r in runs(bot.sessions))
    assert digest_jobs.catch_up(rt, now=PAST + timedelta(days=1)) == []  # claimed already
    bot.fake.assert_no_more(
        "chat.postMessage", 0, settle=0.5, where=lambda c: "2024-W11" in str(c.params.get("text", ""))
    )


def test_start_up_posts_the_digest_it_missed_without_being_asked(
    make_bot: Any, sessions: SessionFactory, db_url: str
) -> None:
    # Daily at 00:00 UTC: it fired at the start of this week (and every day since), never during the
    # test (short of running it at midnight), so a post can only come from the start-up catch-up.
    # The database was created before this week began (a fresh one would post nothing).
    installed(sessions, previous_period("weekly", datetime.now(UTC), "UTC").start)
    bot: Bot = make_bot(digest_cron="0 0 * * *", database_url=db_url)
    period = previous_period("weekly", datetime.now(UTC), "UTC")
    delivered_run(bot.sessions, "weekly", period.local_start.date())
    (post,) = digest_posts(bot.fake)
    assert f"Weekly incident digest: {period.label}." in post.params["text"]
    assert bot.service.background.scheduler.get_job("digest-weekly") is not None
    assert bot.service.background.scheduler.get_job("digest-catch-up") is None  # one-off: done


def test_monthly_and_quarterly_catch_up_post_their_own_summaries(make_bot: Any) -> None:
    bot: Bot = make_bot(monthly_digest_cron="0 10 * * mon#1", quarterly_digest_cron="0 10 * 1,4,7,10 mon#1")
    installed(bot.sessions, datetime(2024, 1, 1, tzinfo=UTC))
    # Friday 2024-04-12: April's first Monday (the 1st) has passed: March and Q1 are due.
    assert sorted(digest_jobs.catch_up(bot.service.rt, now=datetime(2024, 4, 12, tzinfo=UTC))) == [
        "monthly",
        "quarterly",
    ]
    monthly = delivered_run(bot.sessions, "monthly", date(2024, 3, 1))
    quarterly = delivered_run(bot.sessions, "quarterly", date(2024, 1, 1))
    (month_post,) = digest_posts(bot.fake, "March 2024")
    (quarter_post,) = digest_posts(bot.fake, "Q1 2024")
    assert month_post.params["text"].startswith("Monthly incident summary: March 2024.")
    assert quarter_post.params["text"].startswith("Quarterly incident retrospective: Q1 2024.")
    assert "Action items" in json.dumps(month_post.params["blocks"])
    charts = [c.params["thread_ts"] for c in bot.fake.calls("files.completeUploadExternal")]
    assert charts.count(monthly.ts) == 1 and charts.count(quarterly.ts) == 1


def test_a_500_from_slack_is_retried_and_posts_once(bot: Bot) -> None:
    # Two 500s: the Web API client's own quick retry fails too, so the outbox has to retry it.
    bot.fake.fail("chat.postMessage", 500, times=2)
    assert digest_jobs.run_digest(bot.service.rt, "weekly", now=PAST)
    delivered_run(bot.sessions, "weekly", date(2024, 3, 4))
    assert len(digest_posts(bot.fake, PAST_LABEL)) == 1
    assert [c.status for c in bot.fake.calls("chat.postMessage")] == [500, 500, 200]
    with unit_of_work(bot.sessions) as session:
        rows = list(session.exec(select(Outbox).where(Outbox.kind == "digest").order_by(Outbox.id)))  # type: ignore[arg-type]
    assert [(r.payload["step"], r.attempts, bool(r.delivered_at)) for r in rows] == [
        ("post", 2, True),
        ("chart", 1, True),
    ]


def test_a_failed_chart_upload_is_retried_without_posting_again(bot: Bot) -> None:
    bot.fake.fail("files.completeUploadExternal", 500, times=2)
    assert digest_jobs.run_digest(bot.service.rt, "weekly", now=PAST)
    run = delivered_run(bot.sessions, "weekly", date(2024, 3, 4))
    assert len(digest_posts(bot.fake, PAST_LABEL)) == 1
    complete = [c for c in bot.fake.calls("files.completeUploadExternal") if c.status == 200]
    assert len(complete) == 1 and complete[0].params["thread_ts"] == run.ts


# ---------------------------------------------------------------------------------------------
# `incident-bot report weekly --post`


def cli(*args: str, fake: FakeSlack, db: str, cwd: Path, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONFIG_FILE", "DATABASE_URL"))}
    env.update(DATABASE_URL=db, SLACK_API_URL=fake.url, PYTHONPATH=str(ROOT))
    if token:
        env["SLACK_BOT_TOKEN"] = token
    return run_cli(args, env=env, cwd=cwd, timeout=120)


def test_report_post_posts_once(fake_slack: FakeSlack, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    label = previous_period("weekly", datetime.now(UTC), "UTC").label

    first = cli("report", "weekly", "--post", fake=fake_slack, db=db, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"# Weekly incident digest: {label}")
    assert len(digest_posts(fake_slack, label)) == 1
    (complete,) = fake_slack.calls("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C0INCIDENTS"
    assert all(c.token == TOKEN for c in fake_slack.calls() if c.path.startswith("/api/"))

    second = cli("report", "weekly", "--post", fake=fake_slack, db=db, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "already posted" in second.stderr
    assert len(digest_posts(fake_slack)) == 1
    assert len(fake_slack.calls("files.completeUploadExternal")) == 1


def test_report_post_without_a_token_says_so_in_one_line(fake_slack: FakeSlack, tmp_path: Path) -> None:
    result = cli(
        "report", "weekly", "--post", fake=fake_slack, db=f"sqlite:///{tmp_path}/x.db", cwd=tmp_path, token=None
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "SLACK_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_slack.calls() == []
