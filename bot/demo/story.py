"""One synthetic incident's thread, in causal order: the alert or the declaration, triage, the
acknowledgement, escalations, the fix, the recovery and the resolution (and a reopening)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.demo.vocabulary import (
    CONFIRMED_LINE,
    FOLLOW_UP_LINE,
    INVESTIGATION_LINES,
    RECOVERY_LINES,
    REMEDIES,
    TRIAGE_LINES,
)
from storage.models import EntryKind, SystemEvent

TARGET_NAMES = {"response": "response", "resolution": "resolution"}
# Enum values looked up once: a seed writes a million entries.
_MESSAGE, _SYSTEM = EntryKind.MESSAGE.value, EntryKind.SYSTEM.value


def thread(
    rng: random.Random,
    row: dict[str, Any],
    *,
    remedy: str,
    responders: Sequence[str],
    escalations: Sequence[dict[str, Any]],
    reopen: dict[str, Any] | None,
    targets: dict[str, timedelta],
    now: datetime,
) -> list[dict[str, Any]]:
    """System entries and chat replies, 5 to 20 of them, each phase's lines inside that phase."""
    incident_id, service = row["id"], row["affected"]
    declared: datetime = row["declared_at"]
    acknowledged: datetime | None = row["acknowledged_at"]
    resolved: datetime | None = row["resolved_at"]
    commander = row["commander"]
    first_resolution: datetime | None = reopen["resolved_before"] if reopen else resolved
    first_fix: datetime | None = row["mitigated_at"]
    if first_fix is None and first_resolution is not None and acknowledged is not None:
        first_fix = acknowledged + (first_resolution - acknowledged) / 2  # fixed outright, never marked mitigated
    entries = _system_entries(row, escalations, reopen, targets)
    diagnosis, action, done = (line.format(service=service) for line in REMEDIES[remedy])
    # Optional lines fill what the 20 entries leave after the system entries and the story's own
    # lines (at most 11 and 6), so no phase ever loses its scripted lines.
    spare = max(20 - len(entries) - 6, 0)

    def extra(lines: Sequence[str], most: int) -> list[str]:
        nonlocal spare
        chosen = rng.sample(lines, k=min(rng.randint(0, most), spare))
        spare -= len(chosen)
        return [line.format(service=service) for line in chosen]

    # (window start, window end, lines in the order they are said); a phase not reached yet is left out.
    phases: list[tuple[datetime, datetime, list[str]]] = []
    triage = [rng.choice(TRIAGE_LINES).format(service=service)]
    triage += [line for line in extra(TRIAGE_LINES, 1) if line not in triage]
    phases.append((declared, acknowledged or now, triage))
    if acknowledged is not None:
        looking = extra(INVESTIGATION_LINES, 1)
        phases.append((acknowledged, first_fix or now, [*looking, diagnosis, *([action] if first_fix else [])]))
    if first_fix is not None:
        closing = [CONFIRMED_LINE, FOLLOW_UP_LINE] if resolved else []
        phases.append((first_fix, first_resolution or now, [done, *extra(RECOVERY_LINES, 1), *closing]))
    used_ts: set[str] = set()
    for start, end, lines in phases:
        for when, text in zip(_moments(rng, start, end, len(lines)), lines, strict=True):
            entries.append(_reply(rng, incident_id, when, text, rng.choice(responders), used_ts, key=text == action))
    missing = 5 - len(entries)
    if missing > 0:  # a thread that has only begun still has a few replies, all of them triage
        for when in _moments(rng, declared, acknowledged or now, missing):
            text = rng.choice(TRIAGE_LINES).format(service=service)
            entries.append(_reply(rng, incident_id, when, text, commander or responders[0], used_ts))
    return entries


def _moments(rng: random.Random, start: datetime, end: datetime, count: int) -> list[datetime]:
    """`count` increasing instants strictly inside (start, end), whole milliseconds apart at least."""
    span = max((end - start).total_seconds(), 0.01)
    fractions = sorted(rng.uniform(0.05, 0.95) for _ in range(count))
    return [start + timedelta(seconds=round(f * span, 3)) for f in fractions]


