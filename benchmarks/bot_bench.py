"""Benchmarks against the running bot: ack latency vs a bare Bolt app, timeline ingestion, memory."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import databases
import slack_requests as sr
import sqlalchemy as sa
from bot_harness import declare_values
from loadgen import LoadPool, Sample, summarise
from procs import SECRET, Child, Fake, cpu_seconds
from sqlalchemy.engine import Engine

from bot.ids import Callback

CONCURRENCY = 32
ACK_REQUESTS = 400  # per target and per condition, half slash commands and half thread replies
ROUND_SIZE = 100  # requests per round; rounds alternate bare, bot, bot, bare, ...
WEB_API_DELAY = 2.0
REPLY_USER = "U0BENCH"


@dataclass
class Target:
    name: str
    child: Child
    port: int


@dataclass(frozen=True)
class Thread:
    incident_id: str
    channel_id: str
    card_ts: str


def declare(bot: Target, observer: Engine, title: str, timeout: float = 30) -> Thread:
    """Declare an incident through the modal, as a user would, and wait for its card to be posted."""
    request = sr.view_submission(Callback.DECLARE.value, declare_values(title=title, severity="P2"), secret=SECRET)
    status, body, _ = sr.post(f"http://127.0.0.1:{bot.port}/slack/events", request)
    if status != 200:
        raise RuntimeError(f"declaring {title!r} answered {status}: {body[:200]!r}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with observer.connect() as connection:
            row = connection.execute(
                sa.text("SELECT id, channel_id, card_ts FROM incident WHERE title = :t AND card_ts IS NOT NULL"),
                {"t": title},
            ).first()
        if row is not None:
            return Thread(row[0], row[1], row[2])
        bot.child.check_alive()
        time.sleep(0.05)
    raise RuntimeError(f"the card for {title!r} was not posted within {timeout:.0f}s (see {bot.child.log_path})")


def reply(thread: Thread, index: int, **event_options: Any) -> tuple[dict[str, Any], sr.SignedRequest]:
    message = sr.thread_reply(thread.channel_id, thread.card_ts, sr.new_ts(), REPLY_USER, f"benchmark reply {index}")
    return message, sr.event(message, secret=SECRET, **event_options)


def mixed_requests(count: int, thread: Thread, response_url: str) -> list[sr.SignedRequest]:
    """Half `/incident list`, half thread replies into `thread`, alternating; signed just before use."""
    requests = []
    for index in range(count):
        if index % 2 == 0:
            requests.append(
                sr.slash_command("list", secret=SECRET, channel_id=thread.channel_id, response_url=response_url)
            )
        else:
            requests.append(reply(thread, index)[1])
    return requests


def ack_latency(
    pool: LoadPool, bot: Target, bare: Target, thread: Thread, fake: Fake, *, total: int = ACK_REQUESTS
) -> dict[str, Any]:
    """`total` requests to each target in rounds of ROUND_SIZE, in the order bare, bot, bot, bare, …

    Alternating cancels slow drifts in machine load; after each round the bot is let finish its
    backlog (the listeners that run after the ack) so it never runs during the other's round.
    """
    samples: dict[str, list[Sample]] = {
        f"{name}{part}": [] for name in (bare.name, bot.name) for part in ("", "_commands", "_replies")
    }
    order = [bare, bot, bot, bare]
    rounds = max(1, total // ROUND_SIZE)
    settled, bot_commands, started = 0.0, 0, time.monotonic()
    cpu = {bare.name: 0.0, bot.name: 0.0}  # the process that acks
    cpu_all = {bare.name: 0.0, bot.name: 0.0}  # and its children: the bot's worker process
    for index in range(rounds * 2):
        target = order[index % 4]
        size = ROUND_SIZE if total >= ROUND_SIZE else total
        requests = mixed_requests(size, thread, fake.response_url())
        cpu_before, all_before = cpu_seconds(target.child.pid), target.child.cpu_seconds()
        answered = pool.run(target.port, requests)
        samples[target.name] += answered
        # Even positions are slash commands, odd ones thread replies (see mixed_requests).
        samples[f"{target.name}_commands"] += answered[0::2]
        samples[f"{target.name}_replies"] += answered[1::2]
        bot_commands += (size + 1) // 2 if target is bot else 0
        settled += bot.child.settle()
        cpu[target.name] += cpu_seconds(target.child.pid) - cpu_before
        cpu_all[target.name] += target.child.cpu_seconds() - all_before
    result: dict[str, Any] = {name: summarise(s) for name, s in samples.items()}
    for name, seconds in cpu.items():
        # The acking process's CPU for the round, whatever of the work after the ack it does too;
        # then with its children's (the bot's worker process does that work).
        result[name]["cpu_ms_per_request"] = round(seconds * 1000 / max(len(samples[name]), 1), 2)
        result[name]["cpu_ms_per_request_all"] = round(cpu_all[name] * 1000 / max(len(samples[name]), 1), 2)
    bot_p99, bare_p99 = result[bot.name]["p99_ms"], result[bare.name]["p99_ms"]
    result["ratio_p99"] = round(bot_p99 / bare_p99, 2) if bare_p99 else None
    result["ratio_p50"] = round(result[bot.name]["p50_ms"] / result[bare.name]["p50_ms"], 2)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["settle_s"] = round(settled, 1)
    result["commands_sent"] = bot_commands  # each answered through response_url, after the ack
    return result


def wait_for_calls(fake: Fake, method: str, count: int, timeout: float) -> float:
    """Wait until the fake has seen `count` calls to `method`; returns the seconds waited (inf: never)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if fake.count(method) >= count:
            return time.monotonic() - start
        time.sleep(0.1)
    return float("inf")


