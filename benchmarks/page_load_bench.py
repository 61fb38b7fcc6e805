"""The status page under load, served by the real bot, and the Slack acks beside it (issue 14).

`python benchmarks/run.py --only statuspage`. The bot (`python -m bot run`, front and worker,
STATUS_PAGE=true, 8 components from a CONFIG_FILE) runs on a database seeded through
bot/statuspage/service with ~50 public incidents over 90 days (benchmarks/statuspage_bench.py's
history). Each of RUNS runs measures, in the same bot:

- pages: 64 concurrent clients, keep-alive, each sending its next request as soon as it has its
  answer: wrk (page_wrk.py; 32 connections on `/status`, 32 on `/api/v2/summary.json`, for
  PAGE_SECONDS), or without wrk on the machine, page_client.py's Python threads (4 processes of 16,
  PAGE_REQUESTS in all, the two paths in turn); p50/p99 per path; then the same against the bare
  app serving the same bytes as fixed answers (the HTTP server's floor on this machine at that
  moment; the order alternates between runs);
- acks: rounds of ROUND_SIZE signed requests at concurrency 32 (loadgen, as bot_bench.ack_latency),
  in the order bare, bot, bot+pages, bare+pages, bare+pages, bot+pages, bot, bare, ...: the "+pages"
  rounds run while a page_client process sends a steady PAGE_RATE page requests per second to the
  bot; the others without page load. "bare+pages" shows what the page load costs the machine (the
  page client and the bot's front share its cores), not the bot's acks. After each round the page
  load stops and the bot settles (its backlog done).

The figures are the medians over the runs of each run's figure; ratios are taken within a run.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import bot_bench
import databases
import page_client
import page_wrk
import procs
import statuspage_bench
from loadgen import LoadPool, Sample, percentile, summarise

from storage import db

RUNS = 3
PATHS = ("/status", "/api/v2/summary.json")
CLIENT_PROCESSES, CLIENT_THREADS = 4, 16  # 64 concurrent page clients
PAGE_REQUESTS = {"full": 4000, "quick": 2000}  # page_client.py, when wrk is not installed
PAGE_SECONDS = {"full": 8, "quick": 4}  # wrk (whole seconds)
PAGE_RATE, RATE_THREADS = 200.0, 8  # the steady page load beside the acks
ACK_ROUNDS = 4  # rounds of bot_bench.ROUND_SIZE per condition and run (400 requests)
INCIDENTS = 50
AIM_PAGE_P99_MS = 25.0


def seed(backend: str) -> str:
    url = databases.create(backend, "ib_bench_statuspage_bot", fresh=True)
    engine = db.create_db_engine(url)
    try:
        db.upgrade(engine)
        sessions = db.session_factory(engine)
        statuspage_bench.populate(sessions, datetime.now(UTC), INCIDENTS, random.Random(14))
    finally:
        engine.dispose()
    return url


def write_config() -> str:
    components = [
        {"key": k, "name": k.upper(), **({"group": "Core"} if k in ("api", "db") else {})}
        for k in statuspage_bench.COMPONENTS
    ]
    path = procs.RESULTS / "statuspage-bench.json"  # JSON is YAML: the config file reader takes it
    path.write_text(json.dumps({"status_page": {"components": components}}))
    return str(path)


class PageClients:
    """page_client.py processes against the bot's port; `go` starts them all, `collect` reads the results."""

    def __init__(self, port: int, args: list[list[str]]) -> None:
        self.procs = []
        for argv in args:
            proc = subprocess.Popen(
                [sys.executable, str(procs.BENCH / "page_client.py"), str(port), *argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=procs.child_env(),
                text=True,
            )
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"page_client {argv} did not start")

    def send(self, command: str) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(command + "\n")
            proc.stdin.flush()

    def collect(self) -> tuple[float, dict[str, list[float]], Counter[str]]:
        seconds, samples, status = 0.0, {p: [] for p in PATHS}, Counter[str]()
        for proc in self.procs:
            assert proc.stdout is not None
            answer = json.loads(proc.stdout.readline())
            seconds = max(seconds, answer["seconds"])
            for path, values in answer["samples"].items():
                samples.setdefault(path, []).extend(values)
            for counts in answer["status"].values():
                status.update(counts)
        return seconds, samples, status

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    assert proc.stdin is not None
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q), 2)


