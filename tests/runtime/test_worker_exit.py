"""bot/runtime/worker_exit.py: a worker that ended is seen to have ended, by every thread.

The front waits for its worker in two threads at once: the watcher (to restart a dead worker)
and `stop` (to let it finish). Only one of them can reap the process; the other must still
learn, at once, that it ended, and not report a live worker to kill.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

from bot.runtime.worker_exit import WorkerExit

FORK = multiprocessing.get_context("fork")


def _exit_soon(code: int) -> None:
    time.sleep(0.05)
    raise SystemExit(code)


def test_a_worker_reaped_by_another_thread_is_seen_to_have_ended() -> None:
    # The other thread's waitpid got the status first (the watcher's, just before `stop` asked):
    # waitpid here fails, which multiprocessing takes for "still running".
    process = FORK.Process(target=_exit_soon, args=(3,))
    process.start()
    watched = WorkerExit(process, forkserver=False)
    reaper = threading.Thread(target=os.waitpid, args=(process.pid, 0))
    reaper.start()
    reaper.join(10)
    started = time.monotonic()
    assert watched.wait(10), "a worker that had exited was reported alive"
    assert time.monotonic() - started < 5
    assert watched.ended()


def test_a_worker_waited_for_by_two_threads_is_seen_to_end_by_both() -> None:
    for _ in range(15):  # the two reap in either order; each turn is a fresh race
        process = FORK.Process(target=_exit_soon, args=(3,))
        process.start()
        watched = WorkerExit(process, forkserver=False)
        assert not watched.ended()
        seen: list[bool] = []
        watcher = threading.Thread(target=lambda w=watched, s=seen: s.append(w.wait()))
        watcher.start()
        assert watched.wait(10), "a worker that had exited was reported alive"
        watcher.join(10)
        assert seen == [True]
        assert watched.ended() and watched.exitcode == 3
        process.close()
