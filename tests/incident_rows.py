"""Hand-built incident rows for metric, report and digest tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from storage.db import SessionFactory, unit_of_work
from storage.models import Incident

_counter = iter(range(1, 100_000))


def incident(
    declared: datetime,
    *,
    severity: str = "P2",
    started: datetime | None = None,
    ack: timedelta | None = None,
    mitigated: timedelta | None = None,
    resolved: timedelta | None = None,
    **fields: Any,
) -> Incident:
    """An incident declared at `declared`; the offsets are from declaration, MTTR from `started`."""
    number = next(_counter)
    return Incident(
        id=fields.pop("id", f"INC-{declared:%Y-%m-%d}-{number:03d}"),
        title=fields.pop("title", "something broke"),
        severity=severity,
        status="Resolved" if resolved is not None else "Investigating",
        started_at=started or declared,
        declared_at=declared,
        acknowledged_at=declared + ack if ack is not None else None,
        mitigated_at=declared + mitigated if mitigated is not None else None,
        resolved_at=declared + resolved if resolved is not None else None,
        **fields,
    )


def store(sessions: SessionFactory, *rows: Any) -> None:
    with unit_of_work(sessions) as session:
        for row in rows:
            session.add(row)
            session.flush()