def page_figures(seconds: float, samples: dict[str, list[float]], status: Counter[str]) -> dict[str, Any]:
    every = [v for values in samples.values() for v in values]
    figures: dict[str, Any] = {
        "requests": len(every),
        "per_second": round(len(every) / seconds, 1) if seconds else None,
        "p50_ms": _ms(every, 50),
        "p99_ms": _ms(every, 99),
        "non_200": sum(n for code, n in status.items() if code != "200"),
    }
    for path, values in samples.items():
        name = "summary" if path.endswith("summary.json") else "page"
        figures[f"{name}_p50_ms"], figures[f"{name}_p99_ms"] = _ms(values, 50), _ms(values, 99)
    return figures


# What the server itself writes for any answer, the bare app's as the bot's.
SERVER_HEADERS = {"content-length", "connection", "date", "server", "keep-alive", "transfer-encoding"}


def bare_pages(port: int) -> str:
    """The bot's answers as fixed ones for the bare app, fetched as the page clients ask (gzipped),
    header fields and all (ETag, CSP, Vary...: a third of a gzipped summary.json's bytes): a JSON
    file {path: [{name: value}, body in base64]}."""
    pages = {}
    for path in PATHS:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=page_client.HEADERS)
        with urllib.request.urlopen(request, timeout=10) as response:
            fields = {k: v for k, v in response.headers.items() if k.lower() not in SERVER_HEADERS}
            pages[path] = [fields, base64.b64encode(response.read()).decode()]
    file = procs.RESULTS / "bare-pages.json"
    file.write_text(json.dumps(pages))
    return str(file)


