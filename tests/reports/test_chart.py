"""The digest chart: a real PNG for an empty history and for a seeded one, on SQLite and PostgreSQL."""

from __future__ import annotations

import struct
import sys
import zlib
from datetime import UTC, datetime

import pytest

from bot.demo.seed import seed
from bot.reports import chart, digest
from bot.reports.periods import previous_period
from bot.settings import Settings
from storage.db import SessionFactory

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, when the weekly digest goes out


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a checked IHDR chunk: the bytes are a PNG, not just its magic."""
    assert data[:8] == PNG_MAGIC, data[:16]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + body) == crc
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    width, height = struct.unpack(">II", body[:8])
    return width, height


def chart_of(sessions: SessionFactory) -> tuple[list[chart.ChartPoint], bytes]:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    period = previous_period("weekly", NOW, "UTC")
    with sessions() as session:
        points = digest.chart_points(session, settings, period, NOW)
    return points, chart.render_png(points, title=digest.chart_title(period, points))


def test_empty_history_still_draws_twelve_weeks(sessions: SessionFactory) -> None:
    points, data = chart_of(sessions)
    assert [p.label for p in points][-1] == "2026-W47" and len(points) == 12
    assert all(sum(p.counts.values()) == 0 and p.mttr_seconds is None for p in points)
    width, height = png_size(data)
    assert (width, height) == (1000, 480)
    assert len(data) > 5_000


def test_seeded_history_draws_bars_and_the_mttr_line(sessions: SessionFactory) -> None:
    seed(sessions, incidents=300, seed=7, now=NOW, force=False)
    points, data = chart_of(sessions)
    assert sum(sum(p.counts.values()) for p in points) > 20
    assert any(p.mttr_seconds for p in points)
    png_size(data)
    _, empty = chart_of_nothing()
    # Bars and a line carry more detail than an empty frame: the data is drawn, not just the axes.
    assert len(data) > len(empty) + 2_000


def chart_of_nothing() -> tuple[list[chart.ChartPoint], bytes]:
    points = [chart.ChartPoint(f"2026-W{week:02d}") for week in range(36, 48)]
    return points, chart.render_png(points, title="nothing")


def test_matplotlib_is_not_imported_at_start_up() -> None:
    # Start-up memory: only the render imports it. (A fresh interpreter, since other tests render.)
    import subprocess

    code = "import bot.reports.digest, bot.reports.chart, bot.runtime.service, sys; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_the_chart_is_drawn_in_a_child_process_so_matplotlib_stays_out_of_the_bot() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from bot.reports import chart; "
        "png = chart.render_png([chart.ChartPoint('2026-W01', {'P0': 1}, 600.0)], title='t'); "
        "assert png.startswith(b'\\x89PNG'), png[:8]; "
        "assert 'matplotlib' not in sys.modules and 'numpy' not in sys.modules; print(len(png))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 1000


def test_the_chart_process_imports_nothing_of_the_bot_but_its_drawing() -> None:
    # It starts for every chart: the models' imports (SQLAlchemy, SQLModel, pydantic) cost about
    # 0.8 s of CPU there, half of the child's whole run.
    import subprocess

    from storage.models import SEVERITIES

    code = (
        "import sys, bot.reports.chart_draw; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('bot', 'storage', 'sqlalchemy', 'sqlmodel', 'pydantic', 'slack_sdk', 'slack_bolt')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "['bot', 'bot.reports', 'bot.reports.chart_draw']"
    from bot.reports import chart_draw

    assert chart_draw.SEVERITIES == SEVERITIES  # its copy of the order, so it needs no models


def test_a_retried_upload_sends_the_picture_drawn_before_without_drawing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[str] = []
    real = chart._draw_in_a_child

    def counting(request: str) -> bytes:
        drawn.append(request)
        return real(request)

    monkeypatch.setattr(chart, "_draw_in_a_child", counting)
    chart._drawn.cache_clear()
    points = [chart.ChartPoint("2031-W01", {"P1": 2}, 90.0)]
    first = chart.render_png(points, title="retried")
    assert chart.render_png(points, title="retried") == first  # the upload's retry
    assert len(drawn) == 1
    other = chart.render_png(points, title="another period")
    assert other != first and len(drawn) == 2
    for n in range(chart.DRAWN_KEPT):  # only the last few are kept
        monkeypatch.setattr(chart, "_draw_in_a_child", lambda request: PNG_MAGIC + request.encode())
        chart.render_png(points, title=f"filler {n}")
    monkeypatch.setattr(chart, "_draw_in_a_child", counting)
    assert chart.render_png(points, title="retried") == first and len(drawn) == 3
