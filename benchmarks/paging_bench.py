"""The paging sweep with 10,000 open pages: one pass every second of a steady state; the median pass.

    python benchmarks/paging_bench.py [--pages 10000] [--passes 30] [--database-url URL]

Pages started over the last half hour follow a three-step policy (PT0M, PT10M, PT20M; a schedule,
a person, a user group); the steps already due are claimed before timing, as a running bot
would have. Each timed pass advances the clock one second: the handful of steps falling due in
that second are claimed and queued (DMs and mentions to the outbox), the rest is one range scan
on `page.next_step_at`. The aim is under 50 ms per pass (median). SQLite in a temporary file by
default; `--database-url` for PostgreSQL (an empty database: it is migrated and filled).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bot.oncall import paging
from bot.oncall.config import parse_oncall
from storage import db
from storage.models import Incident, Status
from storage.oncall import Page

CONFIG = parse_oncall({
    "schedules": {"primary": {"timezone": "Europe/Berlin", "rotation": "weekly", "handoff": "mon 09:00",
                              "start": "2026-01-05", "members": ["U01ALICE", "U02BOB", "U03CAROL"]}},
    "policies": {"default": {"steps": [
        {"after": "PT0M", "notify": ["schedule:primary"]},
        {"after": "PT10M", "notify": ["U0LEAD"]},
        {"after": "PT20M", "notify": ["S0SRE"]},
    ]}},
    "routes": [{"match": {"severity": ["P0"]}, "policy": "default"}],
})
BASE = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SPREAD = timedelta(minutes=30)


def fill(engine: sa.Engine, pages: int) -> None:
    incidents: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for i in range(pages):
        started = BASE - SPREAD * (i / pages)
        incident: dict[str, Any] = {column.name: None for column in Incident.__table__.columns}  # type: ignore[attr-defined]
        incident.update(
            id=f"INC-BENCH-P{i:07d}", title=f"paging benchmark {i}", severity="P0",
            status=Status.INVESTIGATING.value, source="slack", reopened_count=0, started_at=started,
            declared_at=started, last_activity_at=started, channel_id="C0BENCH", card_ts=f"{started.timestamp():.6f}",
        )
        incidents.append(incident)
        rows.append({"incident_id": incident["id"], "spell": 1, "policy": "default", "started_at": started,
                     "next_step_at": started})
    with engine.begin() as connection:
        connection.execute(sa.insert(Incident), incidents)
        connection.execute(sa.insert(Page), rows)
    # The steady state: every step due before BASE claimed already (in chunks, as passes would).
    sessions = db.session_factory(engine)
    while paging.sweep(sessions, CONFIG, now=BASE, worker="warm-up", limit=2000).queued:
        pass
    with engine.begin() as connection:
        left = connection.execute(sa.select(sa.func.count()).select_from(Page).where(Page.next_step_at <= BASE))
        assert left.scalar_one() == 0


def run(url: str, *, pages: int, passes: int) -> dict[str, float]:
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    started = time.perf_counter()
    fill(engine, pages)
    fill_s = time.perf_counter() - started
    sessions = db.session_factory(engine)
    samples: list[float] = []
    queued = 0
    for k in range(1, passes + 1):
        t0 = time.perf_counter()
        swept = paging.sweep(sessions, CONFIG, now=BASE + timedelta(seconds=k), worker="bench")
        samples.append(time.perf_counter() - t0)
        queued += swept.queued
    engine.dispose()
    return {"median_ms": statistics.median(samples) * 1000, "p90_ms": statistics.quantiles(samples, n=10)[-1] * 1000,
            "queued_per_pass": queued / passes, "fill_s": fill_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite:///{directory}/paging.db"
        figures = run(url, pages=args.pages, passes=args.passes)
    print(f"paging sweep, {args.pages} open pages ({url.split(':')[0]}): median {figures['median_ms']:.1f} ms "
          f"(p90 {figures['p90_ms']:.1f} ms, aim < 50 ms), {figures['queued_per_pass']:.1f} notices queued per "
          f"pass; set-up {figures['fill_s']:.1f} s")


if __name__ == "__main__":
    main()
