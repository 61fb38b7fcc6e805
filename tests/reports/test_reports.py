"""Markdown renderers: the tracker against the hand-kept seed, the periodic reports, the postmortem."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.demo.seed import seed
from bot.reports import postmortem as postmortem_md
from bot.reports import report as report_md
from bot.reports import tracker as tracker_md
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import FollowUp, Incident, TimelineEntry, utcnow

REPO = Path(__file__).resolve().parents[2]
SEED_CANDIDATES = (
    REPO.parent / "shared/seed/INCIDENT_TRACKER.md",  # CI: shared/ copied beside the clone
    REPO / "tests/data/INCIDENT_TRACKER.md",
)
SEED_DAY = datetime(2026, 1, 4, 0, 0, tzinfo=UTC)  # the day the hand-kept tracker was last updated
NO_DATA_MARKERS = (
    "No incidents recorded",
    "No usage data yet",
    "No data yet",
    "Baseline needed",
    "(no baseline)",
    "To be populated",
    "⏳ Measuring",
    "⏳ No data",
    "nothing recorded yet",
    "no open follow-ups",
)


def seed_tracker() -> str:
    for path in SEED_CANDIDATES:
        if path.exists():
            return path.read_text(encoding="utf-8")
    raise AssertionError(f"the seed tracker is in none of {SEED_CANDIDATES}")


def headings(markdown: str) -> list[str]:
    """`##`/`###` headings outside fenced code blocks, in order."""
    found = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{2,3} ", line):
            found.append(line.rstrip())
    return found


def is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(any(item == needle for item in remaining) for needle in needles)


def assert_clean(markdown: str) -> None:
    assert "NaN" not in markdown
    assert "nan%" not in markdown.lower()
    # The seed itself says "**None** - Last updated" when nothing is open; Python's None must never leak.
    assert re.search(r"\bNone\b", markdown.replace("**None** - Last updated", "")) is None


def test_empty_tracker_has_every_seed_heading_in_order_and_says_no_data(sessions: SessionFactory) -> None:
    with freeze_time(SEED_DAY), sessions() as session:
        markdown = tracker_md.render_tracker(session, Settings(), utcnow())
    expected = headings(seed_tracker())
    assert len(expected) > 30
    assert headings(markdown) == expected
    assert_clean(markdown)
    for marker in ("*(No incidents recorded)*", "*(No usage data yet)*", "⏳ Baseline needed", "⏳ Measuring"):
        assert marker in markdown
    assert "**None** - Last updated: 2026-01-04 00:00 UTC" in markdown
    assert "| **Incidents This Month** | 0 | <5 | ✅ Green |" in markdown
    assert "| P3 | <8 hours | - | ⏳ No data |" in markdown
    assert "- **Total Downtime:** 0 minutes" in markdown
    # Static sections come from settings.
    assert "- [P1: Slow Queries](https://github.com/your-org/ops/blob/main/runbooks/p1-slow-queries.md)" in markdown
    assert "- **Slack:** #ops-alerts" in markdown
    assert "- **MTTR Target:** <2 hours" in markdown


def test_seeded_tracker_fills_every_section(sessions: SessionFactory) -> None:
    seed(sessions, incidents=1500, seed=7, now=SEED_DAY + timedelta(hours=12), force=False)
    with sessions() as session:
        markdown = tracker_md.render_tracker(session, Settings(), SEED_DAY + timedelta(hours=12), log_limit=5)
    assert is_subsequence(headings(seed_tracker()), headings(markdown))
    assert_clean(markdown)
    for marker in NO_DATA_MARKERS:
        assert marker not in markdown, marker
    assert "| Dec 2025 |" in markdown and "| Feb 2025 |" in markdown  # twelve months of SLA
    assert "### November 2025 Summary" in markdown
    assert "### Q4 2025 (Oct-Dec)" in markdown
    assert re.search(r"^1\. \*\*P\d: .+\*\*: \d+ uses?$", markdown, re.MULTILINE)  # most-used runbook
    assert re.search(r"^- `INC-[\d-]+`: .+$", markdown, re.MULTILINE)  # lessons
    assert re.search(r"^- \[ \] `FU-\d+`: ", markdown, re.MULTILINE)  # action items
    assert len(re.findall(r"^## INC-\d{4}-\d\d-\d\d-\d{3}: ", markdown, re.MULTILINE)) == 5
    assert "further incidents this month" in markdown


def postmortem_history(sessions: SessionFactory) -> Incident:
    declared = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)
    incident = Incident(
        id="INC-2026-03-01-001",
        title="Checkout &lt;down&gt;",
        severity="P1",
        status="Resolved",
        affected="checkout-api",
        affected_users=1200,
        detection="Alertmanager alert fired",
        impact="Payments failed",
        root_cause="Bad config push",
        root_cause_class="Configuration Error",
        category="Payment Gateway",
        resolution="Rolled back",
        revenue_impact=1234.5,
        started_at=declared - timedelta(minutes=5),
        declared_at=declared,
        acknowledged_at=declared + timedelta(minutes=2),
        resolved_at=declared + timedelta(minutes=30),
    )

    def entry(minutes: int, text: str, **fields: object) -> TimelineEntry:
        return TimelineEntry(
            incident_id=incident.id,
            kind=str(fields.pop("kind", "message")),
            text=text,
            occurred_at=declared + timedelta(minutes=minutes),
            **fields,
        )

    with unit_of_work(sessions) as session:
        session.add(incident)
        session.flush()
        session.add_all(
            [
                # Stored out of time order on purpose.
                entry(
                    20,
                    "Rolled back <https://deploy.example/42|deploy 42>",
                    author="U3",
                    slack_ts="3.0",
                    key_event=True,
                    files=[{"name": "graph.png", "permalink": "https://files.example/graph.png"}],
                ),
                entry(0, "Declared by <@U1> as P1", kind="system", event="declared", author="U1"),
                entry(8, "the edited text", author="U2", slack_ts="1.0", edited_ts="1.5"),
                entry(15, "oops, wrong thread", author="U2", slack_ts="2.0", deleted=True),
                entry(30, "Resolved by <@U1>", kind="system", event="resolved", author="U1"),
            ]
        )
        session.add_all(
            [
                FollowUp(
                    incident_id=incident.id,
                    description="Validate config in CI",
                    owner="U2",
                    due_date=date(2026, 3, 15),
                    created_at=declared + timedelta(hours=1),
                ),
                FollowUp(
                    incident_id=incident.id,
                    description="Alert on checkout errors",
                    owner="U3",
                    due_date=date(2026, 3, 8),
                    done=True,
                    created_at=declared + timedelta(hours=1),
                ),
            ]
        )
    return incident


def test_postmortem_in_the_tracker_template(sessions: SessionFactory) -> None:
    postmortem_history(sessions)
    with sessions() as session:
        markdown = postmortem_md.render_postmortem(session, "INC-2026-03-01-001")
        ids = list(session.exec(select(FollowUp.id).order_by(FollowUp.id)))  # type: ignore[arg-type]
    assert markdown is not None
    lines = markdown.splitlines()
    assert lines[:6] == [
        "## INC-2026-03-01-001: Checkout <down>",
        "**Date:** 2026-03-01 23:50 UTC  ",
        "**Severity:** P1  ",
        "**Status:** Resolved  ",
        "**MTTR:** 35 minutes  ",
        "**Affected Users:** ~1,200 users  ",
    ]
    timeline = lines[lines.index("**Timeline:**") + 1 : lines.index("**Follow-up Beads:**") - 1]
    assert timeline == [
        "- 2026-03-01 23:50 - Declared by <@U1> as P1",
        "- 23:58 - <@U2>: the edited text *(edited)*",
        "- 2026-03-02 00:10 - 📌 **<@U3>: Rolled back [deploy 42](https://deploy.example/42) "
        "📎 [graph.png](https://files.example/graph.png)**",
        "- 00:20 - Resolved by <@U1>",
    ]
    assert "wrong thread" not in markdown
    beads = lines[lines.index("**Follow-up Beads:**") + 1 : lines.index("**Follow-up Beads:**") + 3]
    assert beads == [
        f"- `FU-{ids[0]}`: Validate config in CI (owner <@U2>, due 2026-03-15) ⬜",
        f"- `FU-{ids[1]}`: Alert on checkout errors (owner <@U3>, due 2026-03-08) ✅",
    ]
    assert "- Revenue impact: $1,234.50" in lines
    assert "**RCA Document:** *(expected for P1 — not linked yet)*" in lines
    assert_clean(markdown)


def test_unresolved_postmortem_and_unknown_id(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        session.add(
            Incident(
                id="INC-2026-03-02-001",
                title="Slow search",
                severity="P3",
                started_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
                declared_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            )
        )
    with sessions() as session:
        markdown = postmortem_md.render_postmortem(session, "INC-2026-03-02-001")
        assert postmortem_md.render_postmortem(session, "INC-2099-01-01-001") is None
    assert markdown is not None
    assert "**MTTR:** - (unresolved)  " in markdown
    assert "**Affected Users:** - (unknown)  " in markdown
    assert "- (no timeline entries yet)" in markdown
    assert "**RCA Document:** N/A (not required for P3)" in markdown
    assert_clean(markdown)


def test_tracker_log_reuses_the_postmortem_template(sessions: SessionFactory) -> None:
    postmortem_history(sessions)
    now = datetime(2026, 3, 10, tzinfo=UTC)
    with sessions() as session:
        postmortem = postmortem_md.render_postmortem(session, "INC-2026-03-01-001")
        tracker = tracker_md.render_tracker(session, Settings(), now)
    assert postmortem is not None
    block = postmortem.rstrip().removesuffix("---").rstrip()
    assert block in tracker
    assert "### March 2026" in tracker
    assert "| **Incidents This Month** | 1 | <5 | ✅ Green |" in tracker


NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_weekly_report_compares_with_the_week_before(sessions: SessionFactory) -> None:
    declared = datetime(2026, 11, 17, 9, tzinfo=UTC)
    with unit_of_work(sessions) as session:
        for n, minutes in enumerate((10, 20, 90), start=1):
            session.add(
                Incident(
                    id=f"INC-2026-11-17-00{n}",
                    title="API errors",
                    severity="P1",
                    status="Resolved",
                    category="Database",
                    root_cause_class="Code Bug",
                    started_at=declared,
                    declared_at=declared,
                    acknowledged_at=declared + timedelta(minutes=minutes / 10),
                    resolved_at=declared + timedelta(minutes=minutes),
                )
            )
    with freeze_time(NOW), sessions() as session:
        markdown = report_md.render_report(session, Settings(), "weekly", utcnow())
    assert markdown.startswith("# Weekly incident digest: 2026-W47\n")
    assert "2026-11-16 00:00 → 2026-11-23 00:00 UTC, compared with 2026-W46" in markdown
    assert "- **Incidents:** 3 (previous 0, ↑ +3)" in markdown
    # MTTR 10, 20, 90 min: mean 40, median 20, p90 = 20 + 0.8 × 70 = 76 min.
    p1 = next(line for line in markdown.splitlines() if line.startswith("| P1 |"))
    assert "40.0 min / 20.0 min / 1 h 16 min (n=3)" in p1
    assert "67% (2/3)" in p1  # resolved within 30 minutes of declaration
    assert "| Database | 3 | 100% | ↑ +3 |" in markdown
    assert "## Definitions" in markdown and "**MTTR** (mean time to recovery)" in markdown
    assert_clean(markdown)


@pytest.mark.parametrize(("kind", "label"), [("monthly", "October 2026"), ("quarterly", "Q3 2026")])
def test_monthly_and_quarterly_reports(sessions: SessionFactory, kind: str, label: str) -> None:
    with sessions() as session:
        markdown = report_md.render_report(session, Settings(), kind, NOW)
    assert markdown.splitlines()[0].endswith(f": {label}")
    assert "## Anomalies" in markdown
    assert_clean(markdown)


def test_unknown_report_kind_is_refused(sessions: SessionFactory) -> None:
    with sessions() as session, pytest.raises(ValueError, match="unknown report"):
        report_md.render_report(session, Settings(), "daily", NOW)
