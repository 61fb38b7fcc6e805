"""STATUS_PAGE_EXPORT_DIR: the bot rewrites the static site after changes, debounced, whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sp_data
from bot_harness import Bot, poll
from sp_slack import page_settings, publish

from bot.runtime import statuspage_jobs
from bot.runtime.statuspage_jobs import Exporter
from bot.statuspage import service
from storage import db
from storage.models import utcnow


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_publish_from_slack_is_exported(make_bot: Callable[..., Bot], tmp_path: Path) -> None:
    target = tmp_path / "site"
    bot = make_bot(**page_settings(status_page_export_dir=str(target)))
    poll(lambda: (target / "status" / "index.html").is_file(), message="first export at start-up")
    incident = bot.declare("Checkout down", "P1")
    publish(bot, incident, title="Checkout unavailable")
    page = target / "status" / "index.html"
    poll(lambda: "Checkout unavailable" in page.read_text(), timeout=10, message="the export after the change")
    assert "Checkout down" not in page.read_text()


def _bump(sessions: db.SessionFactory) -> None:
    with db.unit_of_work(sessions) as session:
        service.bump_version(session=session, now=utcnow())


def test_a_burst_of_changes_is_exported_once_after_it(bot: Bot, tmp_path: Path) -> None:
    clock = Clock()
    rt = bot.service.rt
    exporter = Exporter(rt, str(tmp_path / "site"), clock=clock)
    assert exporter() is True  # the first poll writes what there is
    assert exporter() is False  # nothing changed
    for _ in range(3):  # changes a quarter second apart: still busy, not yet
        _bump(bot.sessions)
        clock.t += 0.25
        assert exporter() is False
    clock.t += statuspage_jobs.EXPORT_QUIET
    assert exporter() is True  # quiet for a while: written once
    assert exporter() is False


def test_a_long_burst_is_exported_by_the_max_wait(bot: Bot, tmp_path: Path) -> None:
    clock = Clock()
    exporter = Exporter(bot.service.rt, str(tmp_path / "site"), clock=clock)
    exporter()
    written = []
    for _ in range(int(statuspage_jobs.EXPORT_MAX_WAIT / 0.5) + 2):
        _bump(bot.sessions)
        clock.t += 0.5
        written.append(exporter())
    assert written.count(True) == 1 and written[-1] is False


def test_the_export_is_refreshed_as_time_passes(bot: Bot, tmp_path: Path) -> None:
    clock = Clock()
    exporter = Exporter(bot.service.rt, str(tmp_path / "site"), clock=clock)
    exporter()
    clock.t += statuspage_jobs.EXPORT_REFRESH - 1
    assert exporter() is False
    clock.t += 2
    assert exporter() is True


def test_jobs_only_when_configured(make_bot: Callable[..., Bot], tmp_path: Path) -> None:
    off = make_bot()
    assert statuspage_jobs.jobs(off.service.rt) == []
    on = make_bot(status_page=True, status_page_config=sp_data.CONFIG, status_page_export_dir=str(tmp_path))
    assert {j["id"] for j in statuspage_jobs.jobs(on.service.rt)} == {"statuspage-reminders", "statuspage-export"}
