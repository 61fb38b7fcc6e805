"""Who is on call: 50 schedules with a year of overrides each, one look-up per schedule; the median.

    python benchmarks/oncall_bench.py [--schedules 50] [--runs 500]

The overrides are indexed once (as the bot does after loading them); each run then asks every
schedule who is on call at one random instant of the year. The aim is under 5 ms for all 50.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.oncall.config import Schedule
from bot.oncall.schedules import Override, OverrideIndex, on_call_at

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]
ROTATIONS = [("weekly", "mon 09:00"), ("daily", "09:00"), ("P3D", "10:00"), ("PT12H", "08:00")]
YEAR = datetime(2026, 1, 1, tzinfo=UTC)


def build(count: int, rng: random.Random) -> list[tuple[Schedule, OverrideIndex, int]]:
    setups = []
    for i in range(count):
        rotation, handoff = ROTATIONS[i % len(ROTATIONS)]
        members = [f"U{i:02d}M{j}" for j in range(rng.randint(3, 8))]
        schedule = Schedule.model_validate({
            "timezone": ZONES[i % len(ZONES)], "rotation": rotation, "handoff": handoff,
            "start": date(2025, 6, 2), "members": members,
        })
        overrides = []
        # A year of cover: two or three a week, some overlapping, from a few hours to a few days.
        for k in range(rng.randint(100, 160)):
            start = YEAR + timedelta(minutes=rng.randrange(365 * 24 * 60))
            overrides.append(Override(
                user_id=rng.choice(members), starts_at=start, ends_at=start + timedelta(hours=rng.randint(2, 96)),
                created_at=YEAR - timedelta(days=30) + timedelta(minutes=k), id=k,
            ))
        started = time.perf_counter()
        index = OverrideIndex(overrides)
        setups.append((schedule, index, int((time.perf_counter() - started) * 1e6)))
    return setups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=50)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(13)
    setups = build(args.schedules, rng)
    samples = []
    for _ in range(args.runs):
        t = YEAR + timedelta(seconds=rng.randrange(365 * 86400))
        started = time.perf_counter()
        for schedule, index, _build in setups:
            on_call_at(schedule, index, t)
        samples.append(time.perf_counter() - started)
    median_ms = statistics.median(samples) * 1000
    build_ms = sum(b for *_, b in setups) / 1000
    print(f"who is on call, {args.schedules} schedules x 1 year of overrides: median {median_ms:.3f} ms "
          f"(p90 {statistics.quantiles(samples, n=10)[-1] * 1000:.3f} ms, aim < 5 ms); "
          f"indexing all overrides once: {build_ms:.1f} ms")


if __name__ == "__main__":
    main()
