"""The worker process: does the work that follows each ack, and everything in the background.

The front process (bot/service.py, bot/handoff.py) answers Slack; this process runs what Bolt's
lazy listeners would have run there, plus the outbox deliverer and the scheduler. They are apart
because that work is Python CPU: in the front's process it held the interpreter lock while acks
waited for it (the ack p99 was 5-9x a bare Bolt app's). Here it competes for a core instead, and
the kernel lets the acks' short bursts in first.

Messages arrive over a pipe from the front, one at a time: a `Job` (run one lazy listener), `KICK`
(the front committed to the outbox) or `STOP`. A closed pipe means the front is gone: the work in
hand is finished and the process exits, as on STOP.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from slack_bolt import App, BoltRequest

from bot import logs
from bot.app import create_app
from bot.background import Background, learn_identity
from bot.runtime import Runtime
from bot.settings import Settings
from storage import db

log = logging.getLogger("incident-bot.worker")

NICENESS = 10  # added to the front's; see _yield_the_cpu_to_acks
START = "start"  # the first message: the front has migrated the tables
KICK = "kick"
STOP = "stop"


@dataclass(frozen=True)
class Job:
    """One lazy listener to run: which function, and the request exactly as the front received it."""

    function: str
    body: str | dict[str, Any]  # the raw body over HTTP; the parsed payload in Socket Mode
    headers: dict[str, list[str]]
    mode: str  # "http" or "socket_mode"

    def request(self) -> BoltRequest:
        # The headers Bolt's own AWS Lambda adapter uses to run one lazy listener of a request.
        headers = {
            **self.headers,
            "x-slack-bolt-lazy-only": ["1"],
            "x-slack-bolt-lazy-function-name": [self.function],
        }
        return BoltRequest(body=self.body, headers=headers, mode=self.mode)


def main(settings: Settings, messages: Connection, secrets: tuple[str, ...], inherited: Connection | None) -> None:
    """The process's entry point (forked or spawned by bot.handoff.WorkerProcess)."""
    if inherited is not None:
        inherited.close()  # the front's end of the pipe, inherited by a fork
    # The front decides when this process stops (it sends STOP after its last ack), so a Ctrl-C
    # or a SIGTERM sent to the whole process group does not cut the work in hand short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _yield_the_cpu_to_acks()
    logs.configure(settings.log_level, secrets)
    if not _wait_for_start(messages):
        return
    engine = db.create_db_engine(settings.database_url)
    rt = Runtime.build(settings, engine)
    # Requests reach this app only through the pipe, after the front verified their signatures;
    # verifying again would refuse work that waited in the pipe more than Slack's five minutes.
    app = create_app(rt, verify_requests=False)
    stopping = threading.Event()
    learn_identity(rt, stopping)
    background = Background(rt).start()
    log.info("worker process started")
    try:
        serve(app, rt, messages)
    finally:
        stopping.set()
        background.stop()
        engine.dispose()
        log.info("worker process stopped")


def _yield_the_cpu_to_acks() -> None:
    # When the cores are busy, the kernel runs the front (which must ack within 3 s) before
    # this process (whose work may wait); when they are not, this costs nothing.
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no os.nice (Windows)
        os.nice(NICENESS)


def _wait_for_start(messages: Connection) -> bool:
    try:
        first = messages.recv()
    except EOFError:
        return False  # the front stopped before it migrated the tables
    if first != START:
        log.error("the front process sent %r before START; exiting", type(first).__name__)
        return False
    return True


def serve(app: App, rt: Runtime, messages: Connection) -> None:
    """Take messages until STOP or until the front closes the pipe."""
    while True:
        try:
            message = messages.recv()
        except (EOFError, OSError):
            log.warning("the front process went away; finishing the work in hand")
            return
        except Exception:  # a message that does not unpickle: the pipe itself is fine
            log.exception("could not read a message from the front process; skipped")
            continue
        if message == STOP:
            return
        if message == KICK:
            rt.deliverer.kick()
        elif isinstance(message, Job):
            rt.listener_executor.submit(run, app, message)
        else:
            log.error("unknown message from the front process: %s", type(message).__name__)


def run(app: App, job: Job) -> None:
    # Bolt runs the named lazy listener in this thread; the listener logs its own failures.
    try:
        response = app.dispatch(job.request())
    except Exception:
        log.exception("handed-off work %s failed", job.function)
        return
    if response.status != 200:
        log.warning("handed-off work %s was not run (status %d)", job.function, response.status)
