"""`incident-bot report KIND --period P`: the named week, month or quarter; a bad one is one line, exit 2."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time

from bot import cli
from bot.reports.periods import PeriodError, named_period
from bot.settings import Settings

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("CONFIG_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'incidents.db'}")


@pytest.fixture
def migrated(database: None) -> None:
    assert cli.main(["db", "upgrade"]) == 0  # a report reads an existing database, never creates one


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with freeze_time(NOW):
        code = cli.main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "heading", "span"),
    [
        (
            ("monthly", "--period", "2026-10"),
            "# Monthly incident summary: October 2026",
            "2026-10-01 00:00 → 2026-11-01 00:00",
        ),
        (("weekly", "--period", "2026-W44"), "# Weekly incident digest: 2026-W44", "2026-10-26 00:00 → 2026-11-02"),
        (("quarterly", "--period", "2026-Q3"), "# Quarterly incident retrospective: Q3 2026", "2026-07-01 00:00 →"),
        (("monthly",), "# Monthly incident summary: November 2026", "2026-11-01 00:00 → 2026-12-01"),
    ],
)
def test_the_named_period_is_reported(
    migrated: None, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], heading: str, span: str
) -> None:
    code, out, err = run(capsys, *args)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == heading
    assert span in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("monthly", "--period", "2026-W44"), "is a weekly period: use `report weekly --period 2026-W44`"),
        (("weekly", "--period", "2026-10"), "is a monthly period: use `report monthly --period 2026-10`"),
        (("monthly", "--period", "2026-13"), "2026-13 does not exist: use YYYY-MM"),
        (("weekly", "--period", "2025-W53"), "2025-W53 does not exist"),  # 2025 has 52 ISO weeks
        (("quarterly", "--period", "2026-Q5"), "2026-Q5 does not exist"),
        (("monthly", "--period", "October"), "'October' is not a period: use YYYY-MM"),
        (("monthly", "--period", "2027-01"), "2027-01 has not begun yet"),
        (("monthly", "--period", "2026-12", "--post"), "is not over yet: --post posts complete periods only"),
    ],
)
def test_a_bad_period_is_one_line_and_exit_2(
    database: None, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragment: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("incident-bot: ") and fragment in err, err
    assert not (Path.cwd() / "incidents.db").exists()  # refused before the database was opened


def test_periods_take_their_bounds_in_the_digest_time_zone() -> None:
    month = named_period("monthly", "2026-10", "Europe/Berlin")
    assert (month.start, month.end) == (
        datetime(2026, 9, 30, 22, 0, tzinfo=UTC),  # CEST, UTC+2
        datetime(2026, 10, 31, 23, 0, tzinfo=UTC),  # CET from 25 October, UTC+1
    )
    week = named_period("weekly", "2026-W01", "UTC")
    assert (week.start, week.label) == (datetime(2025, 12, 29, tzinfo=UTC), "2026-W01")  # ISO week 1
    with pytest.raises(PeriodError):
        named_period("yearly", "2026", "UTC")
