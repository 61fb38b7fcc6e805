"""The tracker's "Notification Channels": Slack, e-mail, the page webhook and the status page, as configured."""

from __future__ import annotations

import re

from pydantic import SecretStr

from bot.config_checks import URL_SETTINGS, url_host
from bot.settings import Settings


def _channel(name: str) -> str:
    # A channel id cannot be shown as #name without asking Slack; show it as Slack would link it.
    return f"<#{name}>" if re.fullmatch(r"[CG][A-Z0-9]{6,}", name) else f"#{name.lstrip('#')}"


def _host(settings: Settings, name: str) -> str | None:
    # Hosts only: SMTP_URL may carry a password and the webhook URL a token.
    value = getattr(settings, name)
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return url_host(text, URL_SETTINGS[name][0]) if text else None


def channels_section(settings: Settings) -> list[str]:
    smtp = _host(settings, "smtp_url")
    if smtp:
        sender = f", from {settings.email_from}" if settings.email_from else ""
        email = f"✅ On: pages and incident e-mails to on-call people go out through {smtp}{sender}"
    else:
        email = "⬜ Off (set `SMTP_URL` to e-mail pages and incidents)"
    webhook = _host(settings, "page_webhook_url")
    if webhook:
        signed = ", signed" if settings.page_webhook_secret is not None else ", unsigned (no `PAGE_WEBHOOK_SECRET`)"
        relay = f"✅ On: every page is sent as JSON to {webhook}{signed}, for an SMS or voice relay"
    else:
        relay = "⬜ Off (set `PAGE_WEBHOOK_URL` to relay pages to SMS or voice)"
    if settings.status_page:
        where = settings.status_page_url or "`/status` on the bot's port (`STATUS_PAGE_URL` not set)"
        status_page = f"✅ On: *{settings.status_page_title}* at {where}"
    else:
        status_page = "⬜ Off (set `STATUS_PAGE=true` to serve the public status page)"
    return [
        "## 🔔 Notification Channels",
        "",
        "### Incident Alerts",
        f"- **Slack:** {_channel(settings.alert_channel)} (escalations and Alertmanager-declared incidents)",
        f"- **Email:** {email}",
        f"- **SMS:** {relay}",
        "",
        "### Incident Updates",
        f"- **Slack:** {_channel(settings.incident_channel)} (incident cards, thread timelines and digests)",
        f"- **Status Page:** {status_page}",
    ]