def _reply(
    rng: random.Random,
    incident_id: str,
    when: datetime,
    text: str,
    author: str,
    used_ts: set[str],
    *,
    key: bool = False,
) -> dict[str, Any]:
    ts = f"{when.timestamp():.6f}"
    while ts in used_ts:
        when += timedelta(microseconds=1)
        ts = f"{when.timestamp():.6f}"
    used_ts.add(ts)
    roll = rng.random()
    files = []
    if roll < 0.05:
        files = [{"name": "graph.png", "permalink": f"https://example.slack.com/files/{incident_id}/{ts}"}]
    return {
        "incident_id": incident_id,
        "kind": _MESSAGE,
        "event": None,
        "author": author,
        "text": text,
        "slack_ts": ts,
        "edited_ts": f"{when.timestamp() + 60:.6f}" if 0.05 <= roll < 0.10 else None,
        "files": files,
        "data": {},
        "deleted": 0.10 <= roll < 0.13,
        "key_event": key or 0.13 <= roll < 0.18,
        "occurred_at": when,
    }


def _system_entries(
    row: dict[str, Any],
    escalations: Sequence[dict[str, Any]],
    reopen: dict[str, Any] | None,
    targets: dict[str, timedelta],
) -> list[dict[str, Any]]:
    incident_id, severity, commander = row["id"], row["severity"], row["commander"]
    declared = row["declared_at"]
    entries = []
    if row["alert_name"]:
        alert = row["alert_name"]
        entries.append(system(incident_id, SystemEvent.ALERT_FIRED, declared, None, f"Alert firing: `{alert}`"))
        entries.append(
            system(incident_id, SystemEvent.DECLARED, declared, None, f"Declared by Alertmanager as {severity}")
        )
    else:
        who = row["declared_by"]
        entries.append(system(incident_id, SystemEvent.DECLARED, declared, who, f"Declared by <@{who}> as {severity}"))
    if row["acknowledged_at"]:
        text = f"Acknowledged by <@{commander}>; <@{commander}> is now the incident commander."
        entries.append(system(incident_id, SystemEvent.ACKNOWLEDGED, row["acknowledged_at"], commander, text))
    for escalation in escalations:
        kind = escalation["kind"]
        unmet = "no acknowledgement yet" if kind == "response" else "not resolved yet"
        missed = int((escalation["fired_at"] - escalation["due_at"]).total_seconds())
        text = (
            f":rotating_light: *Escalated*: {incident_id} [{severity}] {row['title']}: the {TARGET_NAMES[kind]} "
            f"target ({_minutes(targets[kind])}) lapsed; missed by {missed}s, {unmet}."
        )
        data = {"kind": kind, "level": escalation["level"], "missed_by": missed}
        entries.append(system(incident_id, SystemEvent.ESCALATED, escalation["fired_at"], None, text, data))
    if row["mitigated_at"]:
        text = f"Status changed to Mitigated by <@{commander}>"
        entries.append(system(incident_id, SystemEvent.STATUS_CHANGED, row["mitigated_at"], commander, text))
    if row["alert_name"] and (row["mitigated_at"] or row["resolved_at"]):
        ended = row["mitigated_at"] or row["resolved_at"]
        entries.append(system(incident_id, SystemEvent.ALERT_RESOLVED, ended, None, "The alerts resolved"))
    if reopen:
        first, again = reopen["resolved_before"], reopen["reopened_at"]
        entries.append(system(incident_id, SystemEvent.RESOLVED, first, commander, f"Resolved by <@{commander}>"))
        text = f"Reopened by <@{reopen['reopened_by']}>"
        data = {"seq": 1, "resolved_before": first.isoformat()}
        entries.append(system(incident_id, SystemEvent.REOPENED, again, reopen["reopened_by"], text, data))
        if reopen["mitigated_at"] and reopen["mitigated_at"] < row["resolved_at"]:
            text = f"Status changed to Mitigated by <@{commander}>"
            entries.append(system(incident_id, SystemEvent.STATUS_CHANGED, reopen["mitigated_at"], commander, text))
    if row["resolved_at"]:
        text = f"Resolved by <@{commander}>"
        entries.append(system(incident_id, SystemEvent.RESOLVED, row["resolved_at"], commander, text))
    return entries


def _minutes(target: timedelta) -> str:
    minutes = int(target.total_seconds() // 60)
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h"


def system(
    incident_id: str,
    event: SystemEvent,
    when: datetime,
    author: str | None,
    text: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": _SYSTEM,
        "event": event.value,
        "author": author,
        "text": text,
        "slack_ts": None,
        "edited_ts": None,
        "files": [],
        "data": data or {},
        "deleted": False,
        "key_event": False,
        "occurred_at": when,
    }
