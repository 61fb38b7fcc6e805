"""What runs beside the requests: the inbox workers, the outbox deliverer and the scheduler.

It runs in the worker process (bot/runtime/worker_process.py), or in the one process when
WORKER_PROCESS=false.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bot.runtime import digest_jobs, oncall_jobs, statuspage_jobs
from bot.runtime.inbox_worker import InboxWorker
from bot.runtime.scheduler import build_scheduler
from bot.slack.app import create_app
from bot.slack.context import Runtime, TokenRejected
from bot.slack.listeners import Stage


class Background:
    def __init__(self, rt: Runtime, *, worker_id: str | None = None) -> None:
        self.rt = rt
        self.inbox = InboxWorker(rt, create_app(rt, Stage.WORK), worker_id=worker_id)
        self.scheduler: Any = None
        self.stopping = threading.Event()  # set first thing in stop(): long jobs end at their next step

    def start(self) -> Background:
        self.rt.deliverer.start()
        self.rt.deliverer.kick()  # whatever an earlier run left undelivered
        self.inbox.start()  # and whatever requests it left undone
        self.scheduler = build_scheduler(
            self.rt,
            extra_jobs=[*digest_jobs.jobs(self.rt), *statuspage_jobs.jobs(self.rt), *oncall_jobs.jobs(self.rt)],
            stopping=self.stopping,
        )
        self.scheduler.start()
        return self

    def wake(self) -> None:
        """Something was stored (a request, an outbox row): take it now, not at the next poll."""
        self.inbox.wake()
        self.rt.deliverer.kick()

    def stop(self) -> None:
        """Finish the requests in hand, then stop the scheduler, then the deliverer.

        The scheduler's shutdown does not wait for a running job: a job in flight (a backfill
        reading threads from a Slack that does not answer) sees `stopping` and ends after its
        current call, which is bounded, while the rest stops (the interpreter joins it at exit).
        """
        self.stopping.set()
        self.inbox.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        self.rt.deliverer.stop()


def learn_identity(
    rt: Runtime,
    stopping: threading.Event,
    retry_seconds: float = 5,
    *,
    rejected: Callable[[TokenRejected], None] | None = None,
) -> threading.Thread:
    """Ask auth.test in a thread, again every few seconds until Slack answers (see Identity).

    A token Slack rejects for good ends the asking and goes to `rejected` (the front process
    stops the bot; the worker process leaves that to the front, which asks too).
    """

    def learn() -> None:
        while not stopping.is_set():
            try:
                if rt.identity.learn(rt.client):
                    return
            except TokenRejected as exc:
                if rejected is not None:
                    rejected(exc)
                return
            stopping.wait(retry_seconds)

    thread = threading.Thread(target=learn, name="auth-test", daemon=True)
    thread.start()
    return thread
