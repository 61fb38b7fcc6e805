"""Benchmark the bot: ack latency, timeline ingestion, escalation sweep, reports, memory, the status page.

    python benchmarks/run.py [--quick] [--backend sqlite|postgresql|both] [--only NAME,...] [--profile]
    python benchmarks/run.py --only chaos [--seconds S]   (the chaos run, benchmarks/chaos.py; not in the default set)

Prints a table, then one JSON line with every figure (also written to benchmarks/results/latest.json).
See benchmarks/README.md for what each figure means and the aims.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]  # the bot, and the tests' fake Slack

import bot_bench  # noqa: E402
import databases  # noqa: E402
import page_load_bench  # noqa: E402
import procs  # noqa: E402
import profiling  # noqa: E402
import reports_bench  # noqa: E402
import sweep_bench  # noqa: E402
from loadgen import LoadPool  # noqa: E402

NAMES = ("acks", "ingest", "sweep", "reports", "memory", "statuspage")
FULL = {"ingest": 3000, "open": 10_000, "closed": 1_000_000, "incidents": 100_000}
QUICK = {"ingest": 1000, "open": 1_000, "closed": 50_000, "incidents": 10_000}
AIMS = {
    "ack_p99_ms": 250.0,
    "ack_ratio_p99": 1.5,  # issue 10: within 1.5x the bare Bolt app
    # issue 10: at or above the pre-inbox figures (about 600 replies/s on SQLite, 400 on PostgreSQL)
    "ingest_per_second": {"sqlite": 600.0, "postgresql": 400.0},
    "sweep_ms": 50.0,
    "report_ms": 1000.0,
    "rss_mb": 150.0,
    "page_p99_ms": page_load_bench.AIM_PAGE_P99_MS,  # issue 14: the status page at 64 clients
}


def machine() -> dict[str, Any]:
    free = subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout.strip()
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": datetime.now(UTC).strftime("%a %b %d %H:%M:%S UTC %Y"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "free_g": free,
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def memory_figures(bot: procs.Child, when: str) -> dict[str, float]:
    """The bot's memory: front and worker process, RSS each, and the sum of their Pss (the aim)."""
    pids = {"front": bot.pid, "worker": bot.worker_pid()}
    figures: dict[str, float] = {}
    pss = 0
    for name, pid in pids.items():
        memory = procs.memory_kb(pid) if pid is not None else {"VmRSS": 0, "VmHWM": 0, "Pss": 0}
        figures[f"rss_{when}_{name}_mb"] = round(memory["VmRSS"] / 1024, 1)
        figures[f"rss_peak_{name}_mb"] = round(memory["VmHWM"] / 1024, 1)
        pss += memory["Pss"]
    figures[f"pss_{when}_mb"] = round(pss / 1024, 1)
    figures[f"rss_{when}_sum_mb"] = round(figures[f"rss_{when}_front_mb"] + figures[f"rss_{when}_worker_mb"], 1)
    return figures


