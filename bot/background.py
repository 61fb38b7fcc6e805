"""What runs beside the requests: the outbox deliverer and the scheduler (sweep, backfill, digests).

It runs in the worker process (bot/worker.py), or in the one process when WORKER_PROCESS=false.
"""

from __future__ import annotations

import threading
from typing import Any

from bot import extensions
from bot.runtime import Runtime
from bot.scheduler import build_scheduler


class Background:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.scheduler: Any = None

    def start(self) -> Background:
        self.rt.deliverer.start()
        self.rt.deliverer.kick()  # whatever an earlier run left undelivered
        self.scheduler = build_scheduler(self.rt, extra_jobs=extensions.jobs(self.rt))
        self.scheduler.start()
        return self

    def stop(self) -> None:
        """Finish the work acked requests left behind, then stop the scheduler, then the deliverer."""
        self.rt.listener_executor.shutdown(wait=True)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        self.rt.deliverer.stop()


def learn_identity(rt: Runtime, stopping: threading.Event, retry_seconds: float = 5) -> threading.Thread:
    """Ask auth.test in a thread, again every few seconds until Slack answers (see Identity)."""

    def learn() -> None:
        while not stopping.is_set() and not rt.identity.learn(rt.client):
            stopping.wait(retry_seconds)

    thread = threading.Thread(target=learn, name="auth-test", daemon=True)
    thread.start()
    return thread
