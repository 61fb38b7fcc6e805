"""The incident-bot CLI: run, check, db upgrade, postmortem, report, tracker, outbox, seed."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from bot.reports.periods import Period, PeriodError
from bot.settings import Settings, SettingsError, load_settings
from storage import db, urls

log = logging.getLogger("incident-bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incident-bot", description="A Slack bot for running incidents.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the bot (HTTP mode, or Socket Mode when SLACK_APP_TOKEN is set)")
    commands.add_parser("check", help="validate the configuration, reach the database and Slack, show the schedule")
    database = commands.add_parser("db", help="database maintenance")
    database.add_argument("action", choices=["upgrade"], help="apply migrations")
    postmortem = commands.add_parser("postmortem", help="print one incident as a Markdown postmortem")
    postmortem.add_argument("incident_id", metavar="INC-YYYY-MM-DD-NNN")
    report = commands.add_parser("report", help="print a weekly, monthly or quarterly summary")
    report.add_argument("period", choices=["weekly", "monthly", "quarterly"])
    report.add_argument(
        "--period",
        dest="named_period",
        metavar="PERIOD",
        help="that week, month or quarter instead of the last one: 2026-W44 (ISO week), 2026-10, 2026-Q3",
    )
    report.add_argument("--post", action="store_true", help="also post it to the incident channel")
    commands.add_parser("tracker", help="print the whole incident tracker as Markdown")
    outbox = commands.add_parser(
        "outbox", help="list the dead letters (Slack calls, page notices); `retry` queues them again")
    outbox.add_argument("action", nargs="?", choices=["retry"], help="queue the dead letters again")
    outbox.add_argument("ids", nargs="*", metavar="ID", help="only these: N (a Slack call) or page-N (a page notice)")
    statuspage = commands.add_parser("statuspage", help="the public status page")
    statuspage.add_argument("action", choices=["export"], help="write the page, its API and feeds as static files")
    statuspage.add_argument("directory", metavar="DIR", help="replaced whole, atomically")
    oncall = commands.add_parser("oncall", help="who is on call now and the next handoffs, per schedule")
    oncall.add_argument("schedule", nargs="?", metavar="SCHEDULE", help="only this schedule")
    oncall.add_argument("--ical-url", action="store_true", help="print SCHEDULE's calendar feed URL, with its token")
    seed = commands.add_parser("seed", help="fill the database with a synthetic incident history")
    seed.add_argument("--incidents", type=int, required=True, metavar="N")
    seed.add_argument("--seed", type=int, default=None, metavar="S")
    seed.add_argument("--force", action="store_true", help="replace what the database holds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":  # it reports bad settings itself, one line each, with the rest
        from bot.runtime import check

        return check.main()
    try:
        settings = load_settings()
        if args.command == "run":
            from bot.runtime.service import run

            return run(settings)
        if args.command == "outbox":
            return _outbox(args, settings)
        if args.command == "report":
            args.target = _named_period(args, settings)
        if args.command == "statuspage":
            return _statuspage_export(args.directory, settings)
        if args.command == "oncall":
            return _oncall(args, settings)
        return _offline(args, settings)
    except SettingsError as exc:
        for line in exc.lines:  # one line per mistake
            print(f"incident-bot: {line}", file=sys.stderr)
        return 2
    except db.DatabaseError as exc:
        print(f"incident-bot: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `incident-bot tracker | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not print a second BrokenPipeError on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _offline(args: argparse.Namespace, settings: Settings) -> int:
    """The commands that read or write the database without serving Slack."""
    from bot.runtime import logs

    logs.configure("WARNING")
    if args.command == "postmortem":
        args.incident_id = args.incident_id.strip().upper()  # inc-2026-01-04-001 is meant the same
        from bot.incidents.forms import INCIDENT_ID

        if not INCIDENT_ID.match(args.incident_id):
            print(
                f"incident-bot: {args.incident_id!r} is not an incident id: expected an incident id like "
                "INC-2026-01-04-001",
                file=sys.stderr,
            )
            return 1
    # Read-only commands never create a database or a folder (a mistyped DATABASE_URL must not
    # leave one behind); `db upgrade`, `seed` and `report --post` (it records the post) create the
    # SQLite file, though never a missing folder.
    writes = args.command in ("db", "seed") or (args.command == "report" and args.post)
    if args.command == "report" and args.post:
        _require_bot_token(settings)  # before the database: a mistake leaves nothing behind
    sessions = _new_or_existing_database(settings.database_url) if writes else _existing_database(settings.database_url)
    from storage.models import utcnow

    if args.command == "db":
        print("database is at the latest revision")
        return 0
    if args.command == "postmortem":
        from bot.reports.postmortem import render_postmortem

        with db.unit_of_work(sessions) as session:
            text = render_postmortem(session, args.incident_id)
        if text is None:
            print(f"incident-bot: no incident {args.incident_id}", file=sys.stderr)
            return 1
        print(text)
        return 0
    if args.command == "tracker":
        from bot.reports.tracker import render_tracker

        with db.unit_of_work(sessions) as session:
            print(render_tracker(session, settings, utcnow()))
        return 0
    if args.command == "report":
        from bot.reports.report import render_report

        with db.unit_of_work(sessions) as session:
            print(render_report(session, settings, args.period, utcnow(), period=args.target))
        if args.post:
            return post_report_now(settings, sessions, args.period, target=args.target)
        return 0
    if args.command == "seed":
        from bot.demo.seed import SeedRefused, seed

        if args.incidents < 0:
            print("incident-bot: --incidents must be zero or more", file=sys.stderr)
            return 2
        try:
            written = seed(sessions, incidents=args.incidents, seed=args.seed, now=utcnow(), force=args.force)
        except SeedRefused as exc:
            print(f"incident-bot: {exc}", file=sys.stderr)
            return 1
        print(f"seeded {written} incidents")
        return 0
    raise AssertionError(args.command)


def _named_period(args: argparse.Namespace, settings: Settings) -> Period | None:
    """`report --period`, checked before anything opens the database."""
    if args.named_period is None:
        return None
    from bot.reports.periods import named_period
    from storage.models import utcnow

    now = utcnow()
    try:
        period = named_period(args.period, args.named_period, settings.digest_timezone, now=now)
    except PeriodError as exc:
        raise SettingsError(str(exc)) from None
    if args.post and period.end > now:
        # Its digest is posted once, when it is over: posting it now would take that post's place.
        raise SettingsError(f"--period {args.named_period} is not over yet: --post posts complete periods only")
    return period


def _outbox(args: argparse.Namespace, settings: Settings) -> int:
    """Dead letters (Slack calls and page notices): listed, or queued again. Opens the database the
    bot uses and never creates one."""
    from bot.runtime import logs, outbox_command

    logs.configure("WARNING")
    if args.action != "retry" and args.ids:
        print("incident-bot: ids go with `outbox retry ID…`", file=sys.stderr)
        return 2
    try:
        outbox_command.parse_ids(args.ids)
    except outbox_command.BadId as exc:
        print(f"incident-bot: {exc}", file=sys.stderr)
        return 2
    sessions = _existing_database(settings.database_url)
    if args.action == "retry":
        return outbox_command.retry(sessions, args.ids)
    return outbox_command.listing(sessions)


def _statuspage_export(directory: str, settings: Settings) -> int:
    """Write the static site from the bot's database, read-only (it never creates or migrates one)."""
    from bot.runtime import logs
    from bot.statuspage.site import StatusSite
    from bot.statuspage.summary import PageInfo

    logs.configure("WARNING")
    sessions = _existing_database(settings.database_url)
    info = PageInfo(name=settings.status_page_title, url=settings.status_page_url)
    site = StatusSite(sessions, settings.status_page_config, info, background=False)
    try:
        written = site.export(directory)
    except OSError as exc:
        print(f"incident-bot: cannot write the status page to {directory}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files to {directory}")
    return 0