def bot_phases(backend: str, fake: procs.Fake, only: set[str], sizes: dict[str, int], profile: bool) -> dict[str, Any]:
    """Start the bot (a subprocess, `python -m bot run`) and the bare app; run acks, ingestion, memory."""
    url = databases.create(backend, "ib_bench_bot", fresh=True)
    result: dict[str, Any] = {}
    bot_child, bot_port, startup = procs.start_bot(url, fake, name=f"bot-{backend}")
    bare_child: procs.Child | None = None
    pool = LoadPool(bot_bench.CONCURRENCY)
    observer = databases.observer(url)
    try:
        bare_child, bare_port = procs.start_bare(fake)
        bot = bot_bench.Target("bot", bot_child, bot_port)
        bare = bot_bench.Target("bare", bare_child, bare_port)
        thread = bot_bench.declare(bot, observer, "Benchmark: ack latency")
        bot_child.settle()
        result["startup_s"] = round(startup, 2)
        result |= memory_figures(bot_child, "start")
        commands = fake.count("response_url")  # the fake is shared by both backends' runs
        for target in (bare, bot):  # connections, handler threads, statement caches
            pool.warm(target.port, bot_bench.mixed_requests(64, thread, fake.response_url()))
        commands += 32
        bot_child.settle()
        pids = {"front": bot_child.pid, "worker": bot_child.worker_pid()}
        with profiling.py_spy(pids, f"bot-{backend}", enabled=profile):
            if "acks" in only:
                result["acks"] = bot_bench.ack_latency(pool, bot, bare, thread, fake)
                commands += result["acks"].pop("commands_sent")
                fake.delay("*", bot_bench.WEB_API_DELAY)
                try:
                    result["acks_delayed"] = bot_bench.ack_latency(pool, bot, bare, thread, fake)
                    commands += result["acks_delayed"].pop("commands_sent")
                finally:
                    fake.delay("*", 0)
                # The answers to every /incident list, delayed or not, must all reach Slack.
                waited = bot_bench.wait_for_calls(fake, "response_url", commands, timeout=300)
                result["acks_delayed"]["backlog_drained_s"] = round(waited, 1) if waited != float("inf") else None
                result["acks_delayed"]["responses_received"] = fake.count("response_url")
                result["acks_delayed"]["responses_expected"] = commands
                bot_child.settle()
            if "ingest" in only:
                busy = bot_bench.declare(bot, observer, "Benchmark: timeline ingestion")
                bot_child.settle()
                result["ingest"] = bot_bench.ingestion(pool, bot, observer, busy, count=sizes["ingest"], bare=bare)
        bot_child.settle()
        result |= memory_figures(bot_child, "after_load")
        bot_child.check_alive()
    finally:
        pool.close()
        observer.dispose()
        bot_child.stop()
        if bare_child is not None:
            bare_child.stop()
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else set(NAMES)
    unknown = only - set(NAMES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}: choose from {', '.join(NAMES)}")
    backends = list(databases.BACKENDS) if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not databases.postgres_available():
        raise SystemExit(f"PostgreSQL does not answer at {databases.PG_ADMIN_URL}")
    sizes = QUICK if args.quick else FULL
    procs.RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "sizes": sizes, "aims": AIMS}
    results["backends"] = {}
    needs_bot = bool(only & {"acks", "ingest", "memory"})
    fake = procs.Fake() if needs_bot or "statuspage" in only else None
    started = time.monotonic()
    try:
        for backend in backends:
            figures: dict[str, Any] = results["backends"].setdefault(backend, {})
            if fake is not None and needs_bot:
                print(f"[{backend}] bot: ack latency, ingestion, memory ...", file=sys.stderr, flush=True)
                figures["bot"] = bot_phases(backend, fake, only, sizes, args.profile)
            if fake is not None and "statuspage" in only:
                print(f"[{backend}] status page under load, acks beside it ...", file=sys.stderr, flush=True)
                figures["statuspage"] = page_load_bench.run(backend, fake, quick=args.quick)
            if "sweep" in only:
                print(f"[{backend}] escalation sweep ...", file=sys.stderr, flush=True)
                with profiling.pyinstrument(f"sweep-{backend}", enabled=args.profile):
                    figures["sweep"] = sweep_bench.run(backend, open_count=sizes["open"], closed_count=sizes["closed"])
            if "reports" in only:
                print(f"[{backend}] reports ...", file=sys.stderr, flush=True)
                with profiling.pyinstrument(f"reports-{backend}", enabled=args.profile):
                    figures["reports"] = reports_bench.run(backend, incidents=sizes["incidents"])
    finally:
        if fake is not None:
            fake.stop()
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.monotonic() - started, 1)
    results["missed"] = missed(results)
    return results


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(label, path into a backend's figures, aim text, aim check) for every row of the table."""
    a = AIMS
    return [
        ("bot start-up to /healthz 200 (s)", "bot.startup_s", "", None),
        ("ack p50 bot / bare (ms)", "bot.acks.bot.p50_ms|bot.acks.bare.p50_ms", "", None),
        ("ack p99 bot (ms)", "bot.acks.bot.p99_ms", f"< {a['ack_p99_ms']:.0f}", lambda v: v < a["ack_p99_ms"]),
        ("ack p99 bare (ms)", "bot.acks.bare.p99_ms", "", None),
        (
            "ack p99 ratio bot/bare",
            "bot.acks.ratio_p99",
            f"<= {a['ack_ratio_p99']}x",
            lambda v: v <= a["ack_ratio_p99"],
        ),
        (
            "ack CPU ms per request bot / bare (acking process)",
            "bot.acks.bot.cpu_ms_per_request|bot.acks.bare.cpu_ms_per_request",
            "",
            None,
        ),
        ("ack CPU ms per request, bot's worker included", "bot.acks.bot.cpu_ms_per_request_all", "", None),
        ("ack non-200 bot|bare", "bot.acks.bot.non_200|bot.acks.bare.non_200", "0", lambda v: v == 0),
        ("Web API +2s: ack p50 bot / bare (ms)", "bot.acks_delayed.bot.p50_ms|bot.acks_delayed.bare.p50_ms", "", None),
        ("Web API +2s: ack p99 bot (ms)", "bot.acks_delayed.bot.p99_ms", "< 250", lambda v: v < a["ack_p99_ms"]),
        ("Web API +2s: ack p99 bare (ms)", "bot.acks_delayed.bare.p99_ms", "", None),
        (
            "Web API +2s: p99 ratio bot/bare",
            "bot.acks_delayed.ratio_p99",
            f"<= {a['ack_ratio_p99']}x",
            lambda v: v <= a["ack_ratio_p99"],
        ),
        (
            "Web API +2s: non-200 bot|bare",
            "bot.acks_delayed.bot.non_200|bot.acks_delayed.bare.non_200",
            "0",
            lambda v: v == 0,
        ),
        ("Web API +2s: backlog drained (s)", "bot.acks_delayed.backlog_drained_s", "", None),
        (
            "ingest: replies stored per s",
            "bot.ingest.per_second",
            ">= " + " / ".join(f"{v:.0f}" for v in a["ingest_per_second"].values()),
            lambda v, backend: v >= a["ingest_per_second"][backend],
        ),
        ("ingest: sent / stored / distinct", "bot.ingest.sent|bot.ingest.stored|bot.ingest.distinct_ts", "equal", None),
        ("ingest: exact (none lost/duplicated)", "bot.ingest.exact", "true", lambda v: v is True),
        ("ingest: ack p99 (ms)", "bot.ingest.ack_p99_ms", "", None),
        (
            "ingest: bare app acks per s / our rate as a share",
            "bot.ingest.bare_acks_per_second|bot.ingest.ratio_to_bare",
            "",
            None,
        ),
        (
            "ingest: bot CPU ms per reply / cores busy",
            "bot.ingest.bot_cpu_ms_per_reply|bot.ingest.bot_cpu_share",
            "",
            None,
        ),
        ("sweep: open / closed incidents", "sweep.open|sweep.closed", "", None),
        ("sweep: due per pass", "sweep.due_per_pass", "~50", None),
        (
            "sweep: due_incident_ids median (ms)",
            "sweep.due_query_ms",
            f"< {a['sweep_ms']:.0f}",
            lambda v: v < a["sweep_ms"],
        ),
        ("sweep: sweep() median (ms)", "sweep.sweep_ms", f"< {a['sweep_ms']:.0f}", lambda v: v < a["sweep_ms"]),
        ("reports: incidents / timeline entries", "reports.incidents|reports.timeline_entries", "", None),
        ("reports: weekly in-process (ms)", "reports.weekly_ms", "< 1000", lambda v: v < a["report_ms"]),
        ("reports: monthly in-process (ms)", "reports.monthly_ms", "< 1000", lambda v: v < a["report_ms"]),
        ("reports: tracker in-process (ms)", "reports.tracker_ms", "< 1000", lambda v: v < a["report_ms"]),
        ("CLI: python -c 'import bot.reports' (ms)", "reports.cli_import_ms", "", None),
        ("CLI: bot db upgrade (ms)", "reports.cli_db_upgrade_ms", "", None),
        ("CLI: bot report weekly (ms)", "reports.cli_report_weekly_ms", "", None),
        ("CLI: bot tracker (ms)", "reports.cli_tracker_ms", "", None),
        ("CLI: weekly beyond import (ms)", "reports.cli_weekly_beyond_startup_ms", "", None),
        ("CLI: tracker beyond import (ms)", "reports.cli_tracker_beyond_startup_ms", "", None),
        (
            "memory: Pss after start-up, front + worker (MB)",
            "bot.pss_start_mb",
            f"< {a['rss_mb']:.0f}",
            lambda v: v < a["rss_mb"],
        ),
        (
            "memory: Pss after load, front + worker (MB)",
            "bot.pss_after_load_mb",
            f"< {a['rss_mb']:.0f}",
            lambda v: v < a["rss_mb"],
        ),
        ("memory: RSS after start-up, front / worker (MB)", "bot.rss_start_front_mb|bot.rss_start_worker_mb", "", None),
        (
            "memory: RSS after load, front / worker (MB)",
            "bot.rss_after_load_front_mb|bot.rss_after_load_worker_mb",
            "",
            None,
        ),
        ("memory: RSS after load, front + worker (MB)", "bot.rss_after_load_sum_mb", "", None),
        ("memory: peak RSS, front / worker (MB)", "bot.rss_peak_front_mb|bot.rss_peak_worker_mb", "", None),
        *page_load_bench.ROWS,
    ]


def _get(figures: dict[str, Any], path: str) -> Any:
    value: Any = figures
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _values(figures: dict[str, Any], paths: str) -> list[Any]:
    return [_get(figures, path) for path in paths.split("|")]


def _passes(check: Any, value: Any, backend: str) -> bool:
    """A check takes the value, or the value and the backend (an aim that differs by backend)."""
    if len(inspect.signature(check).parameters) == 2:
        return bool(check(value, backend))
    return bool(check(value))


def missed(results: dict[str, Any]) -> list[str]:
    out = []
    for backend, figures in results["backends"].items():
        for label, paths, aim, check in _rows(results):
            if check is None:
                continue
            values = [v for v in _values(figures, paths) if v is not None]
            if values and not all(_passes(check, v, backend) for v in values):
                out.append(f"{backend}: {label} = {'|'.join(str(v) for v in values)} (aim {aim})")
    return out


def table(results: dict[str, Any]) -> str:
    backends = list(results["backends"])
    header = ["figure", *backends, "aim"]
    lines = []
    for label, paths, aim, check in _rows(results):
        cells = []
        shown = False
        for backend in backends:
            values = _values(results["backends"][backend], paths)
            if all(v is None for v in values):
                cells.append("-")
                continue
            shown = True
            text = " / ".join("-" if v is None else str(v) for v in values)
            if check is not None:
                text += "  ok" if all(v is not None and _passes(check, v, backend) for v in values) else "  MISSED"
            cells.append(text)
        if shown:
            lines.append([label, *cells, aim])
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    render = [" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in lines]
    rule = "-+-".join("-" * width for width in widths)
    m = results["machine"]
    head = [
        f"incident-bot benchmark, {'quick' if results['quick'] else 'full'} run, {m['date_utc']}",
        f"machine: nproc={m['nproc']} cpu={m['cpu']!r} python {m['python']} "
        f"loadavg {m['loadavg_start']} -> {m['loadavg_end']}",
        *(f"  {line}" for line in m["free_g"].splitlines()),
        "",
        " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        rule,
        *render,
        "",
        "missed: " + ("none" if not results["missed"] else ""),
        *(f"  - {item}" for item in results["missed"]),
    ]
    return "\n".join(head)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweep and report data sets, fewer replies")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(NAMES)}")
    parser.add_argument("--profile", action="store_true", help="py-spy the bot, pyinstrument the in-process parts")
    parser.add_argument("--seconds", type=float, default=120, help="how long the chaos run injects faults")
    args = parser.parse_args(argv)
    if args.only == "chaos":
        import chaos

        outcome = chaos.run(seconds=args.seconds)
        print(json.dumps(outcome, indent=2))
        counts = [outcome[b][k] for b in ("postgresql", "sqlite") for k in ("lost", "duplicated", "reordered")]
        return 0 if not any(counts) else 1
    results = run(args)
    print(table(results))
    line = json.dumps(results, separators=(",", ":"), default=str)
    (procs.RESULTS / "latest.json").write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
