"""Page e-mails: composed with the standard library, sent through SMTP_URL with TLS before any password.

`smtp://[user:pass@]host[:port]` upgrades with STARTTLS whenever the server offers it and
refuses to send credentials over a connection that is not encrypted; `smtps://host[:465]`
speaks TLS from the first byte. Certificates are verified (the default context); tests pass
their own context that trusts a throw-away certificate.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import unquote, urlsplit


class EmailError(RuntimeError):
    """The e-mail could not be sent; the message is safe to log (it never holds the password)."""


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str  # smtp | smtps
    host: str
    port: int
    username: str | None
    password: str | None


@dataclass(frozen=True)
class PageEmail:
    """What a page e-mail says."""

    incident_id: str
    title: str
    severity: str
    status: str
    thread_url: str
    acknowledge_url: str | None = None
    step: str | None = None  # e.g. "step 2 of 3", for the reader


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise EmailError("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise EmailError("SMTP_URL has no host")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise EmailError("SMTP_URL has an invalid port") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return SmtpTarget(parts.scheme, parts.hostname, port, username, password)


def notice_key(incident_id: str, notice_id: int) -> str:
    """The one name of a page notice outside the bot: the e-mail's Message-ID, the webhook's
    Idempotency-Key. Stable across attempts, so a mail system or relay can drop a repeat."""
    return f"{incident_id}.page-{notice_id}"


def compose_page_email(
    page: PageEmail, *, to: list[str], sender: str, now: datetime, domain: str | None = None,
    notice_id: int | None = None,
) -> EmailMessage:
    """Plain text and an HTML alternative; the subject names the incident; nothing secret in headers.

    With `notice_id` the Message-ID is that notice's own (`<INC-….page-N@domain>`), the same on
    every attempt: a send repeated after a crash (sent, not yet recorded) carries the same id,
    which mail systems that deduplicate on Message-ID (Gmail, most list servers) deliver once.
    """
    message = EmailMessage()
    message["Subject"] = f"[{page.severity}] {page.incident_id}: {page.title}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now)
    host = domain or sender.rpartition("@")[2] or None
    if notice_id is not None:
        message["Message-ID"] = f"<{notice_key(page.incident_id, notice_id)}@{host or 'incident-bot'}>"
    else:
        message["Message-ID"] = make_msgid(idstring=page.incident_id, domain=host)
    # Replies and re-pages of one incident thread together in mail clients.
    message["X-Incident-Id"] = page.incident_id
    lines = [
        f"{page.incident_id} ({page.severity}, {page.status}): {page.title}",
        "",
        f"You are being paged{f' ({page.step})' if page.step else ''}.",
        f"Incident thread: {page.thread_url}",
    ]
    if page.acknowledge_url:
        lines.append(f"Acknowledge: {page.acknowledge_url}")
    message.set_content("\n".join(lines) + "\n")
    e = html.escape
    acknowledge = (
        f'<p><a href="{e(page.acknowledge_url, quote=True)}">Acknowledge</a></p>' if page.acknowledge_url else ""
    )
    message.add_alternative(
        "<html><body>"
        f"<p><strong>{e(page.incident_id)}</strong> ({e(page.severity)}, {e(page.status)}): {e(page.title)}</p>"
        f"<p>You are being paged{e(f' ({page.step})') if page.step else ''}.</p>"
        f'<p><a href="{e(page.thread_url, quote=True)}">Open the incident thread</a></p>'
        f"{acknowledge}"
        "</body></html>\n",
        subtype="html",
    )
    return message


def send_email(
    message: EmailMessage, *, smtp_url: str, tls_context: ssl.SSLContext | None = None, timeout: float = 15.0
) -> None:
    """Send through SMTP_URL; EmailError (never showing the password) when it cannot be sent safely."""
    target = parse_smtp_url(smtp_url)
    context = tls_context or ssl.create_default_context()
    try:
        if target.scheme == "smtps":
            with smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context) as client:
                _deliver(client, message, target, encrypted=True)
            return
        with smtplib.SMTP(target.host, target.port, timeout=timeout) as client:
            client.ehlo()
            encrypted = False
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()  # the capabilities before TLS are not to be trusted (RFC 3207)
                encrypted = True
            _deliver(client, message, target, encrypted=encrypted)
    except EmailError:
        raise
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailError(f"e-mail to {target.host}:{target.port} failed: {_reason(exc)}") from None


def _deliver(client: smtplib.SMTP, message: EmailMessage, target: SmtpTarget, *, encrypted: bool) -> None:
    if target.username is not None:
        if not encrypted:
            raise EmailError(
                f"SMTP_URL: {target.host}:{target.port} does not offer STARTTLS; refusing to send the password "
                "unencrypted (use smtps:// or a server with STARTTLS)"
            )
        client.login(target.username, target.password or "")
    refused = client.send_message(message)
    if refused:
        raise EmailError(f"the server refused {', '.join(sorted(refused))}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