def concurrent_pages(port: int, total: int, server: int | None = None, *, seconds: float = 0.0) -> dict[str, Any]:
    """64 concurrent clients: wrk for `seconds` if it is installed (and `seconds` given), else
    `total` GETs from page_client.py; with `server` (its pid), also its CPU per request."""
    if seconds and page_wrk.available():
        return page_wrk.pages(port, PATHS, seconds, server)
    each = str(total // CLIENT_PROCESSES)
    argv = ["closed", str(CLIENT_THREADS), each, ",".join(PATHS)]
    clients = PageClients(port, [argv] * CLIENT_PROCESSES)
    try:
        before = procs.cpu_seconds(server) if server else 0.0
        clients.send("go")
        figures = {"tool": "page_client.py", **page_figures(*clients.collect())}
        if server:
            # The serving process's CPU per request: what the page costs the front (or the bare app).
            cpu = procs.cpu_seconds(server) - before
            figures["server_cpu_ms_per_request"] = round(cpu * 1000 / max(figures["requests"], 1), 3)
        return figures
    finally:
        clients.close()


def acks_beside_pages(
    pool: LoadPool, bot: bot_bench.Target, bare: bot_bench.Target, thread: bot_bench.Thread, fake: procs.Fake
) -> dict[str, Any]:
    """Ack rounds in the order bare, bot, bot+pages, bot+pages, bot, bare, ... (see the module's doc)."""
    pages = PageClients(bot.port, [["open", str(PAGE_RATE), str(RATE_THREADS), ",".join(PATHS)]])
    samples: dict[str, list[Sample]] = {"bare": [], "bot": [], "bot_loaded": [], "bare_loaded": []}
    loaded_pages: tuple[float, dict[str, list[float]], Counter[str]] = (0.0, {p: [] for p in PATHS}, Counter())
    order = ["bare", "bot", "bot_loaded", "bare_loaded", "bare_loaded", "bot_loaded", "bot", "bare"]
    try:
        for index in range(ACK_ROUNDS * len(samples)):
            condition = order[index % len(order)]
            target = bare if condition.startswith("bare") else bot
            loaded = condition.endswith("_loaded")
            requests = bot_bench.mixed_requests(bot_bench.ROUND_SIZE, thread, fake.response_url())
            if loaded:
                pages.send("go")
                time.sleep(0.5)  # the page load at its steady rate before the first ack
            samples[condition] += pool.run(target.port, requests)
            if loaded:
                pages.send("stop")
                seconds, got, status = pages.collect()
                loaded_pages[2].update(status)
                for path, values in got.items():
                    loaded_pages[1].setdefault(path, []).extend(values)
                loaded_pages = (loaded_pages[0] + seconds, loaded_pages[1], loaded_pages[2])
            bot.child.settle()
    finally:
        pages.close()
    result: dict[str, Any] = {name: summarise(s) for name, s in samples.items()}
    bare_p99 = result["bare"]["p99_ms"]
    result["ratio_p99"] = round(result["bot"]["p99_ms"] / bare_p99, 2) if bare_p99 else None
    result["ratio_p99_loaded"] = round(result["bot_loaded"]["p99_ms"] / bare_p99, 2) if bare_p99 else None
    bare_loaded_p99 = result["bare_loaded"]["p99_ms"]
    result["ratio_p99_loaded_to_bare_loaded"] = (
        round(result["bot_loaded"]["p99_ms"] / bare_loaded_p99, 2) if bare_loaded_p99 else None
    )
    result["pages_during"] = page_figures(*loaded_pages)
    result["commands_sent"] = (len(samples["bot"]) + len(samples["bot_loaded"])) // 2  # /incident list
    return result


def _median(runs: list[dict[str, Any]], path: str) -> Any:
    values = []
    for run in runs:
        value: Any = run
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(value)
    return round(statistics.median(values), 2) if values else None


MEDIANS = (
    "pages.per_second",
    "pages.page_p50_ms",
    "pages.page_p99_ms",
    "pages.summary_p50_ms",
    "pages.summary_p99_ms",
    "pages.non_200",
    "pages.server_cpu_ms_per_request",
    "pages_bare.server_cpu_ms_per_request",
    "pages_bare.per_second",
    "pages_bare.page_p99_ms",
    "pages_bare.summary_p99_ms",
    "pages_ratio_p99",
    "acks.bare.p99_ms",
    "acks.bot.p99_ms",
    "acks.bot_loaded.p99_ms",
    "acks.bare.p50_ms",
    "acks.bot.p50_ms",
    "acks.bot_loaded.p50_ms",
    "acks.ratio_p99",
    "acks.ratio_p99_loaded",
    "acks.bare_loaded.p99_ms",
    "acks.ratio_p99_loaded_to_bare_loaded",
    "acks.bot_loaded.non_200",
    "acks.pages_during.per_second",
    "acks.pages_during.p99_ms",
    "acks.pages_during.non_200",
)


def run(backend: str, fake: procs.Fake, *, quick: bool = False, runs: int = RUNS) -> dict[str, Any]:
    url = seed(backend)
    bot_child, port, startup = procs.start_bot(
        url, fake, name=f"bot-statuspage-{backend}", extra={"STATUS_PAGE": "true", "CONFIG_FILE": write_config()}
    )
    bare_child: procs.Child | None = None
    pool = LoadPool(bot_bench.CONCURRENCY)
    observer = databases.observer(url)
    per_run: list[dict[str, Any]] = []
    try:
        concurrent_pages(port, 640)  # warm: the page's cache, the server's threads
        bare_child, bare_port = procs.start_bare(fake, pages=bare_pages(port))
        bot = bot_bench.Target("bot", bot_child, port)
        bare = bot_bench.Target("bare", bare_child, bare_port)
        thread = bot_bench.declare(bot, observer, "Benchmark: acks beside the status page")
        bot_child.settle()
        for target in (bare, bot):
            pool.warm(target.port, bot_bench.mixed_requests(64, thread, fake.response_url()))
        concurrent_pages(bare_port, 640)
        bot_child.settle()
        total, seconds = PAGE_REQUESTS["quick" if quick else "full"], PAGE_SECONDS["quick" if quick else "full"]
        for number in range(runs):
            print(f"  statuspage run {number + 1}/{runs} ...", file=sys.stderr, flush=True)
            figures: dict[str, Any] = {}
            targets = (("pages", port, bot_child.pid), ("pages_bare", bare_port, bare_child.pid))
            for name, at, pid in targets[:: 1 if number % 2 == 0 else -1]:
                figures[name] = concurrent_pages(at, total, pid, seconds=seconds)
                bot_child.settle()
            floor = figures["pages_bare"]["p99_ms"]
            figures["pages_ratio_p99"] = round(figures["pages"]["p99_ms"] / floor, 2) if floor else None
            figures["acks"] = acks_beside_pages(pool, bot, bare, thread, fake)
            figures["acks"].pop("commands_sent")
            per_run.append(figures)
        bot_child.check_alive()
    finally:
        pool.close()
        observer.dispose()
        bot_child.stop()
        if bare_child is not None:
            bare_child.stop()
    medians = {path.replace(".", "_"): _median(per_run, path) for path in MEDIANS}
    return {"startup_s": round(startup, 2), "runs": per_run, **medians}


# (label, key under the backend's "statuspage" figures, aim text, aim check) for run.py's table.
ROWS = [
    (
        "statuspage: 64 clients /status p50 / p99 (ms)",
        "statuspage.pages_page_p50_ms|statuspage.pages_page_p99_ms",
        "p99 < 25",
        None,
    ),
    ("statuspage: 64 clients /status p99 (ms)", "statuspage.pages_page_p99_ms", "< 25", lambda v: v < AIM_PAGE_P99_MS),
    (
        "statuspage: 64 clients summary.json p50 / p99 (ms)",
        "statuspage.pages_summary_p50_ms|statuspage.pages_summary_p99_ms",
        "",
        None,
    ),
    (
        "statuspage: 64 clients summary.json p99 (ms)",
        "statuspage.pages_summary_p99_ms",
        "< 25",
        lambda v: v < AIM_PAGE_P99_MS,
    ),
    ("statuspage: 64 clients pages per s / non-200", "statuspage.pages_per_second|statuspage.pages_non_200", "", None),
    (
        "statuspage: same bytes from the bare app: /status / summary p99 (ms), per s",
        "statuspage.pages_bare_page_p99_ms|statuspage.pages_bare_summary_p99_ms|statuspage.pages_bare_per_second",
        "(floor)",
        None,
    ),
    ("statuspage: page p99 ratio bot/bare app", "statuspage.pages_ratio_p99", "", None),
    (
        "statuspage: serving CPU ms per page request, bot's front / bare app",
        "statuspage.pages_server_cpu_ms_per_request|statuspage.pages_bare_server_cpu_ms_per_request",
        "",
        None,
    ),
    (
        "statuspage: ack p99 bare / bot / bot+200 pages/s / bare+200 pages/s (ms)",
        "statuspage.acks_bare_p99_ms|statuspage.acks_bot_p99_ms|statuspage.acks_bot_loaded_p99_ms"
        "|statuspage.acks_bare_loaded_p99_ms",
        "",
        None,
    ),
    ("statuspage: ack p99 ratio bot/bare, no page load", "statuspage.acks_ratio_p99", "(reference)", None),
    (
        "statuspage: ack p99 ratio bot+pages/bare",
        "statuspage.acks_ratio_p99_loaded",
        "<= 1.5x",
        lambda v: v <= 1.5,
    ),
    (
        "statuspage: ack p99 ratio bot+pages/bare+pages",
        "statuspage.acks_ratio_p99_loaded_to_bare_loaded",
        "(what the bot's front adds)",
        None,
    ),
    (
        "statuspage: pages during acks per s / p99 ms / non-200",
        "statuspage.acks_pages_during_per_second|statuspage.acks_pages_during_p99_ms|statuspage.acks_pages_during_non_200",
        "~200/s",
        None,
    ),
]
