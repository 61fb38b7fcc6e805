"""The digest's chart: incidents per period by severity (stacked bars) and MTTR per period (line), as PNG.

This is the bot's half (the points from the metrics, and the child process that draws them);
the drawing is bot/reports/chart_draw.py, which imports nothing of the bot.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Sequence

from bot.reports.chart_draw import ChartPoint
from bot.reports.metrics import PeriodSummary
from storage.models import SEVERITIES

CHILD_TIMEOUT = 60  # seconds; drawing takes well under one
UNITS = {"weekly": "week", "monthly": "month", "quarterly": "quarter"}
DRAWN_KEPT = 4  # pictures kept by their request (_drawn)


def points_from(summaries: Sequence[PeriodSummary]) -> list[ChartPoint]:
    return [
        ChartPoint(
            label=summary.period.label,
            counts={severity: summary.severity(severity).count for severity in SEVERITIES},
            mttr_seconds=summary.mttr_mean,
        )
        for summary in summaries
    ]


class ChartError(RuntimeError):
    """The chart could not be drawn; the digest's outbox row is retried later."""


def render_png(points: Sequence[ChartPoint], *, title: str, unit: str = "week", dpi: int = 100) -> bytes:
    """The chart as PNG bytes, drawn in a short-lived child process.

    matplotlib and numpy add some 60 MB to a process that imports them, and the bot only needs them
    once a week; a child gives that memory back as soon as the picture is drawn.
    """
    request = json.dumps(
        {
            "points": [{"label": p.label, "counts": dict(p.counts), "mttr_seconds": p.mttr_seconds} for p in points],
            "title": title,
            "unit": unit,
            "dpi": dpi,
        },
        sort_keys=True,
    )
    return _drawn(request)


@functools.lru_cache(maxsize=DRAWN_KEPT)
def _drawn(request: str) -> bytes:
    # The last few charts, by their request: a retried upload (a 500, a restart of the sender)
    # sends the picture it drew rather than starting matplotlib again for the same bytes. A
    # failure raises, and lru_cache keeps nothing for it.
    return _draw_in_a_child(request)


def _draw_in_a_child(request: str) -> bytes:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot.reports.chart_draw"],
            input=request.encode(),
            capture_output=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ChartError(f"chart process failed: {type(exc).__name__}") from None
    if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ChartError(f"chart process exited {done.returncode}: {reason[0]}")
    return done.stdout
