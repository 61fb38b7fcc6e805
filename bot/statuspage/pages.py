"""The status page's HTML: Jinja2 templates (always autoescaped), no script, no other host; and its headers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from bot.statuspage.links import link
from bot.statuspage.model import LABELS, IncidentView
from bot.statuspage.summary import RECENT_DAYS, ComponentSummary, Summary
from bot.statuspage.uptime import FORMULA, DayUptime

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Not strftime("%b"): it follows the process locale, and is slow enough to show in 720 bars.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def security_headers() -> list[tuple[str, str]]:
    """Headers for every status page response: nothing may run, load from elsewhere, or frame us."""
    return [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    ]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # always: every title and message is someone's free text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


ENV = _environment()


def percent(value: float) -> str:
    # Rounded down, so 99.996 % of a day with an outage never shows as a clean 100.00 %.
    return f"{math.floor(value * 10000) / 100:.2f}%"


def _duration(minutes: float) -> str:
    minutes = round(minutes)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


@dataclass(frozen=True)
class View:
    """What the templates may call: links, dates in the page's zone, labels."""

    summary: Summary
    base: str

    def url(self, path: str) -> str:
        return link(self.base, path)

    def when(self, value: datetime) -> str:
        local = value.astimezone(self.summary.config.zone)
        return f"{local.day} {local:%b %Y, %H:%M} {local.tzname()}"

    def iso(self, value: datetime) -> str:
        return value.astimezone(self.summary.config.zone).isoformat(timespec="minutes")

    def day(self, value: date) -> str:
        return f"{value.day} {MONTHS[value.month - 1]} {value.year}"

    def label(self, status: str) -> str:
        return LABELS.get(status, status.replace("_", " ").capitalize())

    def percent(self, value: float) -> str:
        return percent(value)

    def names(self, keys: tuple[str, ...]) -> str:
        return ", ".join(self.summary.component_name(k) for k in keys)

    def bar_text(self, day: DayUptime) -> str:
        parts = [f"{self.day(day.day)}: {percent(day.uptime)} uptime"]
        details = [
            f"{label} {_duration(minutes)}"
            for label, minutes in (
                ("major outage", day.major),
                ("partial outage", day.partial),
                ("degraded performance", day.degraded),
                ("maintenance", day.maintenance),
            )
            if minutes >= 0.5
        ]
        parts.append(", ".join(details) if details else "no incidents")
        titles = [i.title for n in day.incidents if (i := self.summary.incident(n)) is not None]
        if titles:
            parts.append("incidents: " + "; ".join(titles))
        return " — ".join(parts)

    def shown(self, component: ComponentSummary) -> bool:
        return not (component.config.only_show_if_degraded and component.status == "operational")

    def past_days(self) -> list[tuple[date, list[IncidentView]]]:
        zone = self.summary.config.zone
        today = self.summary.now.astimezone(zone).date()
        days = [today - timedelta(days=n) for n in range(RECENT_DAYS)]
        by_day: dict[date, list[IncidentView]] = {d: [] for d in days}
        for incident in self.summary.snapshot.incidents:
            started = incident.created_at.astimezone(zone).date()
            if started in by_day:
                by_day[started].append(incident)
        return [(d, by_day[d]) for d in days]

    def months(self) -> list[tuple[str, list[IncidentView]]]:
        zone = self.summary.config.zone
        groups: dict[tuple[int, int], list[IncidentView]] = {}
        for incident in self.summary.snapshot.incidents:
            local = incident.created_at.astimezone(zone)
            groups.setdefault((local.year, local.month), []).append(incident)
        return [(f"{date(y, m, 1):%B %Y}", items) for (y, m), items in sorted(groups.items(), reverse=True)]


def _render(name: str, summary: Summary, base: str, **context: Any) -> str:
    return ENV.get_template(name).render(
        v=View(summary, base), s=summary, formula=FORMULA, page_name=summary.info.name, **context
    )


def render_status(summary: Summary, *, base: str = "/") -> str:
    return _render("status.html", summary, base, current="status")


def render_history(summary: Summary, *, base: str = "/") -> str:
    return _render("history.html", summary, base, current="history")


def render_incident(summary: Summary, public_id: int, *, base: str = "/") -> str | None:
    incident = summary.incident(public_id)
    if incident is None:
        return None
    return _render("incident.html", summary, base, current="incident", incident=incident)


def render_not_found(summary: Summary, *, base: str = "/") -> str:
    return _render("not_found.html", summary, base, current="none")