def ingestion(
    pool: LoadPool, bot: Target, observer: Engine, thread: Thread, *, count: int, bare: Target | None = None
) -> dict[str, Any]:
    """`count` distinct thread replies sent at once, plus Slack-style redeliveries of one in twenty.

    The rate is replies stored per second, from the first request sent to the moment the
    database holds all of them; afterwards the stored rows must be exactly the replies sent.
    With `bare`, the same requests are then sent to the bare Bolt app, which only acks them: the
    rate at which this machine and load generator can get them acked at all, the ceiling of ours.
    """
    requests: list[sr.SignedRequest] = []
    retries: list[tuple[int, sr.SignedRequest]] = []
    for index in range(count):
        event_id = f"EvBENCH{uuid.uuid4().hex[:12].upper()}"
        message, request = reply(thread, index, event_id=event_id)
        requests.append(request)
        if index % 20 == 0:
            # Slack redelivers when an ack is late: same event id, same message, retry headers.
            again = sr.event(message, secret=SECRET, event_id=event_id, retry_num=1, retry_reason="http_timeout")
            retries.append((index + CONCURRENCY * 2, again))
    for position, request in reversed(retries):
        requests.insert(min(position, len(requests)), request)

    sql = "SELECT count(*) FROM timeline_entry WHERE incident_id = :i AND kind = 'message'"
    before = databases.scalar(observer, sql, i=thread.incident_id)
    timeout = max(60.0, count / 20)
    cpu_before = bot.child.cpu_seconds()  # the front and the worker process
    start = time.perf_counter()
    futures = pool.submit_all(bot.port, requests)
    stored, finished = before, None
    while time.perf_counter() - start < timeout:
        stored = databases.scalar(observer, sql, i=thread.incident_id)
        if stored - before >= count:
            finished = time.perf_counter()
            break
        time.sleep(0.01)
    samples = LoadPool.gather(futures)
    elapsed = (finished or time.perf_counter()) - start
    cpu = bot.child.cpu_seconds() - cpu_before
    time.sleep(1.0)  # anything still in flight (a duplicate would be) has landed by now
    stored = databases.scalar(observer, sql, i=thread.incident_id) - before
    distinct = databases.scalar(
        observer,
        "SELECT count(DISTINCT slack_ts) FROM timeline_entry WHERE incident_id = :i AND kind = 'message'",
        i=thread.incident_id,
    )
    acks = summarise(samples)
    ceiling = None
    if bare is not None:
        bot.child.settle()
        bare_start = time.perf_counter()
        LoadPool.gather(pool.submit_all(bare.port, requests))
        ceiling = round(len(requests) / (time.perf_counter() - bare_start), 1)
    return {
        "sent": count,
        "redelivered": len(retries),
        "stored": stored,
        "distinct_ts": distinct - before,
        "exact": stored == count and distinct - before == count and finished is not None,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed, 1) if finished else round(stored / elapsed, 1),
        "bot_cpu_ms_per_reply": round(cpu * 1000 / count, 2),
        "bot_cpu_share": round(cpu / elapsed, 2),  # cores busy (front + worker), while ingesting
        "ack_p50_ms": acks["p50_ms"],
        "ack_p99_ms": acks["p99_ms"],
        "non_200": acks["non_200"],
        "bare_acks_per_second": ceiling,
        "ratio_to_bare": round(count / elapsed / ceiling, 2) if ceiling and finished else None,
    }
