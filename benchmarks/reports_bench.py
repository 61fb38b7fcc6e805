"""Reports on a long synthetic history: in-process render time, and the CLI's wall time around it.

The history comes from bot.seed with a fixed seed. It is kept between runs (a SQLite file under
benchmarks/results/, a PostgreSQL database ib_bench) while its incident count matches and its
newest incident is less than a week old; the reports are about the last week and month, so an
older history would make them cover empty periods.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import databases
import sqlalchemy as sa
from procs import ROOT, child_env

from bot.demo.seed import seed
from bot.reports.report import render_report
from bot.reports.tracker import render_tracker
from bot.settings import Settings
from storage import db
from storage.models import Incident, TimelineEntry, utcnow

SEED = 20240601
REPEATS = 3
FRESH_FOR = timedelta(days=7)


def database_name(incidents: int) -> str:
    return "ib_bench" if incidents == 100_000 else f"ib_bench_{incidents}"


def prepare(backend: str, incidents: int) -> tuple[str, dict[str, Any]]:
    name = database_name(incidents)
    url = databases.create(backend, name, fresh=False)
    engine = db.create_db_engine(url)
    info: dict[str, Any] = {"database": name if backend == "postgresql" else f"results/{name}.db"}
    try:
        db.upgrade(engine)
        with engine.connect() as connection:
            have = connection.execute(sa.select(sa.func.count()).select_from(Incident)).scalar_one()
            newest = _as_utc(connection.execute(sa.text("SELECT max(declared_at) FROM incident")).scalar_one())
        fresh = newest is not None and utcnow() - newest < FRESH_FOR
        if have == incidents and fresh:
            info["reused"] = True
        else:
            started = time.perf_counter()
            seed(db.session_factory(engine), incidents=incidents, seed=SEED, now=utcnow(), force=True)
            info["seeded_s"] = round(time.perf_counter() - started, 1)
        with engine.connect() as connection:
            info["incidents"] = connection.execute(sa.select(sa.func.count()).select_from(Incident)).scalar_one()
            info["timeline_entries"] = connection.execute(
                sa.select(sa.func.count()).select_from(TimelineEntry)
            ).scalar_one()
    finally:
        engine.dispose()
    return url, info


def _as_utc(value: datetime | str | None) -> datetime | None:
    """A raw MAX() of a timestamp column: a string on SQLite, an aware datetime on PostgreSQL."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _in_turns(jobs: dict[str, Callable[[], str]]) -> dict[str, Any]:
    """Each job once untimed (the first call: cold caches), then REPEATS timed rounds in turns."""
    result: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for name, work in jobs.items():
        started = time.perf_counter()
        result[f"{name}_chars"] = len(work())
        result[f"{name}_first_ms"] = round((time.perf_counter() - started) * 1000, 1)
    for _ in range(REPEATS):
        for name, work in jobs.items():
            started = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        result[f"{name}_ms"] = round(statistics.median(values) * 1000, 1)
    return result


def _walls(commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, float]:
    """Median wall time (ms) of each command, run in turns (a, b, c, a, b, c, ...) to share the noise."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(REPEATS):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
            times[name].append(time.perf_counter() - started)
    return {name: round(statistics.median(values) * 1000, 1) for name, values in times.items()}


def run(backend: str, *, incidents: int) -> dict[str, Any]:
    url, info = prepare(backend, incidents)
    engine = db.create_db_engine(url)
    sessions = db.session_factory(engine)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    now = utcnow()
    result: dict[str, Any] = dict(info)

    def rendered(render: Callable[[Any], str]) -> Callable[[], str]:
        def work() -> str:
            with db.unit_of_work(sessions) as session:
                return render(session)

        return work

    try:
        jobs = {
            "weekly": rendered(lambda s: render_report(s, settings, "weekly", now)),
            "monthly": rendered(lambda s: render_report(s, settings, "monthly", now)),
            "tracker": rendered(lambda s: render_tracker(s, settings, now)),
        }
        result.update(_in_turns(jobs))
    finally:
        engine.dispose()

    env = child_env(DATABASE_URL=url, LOG_LEVEL="WARNING")
    python = sys.executable
    walls = _walls(
        {
            "cli_import_ms": [python, "-c", "import bot.reports.report, bot.reports.tracker"],
            "cli_db_upgrade_ms": [python, "-m", "bot", "db", "upgrade"],
            "cli_report_weekly_ms": [python, "-m", "bot", "report", "weekly"],
            "cli_tracker_ms": [python, "-m", "bot", "tracker"],
        },
        env,
    )
    result.update(walls)
    result["cli_weekly_beyond_startup_ms"] = round(result["cli_report_weekly_ms"] - result["cli_import_ms"], 1)
    result["cli_tracker_beyond_startup_ms"] = round(result["cli_tracker_ms"] - result["cli_import_ms"], 1)
    return result
