"""64 concurrent page clients from wrk (Debian's `wrk` package), the C load generator.

page_client.py's clients are Python threads, 16 to a process: their own turns at the GIL showed in
the latencies they measured, and their CPU was taken from the bot on this 2-core machine. wrk
keeps 64 connections busy from one thread of C per path, so what it measures is the server's: a
browser or monitor polling the page is on another machine, not in a Python thread beside the bot.

Two wrk processes run at once, 32 connections each: one sends `/status`, the other
`/api/v2/summary.json`, each its next request as soon as it has its answer (closed loop), for
SECONDS, asking for gzip as page_client.py does. Each prints one JSON line (wrk's Lua `done`
hook, below): requests, p50/p99, errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import procs
from page_client import HEADERS

CONNECTIONS = 32  # per path: 64 in all
REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, "errors": %d, "non_2xx": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def pages(port: int, paths: tuple[str, ...], seconds: float, server: int | None = None) -> dict[str, Any]:
    """`len(paths)` wrk processes of CONNECTIONS connections each, at once; with `server` (its pid),
    also the CPU it spent per request."""
    procs.RESULTS.mkdir(parents=True, exist_ok=True)
    script = procs.RESULTS / "wrk-report.lua"
    script.write_text(REPORT)
    before = procs.cpu_seconds(server) if server else 0.0
    runs = [
        subprocess.Popen(
            [
                *("wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "-s", str(script)),
                *(arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")),
                f"http://127.0.0.1:{port}{path}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for path in paths
    ]
    answers = {}
    for path, run in zip(paths, runs, strict=True):
        out, _ = run.communicate(timeout=seconds + 30)
        answers[path] = json.loads(out.strip().splitlines()[-1])
    requests = sum(a["requests"] for a in answers.values())
    figures: dict[str, Any] = {
        "tool": "wrk",
        "requests": requests,
        "per_second": round(sum(a["requests"] / a["seconds"] for a in answers.values()), 1),
        "p99_ms": max(a["p99_ms"] for a in answers.values()),  # of the two paths, the worse
        "non_200": sum(a["errors"] + a["non_2xx"] for a in answers.values()),
    }
    for path, answer in answers.items():
        name = "summary" if path.endswith("summary.json") else "page"
        figures[f"{name}_p50_ms"], figures[f"{name}_p99_ms"] = answer["p50_ms"], answer["p99_ms"]
    if server:
        cpu = procs.cpu_seconds(server) - before
        figures["server_cpu_ms_per_request"] = round(cpu * 1000 / max(requests, 1), 3)
    return figures
