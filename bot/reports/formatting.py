"""How figures read in every output: durations, targets, shares, money, trends, Slack markup turned Markdown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from bot.incidents import people
from bot.reports.metrics import DurationStats

REPORT_TITLES = {
    "weekly": "Weekly incident digest",
    "monthly": "Monthly incident summary",
    "quarterly": "Quarterly incident retrospective",
}


_SLACK_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")


_SLACK_BARE_LINK = re.compile(r"<(https?://[^|>]+)>")


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


# A name is text, not markup: "|" must not split a table cell, "*" must not start emphasis.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]<>|#])")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest:02d} min"
    days, rest = divmod(round(seconds / 3600), 24)
    return f"{days} d {rest} h"


def fmt_stats(stats: DurationStats) -> str:
    if not stats.count:
        return "-"
    return f"{fmt_duration(stats.mean)} / {fmt_duration(stats.median)} / {fmt_duration(stats.p90)} (n={stats.count})"


def fmt_target(target: timedelta, *, long: bool = False) -> str:
    minutes = target.total_seconds() / 60
    if minutes < 60 or minutes % 60:
        unit = "minutes" if long else "min"
        return f"<{minutes:g} {unit}"
    hours = minutes / 60
    return f"<{hours:g} hour" + ("" if hours == 1 else "s")


def fmt_share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def fmt_money(value: float) -> str:
    return f"${value:,.2f}" if value % 1 else f"${value:,.0f}"


def fmt_trend(current: int, previous: int) -> str:
    if current == previous:
        return "→ 0" if current else "-"
    sign = "↑ +" if current > previous else "↓ −"
    return f"{sign}{abs(current - previous)}"


def fmt_when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def markdown_text(text: str | None) -> str:
    """Slack mrkdwn as stored, turned into Markdown: links become links, escapes are undone.
    Mentions stay `<@U…>` here; `with_names` prints the names once the document is whole."""
    if not text:
        return ""
    text = _SLACK_LINK.sub(r"[\2](\1)", text)
    text = _SLACK_BARE_LINK.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def with_names(session: Session, markdown: str) -> str:
    """Every `<@U…>` in a finished document as the person's name when `person` knows it, else
    as it was (the id, which a reader can still look up in Slack)."""
    ids = {match.group(1) for match in _MENTION.finditer(markdown)}
    if not ids:
        return markdown
    known = {user_id: _MARKDOWN_PUNCTUATION.sub(r"\\\1", name) for user_id, name in people.names(session, ids).items()}
    return _MENTION.sub(lambda m: known.get(m.group(1)) or m.group(0), markdown)


def bullets(text: str | None, empty: str) -> list[str]:
    lines = [line.strip() for line in markdown_text(text).splitlines() if line.strip()]
    return [f"- {line}" for line in lines] or [f"- {empty}"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def numbered(items: Sequence[str], empty: str, *, slots: int = 3) -> list[str]:
    if not items:
        return [f"1. {empty}", *(f"{n}. -" for n in range(2, slots + 1))]
    padded = [*items, *["-"] * max(0, slots - len(items))]
    return [f"{n}. {item}" for n, item in enumerate(padded, start=1)]
