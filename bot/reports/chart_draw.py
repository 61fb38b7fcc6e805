"""Drawing the digest's chart: what the short-lived chart process runs (`python -m bot.reports.chart_draw`).

It imports nothing of the bot, only the standard library and (when it draws) matplotlib: the
process starts for every chart, and the bot's models would add some 0.8 s of imports (SQLAlchemy,
SQLModel) to each, which it never uses. The caller's half is bot/reports/chart.py.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The card's severity colours (red, orange, yellow, grey), so the chart reads like the channel.
SEVERITY_COLOURS = {"P0": "#d62728", "P1": "#ff7f0e", "P2": "#e6c229", "P3": "#9e9e9e"}
SEVERITIES = tuple(SEVERITY_COLOURS)  # storage.models.SEVERITIES, in order (tests/reports/test_chart.py)
MTTR_COLOUR = "#1f4e79"


@dataclass(frozen=True)
class ChartPoint:
    """One bar of the chart: a period's incidents per severity and its mean MTTR (None: nothing resolved)."""

    label: str
    counts: Mapping[str, int] = field(default_factory=dict)
    mttr_seconds: float | None = None


def draw_png(points: Sequence[ChartPoint], *, title: str, unit: str = "week", dpi: int = 100) -> bytes:
    """Draw the chart in this process (the child's half of render_png).

    The object-oriented API with the Agg canvas (no pyplot) keeps no global figure state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4.8), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    bars = figure.add_subplot()
    positions = list(range(len(points)))
    bottom = [0] * len(points)
    for severity in SEVERITIES:
        heights = [point.counts.get(severity, 0) for point in points]
        bars.bar(positions, heights, bottom=bottom, label=severity, color=SEVERITY_COLOURS[severity], width=0.7)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    bars.set_ylabel(f"Incidents per {unit}")
    bars.set_ylim(0, max([*bottom, 1]) * 1.25)  # headroom for the legend
    locator = bars.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # a linear axis's default, AutoLocator: whole numbers only
        locator.set_params(integer=True)
    bars.set_xticks(positions, [_short(point.label) for point in points], rotation=45, ha="right")
    bars.set_title(title)

    line = bars.twinx()
    minutes = [point.mttr_seconds / 60 if point.mttr_seconds is not None else float("nan") for point in points]
    # NaN leaves a gap where nothing was resolved, instead of drawing a misleading zero.
    line.plot(positions, minutes, color=MTTR_COLOUR, marker="o", linewidth=2, label="MTTR (mean, min)")
    line.set_ylabel("MTTR, mean (minutes)")
    known = [m for m in minutes if m == m]
    line.set_ylim(0, max([*known, 1.0]) * 1.15)

    handles: list[Any] = []
    labels: list[str] = []
    for axes in (bars, line):
        h, lab = axes.get_legend_handles_labels()
        handles += h
        labels += lab
    bars.legend(handles, labels, loc="upper left", ncols=5, fontsize="small", frameon=False)
    if not any(bottom):
        bars.text(0.5, 0.5, "No incidents in this range", transform=bars.transAxes, ha="center", va="center")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _short(label: str) -> str:
    # "2026-W47" -> "W47 '26" keeps twelve labels legible; months and quarters are short already.
    if "-W" in label:
        year, week = label.split("-W")
        return f"W{week} '{year[-2:]}"
    return label


def _main() -> None:
    request = json.load(sys.stdin)
    points = [ChartPoint(p["label"], p["counts"], p["mttr_seconds"]) for p in request["points"]]
    sys.stdout.buffer.write(draw_png(points, title=request["title"], unit=request["unit"], dpi=request["dpi"]))


if __name__ == "__main__":
    _main()