def _oncall(args: argparse.Namespace, settings: Settings) -> int:
    """Who is on call (overrides included), or a feed URL. Read-only: never creates a database."""
    from bot.runtime import logs, oncall_route

    logs.configure("WARNING")
    schedules = settings.oncall.schedules
    if args.schedule is not None and args.schedule not in schedules:
        known = ", ".join(sorted(schedules)) or "none: the oncall: section of CONFIG_FILE has no schedules"
        print(f"incident-bot: no schedule {args.schedule!r} (known: {known})", file=sys.stderr)
        return 1
    if args.ical_url:
        if args.schedule is None:
            print("incident-bot: --ical-url goes with a SCHEDULE", file=sys.stderr)
            return 2
        url = oncall_route.feed_url(settings, args.schedule)
        if url is None:
            print("incident-bot: ONCALL_FEED_SECRET (or SLACK_SIGNING_SECRET) is not set: the feed tokens need "
                  "a key", file=sys.stderr)
            return 2
        print(url)
        return 0
    if not schedules:
        print("no on-call schedules (the oncall: section of CONFIG_FILE)")
        return 0
    from bot.oncall import roster
    from bot.oncall.schedules import OverrideIndex
    from storage.models import utcnow

    now = utcnow()
    sessions = _existing_database(settings.database_url)
    with db.unit_of_work(sessions) as session:
        indexes: dict[str, OverrideIndex] = roster.indexes(session, now)
    for line in roster.roster_lines(roster.roster(settings.oncall, indexes, now, only=args.schedule)):
        print(line)
    return 0


