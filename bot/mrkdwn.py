"""Slack mrkdwn: escaping user text so it renders as typed and can never ping anyone."""

from __future__ import annotations

from datetime import UTC, datetime


def escape(text: str | None) -> str:
    """Escape &, < and > as Slack requires: `<!channel>` typed in a title stays text."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def user(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "nobody"


def mention(contact: str) -> str:
    """`<@U…>` for users, `<!subteam^S…>` for user groups (ESCALATION_CONTACTS)."""
    return f"<!subteam^{contact}>" if contact.startswith("S") else f"<@{contact}>"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def slack_time(when: datetime, fallback_format: str = "%Y-%m-%d %H:%M UTC") -> str:
    """A date token Slack shows in each reader's time zone, with a UTC fallback."""
    epoch = int(when.timestamp())
    fallback = when.astimezone(UTC).strftime(fallback_format)
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def ts_to_datetime(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)


def thread_link(channel_id: str, ts: str) -> str:
    # Slack redirects /archives links to the workspace; no extra API call needed.
    return f"https://slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
