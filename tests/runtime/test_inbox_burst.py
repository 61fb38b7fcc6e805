"""The inbox worker's wait for a burst of acks to end (bot/runtime/inbox_worker.py, _yield_to_a_burst).

While the front keeps storing requests (wake-ups less than BURST_QUIET apart) the claim waits,
so the work after the acks does not slow the acks still coming: it claims once the burst is
over, or BURST_LIMIT into it and then as the requests come, never later; a lone request is
claimed BURST_QUIET after it. The front's wake-ups are sent here as the worker process's pipe
delivers them (InboxWorker.wake), from a thread, on the real clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from bot_harness import poll, settings_for
from fake_slack import FakeSlack

from bot.runtime import inbox_worker
from bot.runtime.inbox_worker import InboxWorker
from bot.slack.app import create_app
from bot.slack.context import Runtime
from bot.slack.listeners import Stage

QUIET, LIMIT = inbox_worker.BURST_QUIET, inbox_worker.BURST_LIMIT
SLACK = 0.5  # how late a claim may come on a loaded machine (a test process among six)


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)  # the worker's clock


@pytest.fixture
def worker(
    engine: Any, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[InboxWorker, list[float]]]:
    """A started worker whose claims are timed (and find nothing); the poll is far off, so every
    claim after the first is a wake-up's."""
    rt = Runtime.build(settings_for(str(engine.url.render_as_string(hide_password=False)), fake_slack), engine)
    worker = InboxWorker(rt, create_app(rt, Stage.WORK), threads=2, poll_seconds=30)
    claims: list[float] = []

    def timed_claim() -> list[Any]:
        claims.append(now())
        return []

    monkeypatch.setattr(worker, "_claim", timed_claim)
    worker.start()
    poll(lambda: claims, message="the claim loop's first claim, at start")
    try:
        yield worker, claims
    finally:
        worker.stop()


def wake_for(worker: InboxWorker, seconds: float, every: float = 0.002) -> tuple[float, float, float]:
    """Wake the worker every `every` s for `seconds`, as a front storing a burst does; the times of
    the first wake-up and the last, and the longest gap between two (this thread may be kept off
    the cores longer than BURST_QUIET: then it was not one burst)."""
    start = last = now()
    gap = 0.0
    while last - start < seconds:
        worker.wake()
        gap, last = max(gap, now() - last), now()
        time.sleep(every)
    return start, last, gap


def burst(worker: InboxWorker, claims: list[float], seconds: float) -> tuple[float, float, int]:
    """wake_for, again (up to 5 times) until it was one burst; (start, last wake-up, claims before)."""
    for _ in range(5):
        time.sleep(QUIET * 4)  # whatever came before is over
        before = len(claims)
        start, end, gap = wake_for(worker, seconds)
        if gap < QUIET * 0.8:
            return start, end, before
    pytest.fail(f"could not wake the worker without a gap of {QUIET}s: the machine is too busy")


def after(claims: list[float], before: int, moment: float) -> list[float]:
    """The claims since index `before` made at `moment` or later."""
    return [t for t in claims[before:] if t >= moment]


def test_a_burst_is_claimed_once_it_is_over(worker: tuple[InboxWorker, list[float]]) -> None:
    inbox, claims = worker
    start, end, before = burst(inbox, claims, LIMIT / 2)
    later = poll(lambda: after(claims, before, end), timeout=QUIET + SLACK, message="a claim after the burst")
    during = [t for t in after(claims, before, start) if t < end]
    assert during == [], f"claimed {len(during)} times during the burst"
    # It waited for the quiet interval, and not for the limit.
    assert QUIET * 0.9 <= later[0] - end < LIMIT * 0.9


def test_a_longer_burst_is_claimed_at_the_limit_and_then_as_it_comes(worker: tuple[InboxWorker, list[float]]) -> None:
    inbox, claims = worker
    start, end, before = burst(inbox, claims, LIMIT * 5)
    ours = after(claims, before, start)  # not a late claim of an earlier attempt
    assert ours, "never claimed during a burst five limits long"
    assert LIMIT * 0.9 <= ours[0] - start <= LIMIT + SLACK
    # One wait per burst: afterwards each wake-up is claimed (hundreds; a wait each time gives 4).
    assert len([t for t in ours if t < end]) >= 10


def test_a_lone_request_is_claimed_after_the_quiet_interval(worker: tuple[InboxWorker, list[float]]) -> None:
    inbox, claims = worker
    before = len(claims)
    woken = now()
    inbox.wake()
    poll(lambda: len(claims) > before, timeout=QUIET + SLACK, message="the lone request's claim")
    assert QUIET * 0.9 <= claims[before] - woken < LIMIT * 0.9  # the quiet interval, not the limit


def test_the_next_burst_gets_its_own_wait(worker: tuple[InboxWorker, list[float]]) -> None:
    inbox, claims = worker
    burst(inbox, claims, LIMIT * 2)  # a first burst, past its limit
    start, end, before = burst(inbox, claims, LIMIT / 2)  # after a quiet moment, a second
    assert [t for t in after(claims, before, start) if t < end] == [], "the second burst was claimed while it went on"
    poll(lambda: after(claims, before, end), timeout=QUIET + SLACK, message="the second burst's claim after it")


def test_a_worker_stopped_during_the_wait_claims_nothing_more(worker: tuple[InboxWorker, list[float]]) -> None:
    inbox, claims = worker
    wake_for(inbox, LIMIT / 4)  # into a burst: the claim loop is waiting
    before = len(claims)
    stopped = now()
    inbox.stop()
    assert after(claims, before, stopped) == [], "claimed after stop()"
