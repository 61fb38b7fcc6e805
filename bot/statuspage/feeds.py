"""Atom and RSS 2.0 feeds of every public update, built with ElementTree (which escapes the text)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.etree import ElementTree as ET

from bot.statuspage.links import link
from bot.statuspage.model import LABELS, IncidentView, UpdateView
from bot.statuspage.summary import Summary

ATOM_NS = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry at all, even escaped: dropped rather than making the feed unreadable.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def rfc822(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


def _updates(summary: Summary) -> list[tuple[IncidentView, UpdateView]]:
    pairs = [(i, u) for i in summary.snapshot.incidents for u in i.updates]
    pairs.sort(key=lambda pair: (pair[1].created_at, pair[1].id), reverse=True)
    return pairs  # every one, as CONTRACT.md promises: public updates are a few a week


def _root(summary: Summary, base: str) -> str:
    """Feeds want absolute links: STATUS_PAGE_URL when set, else the base the site is served at."""
    return summary.info.url.rstrip("/") + "/" if summary.info.url else base


def _update_id(summary: Summary, update: UpdateView) -> str:
    # Stable and unique per page, whatever URL the page moves to.
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"incident-bot:{summary.info.page_id}:update:{update.id}"))


def _title(incident: IncidentView, update: UpdateView) -> str:
    return _text(f"{incident.title}: {LABELS.get(update.status, update.status)}")


def _components(summary: Summary, incident: IncidentView) -> list[str]:
    return [_text(summary.component_name(k)) for k in incident.components]


def atom(summary: Summary, *, base: str = "/") -> bytes:
    root = _root(summary, base)
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    ET.SubElement(feed, f"{{{ATOM_NS}}}id").text = "urn:uuid:" + str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"incident-bot:{summary.info.page_id}:feed")
    )
    ET.SubElement(feed, f"{{{ATOM_NS}}}title").text = _text(f"{summary.info.name}: incident history")
    ET.SubElement(feed, f"{{{ATOM_NS}}}updated").text = rfc3339(summary.snapshot.updated_at)
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", rel="alternate", type="text/html", href=link(root, "status"))
    ET.SubElement(
        feed, f"{{{ATOM_NS}}}link", rel="self", type="application/atom+xml", href=link(root, "status/history.atom")
    )
    author = ET.SubElement(feed, f"{{{ATOM_NS}}}author")
    ET.SubElement(author, f"{{{ATOM_NS}}}name").text = _text(summary.info.name)
    for incident, update in _updates(summary):
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        ET.SubElement(entry, f"{{{ATOM_NS}}}id").text = _update_id(summary, update)
        ET.SubElement(entry, f"{{{ATOM_NS}}}title").text = _title(incident, update)
        ET.SubElement(entry, f"{{{ATOM_NS}}}published").text = rfc3339(update.created_at)
        ET.SubElement(entry, f"{{{ATOM_NS}}}updated").text = rfc3339(update.created_at)
        ET.SubElement(
            entry,
            f"{{{ATOM_NS}}}link",
            rel="alternate",
            type="text/html",
            href=link(root, f"status/incidents/{incident.id}"),
        )
        for name in _components(summary, incident):
            ET.SubElement(entry, f"{{{ATOM_NS}}}category", term=name)
        ET.SubElement(entry, f"{{{ATOM_NS}}}content", type="text").text = _text(update.message)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))


def rss(summary: Summary, *, base: str = "/") -> bytes:
    root = _root(summary, base)
    document = ET.Element("rss", version="2.0")
    channel = ET.SubElement(document, "channel")
    ET.SubElement(channel, "title").text = _text(f"{summary.info.name}: incident history")
    ET.SubElement(channel, "link").text = link(root, "status")
    ET.SubElement(channel, "description").text = _text(f"Every public update on {summary.info.name}")
    ET.SubElement(channel, "lastBuildDate").text = rfc822(summary.snapshot.updated_at)
    for incident, update in _updates(summary):
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = _title(incident, update)
        ET.SubElement(item, "link").text = link(root, f"status/incidents/{incident.id}")
        ET.SubElement(item, "description").text = _text(update.message)
        ET.SubElement(item, "guid", isPermaLink="false").text = _update_id(summary, update)
        ET.SubElement(item, "pubDate").text = rfc822(update.created_at)
        for name in _components(summary, incident):
            ET.SubElement(item, "category").text = name
    return bytes(ET.tostring(document, encoding="utf-8", xml_declaration=True))