def _existing_database(url: str) -> db.SessionFactory:
    """The bot's database as it is: a missing SQLite file or an unmigrated schema is an error, not
    something to create (a mistyped DATABASE_URL must not leave an empty database behind)."""
    urls.require_existing(url)
    engine = db.create_db_engine(url)
    if not db.ping(engine):
        raise db.DatabaseError("cannot reach the database (DATABASE_URL)")
    if not db.is_ready(engine):
        raise db.DatabaseError("the database is not at the latest revision: run `incident-bot db upgrade`")
    return db.session_factory(engine)


def _new_or_existing_database(url: str) -> db.SessionFactory:
    """The bot's database, created (a new SQLite file, never its folder) and migrated to head."""
    urls.require_creatable(url)
    engine = db.create_db_engine(url)
    with urls.explained(url):
        db.upgrade(engine)
    return db.session_factory(engine)


def _require_bot_token(settings: Settings) -> None:
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        raise SettingsError(
            "SLACK_BOT_TOKEN is not set: `report --post` posts as the bot; copy the Bot User OAuth Token "
            "(xoxb-…) from the app's OAuth & Permissions page."
        )
    problems = [line for line in settings.secret_problems() if line.startswith("SLACK_BOT_TOKEN")]
    if problems:
        raise SettingsError(problems[0])


# How long `report --post` keeps retrying before it leaves the post queued for a running bot.
REPORT_POST_TIMEOUT_SECONDS = 60.0


def post_report_now(
    settings: Settings, sessions: db.SessionFactory, period: str, *, target: Period | None = None
) -> int:
    """Post the last complete period's digest (or `target`'s) now, through the same claim as the scheduled job.

    Returns the exit code: 0 when posted (or already posted for that period), 1 when Slack did not
    take it in time; it then stays queued and a running bot delivers it.
    """
    _require_bot_token(settings)
    # Imported here, not at the top: the read-only commands start fast without Slack's modules.
    from bot.reports.digest import claim, next_attempt, run_for
    from bot.reports.periods import previous_period
    from bot.slack import digest_delivery
    from bot.slack.context import make_client
    from bot.slack.delivery import Deliverer
    from storage.db import unit_of_work
    from storage.models import utcnow

    now = utcnow()
    target = target or previous_period(period, now, settings.digest_timezone)
    with unit_of_work(sessions) as session:
        won = claim(session, target, now=now)
    if not won:
        print(
            f"incident-bot: the {period} digest for {target.label} was already posted (or is being posted); "
            "not posting it again",
            file=sys.stderr,
        )
        return 0
    deliverer = Deliverer(sessions, make_client(settings), settings)
    digest_delivery.install(deliverer)
    deadline = time.monotonic() + REPORT_POST_TIMEOUT_SECONDS
    while True:
        deliverer.deliver_pending()
        with unit_of_work(sessions) as session:
            run = run_for(session, target)
            delivered = run is not None and run.delivered_at is not None
            waiting = next_attempt(session, target)
        if delivered:
            print(f"incident-bot: posted the {period} digest for {target.label}", file=sys.stderr)
            return 0
        pause = max(0.2, (waiting - utcnow()).total_seconds()) if waiting else 0.5
        if time.monotonic() + pause > deadline:
            print(
                f"incident-bot: Slack did not take the {period} digest for {target.label} yet; it stays queued "
                "and the running bot will post it",
                file=sys.stderr,
            )
            return 1
        time.sleep(pause)
