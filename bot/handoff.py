"""The front process's side of the worker process: start it, feed it, restart it, stop it.

Why there are two processes is in bot/worker.py. Here, Bolt's listener runner is replaced by
`HandOffListenerRunner`, so the work a listener registers with `after_ack` (a lazy listener) is
queued for the worker instead of run on a thread of this process.

Queueing must never hold an ack up: `send` only appends to an in-memory queue, and a feeder
thread writes to the pipe (a pipe is full at 64 KiB, and a full pipe blocks its writer).

If the worker dies, a watcher starts another and the feeder resends what it could not write, so
what is still queued here is not lost; what the dead worker had already read is, as in any crash
(the timeline backfill and the outbox's retries cover those).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from slack_bolt import App, BoltRequest
from slack_bolt.listener.thread_runner import ThreadListenerRunner
from slack_bolt.util.utils import get_name_for_callable

from bot import worker
from bot.settings import Settings

log = logging.getLogger("incident-bot")

# How long a restart waits after a worker died, doubling while it keeps dying at once.
RESTART_DELAY, MAX_RESTART_DELAY = 0.5, 30.0
# A worker that lived this long had a healthy run: the next restart is quick again.
HEALTHY_RUN = 60.0


class WorkerProcess:
    """The worker process, seen from the front: `start` it, `begin` once migrated, `send`, `stop`."""

    def __init__(self, settings: Settings, secrets: tuple[str, ...]) -> None:
        self.settings = settings
        self.secrets = secrets
        self.restarts = 0
        self._outgoing: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._changed = threading.Condition()
        self._process: Any = None
        self._pipe: Connection | None = None
        self._begun = False
        self._stopping = threading.Event()
        self._feeder: threading.Thread | None = None

    def start(self) -> WorkerProcess:
        """Create the process; it waits for `begin` before it touches the database."""
        self._create()
        return self

    def begin(self) -> None:
        """The tables are migrated: let the worker start, and start feeding it."""
        self._begun = True
        if self._pipe is not None:
            self._send_start(self._pipe)
        self._feeder = threading.Thread(target=self._feed, name="worker-feed", daemon=True)
        self._feeder.start()
        threading.Thread(target=self._watch, name="worker-watch", daemon=True).start()

    def send(self, message: Any) -> None:
        """Queue a message for the worker; never blocks."""
        self._outgoing.put(message)

    def kick(self) -> None:
        """Something was committed to the outbox here: the worker's deliverer sends it now."""
        self.send(worker.KICK)

    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self, timeout: float = 60) -> None:
        """Send STOP after everything queued, and wait for the worker to finish that work and exit."""
        self._stopping.set()
        if not self._begun and self._pipe is not None:
            self._pipe.close()  # it never started: end of input is its signal to exit
        self.send(worker.STOP)
        process = self._process
        if process is None:
            return
        process.join(timeout)
        if process.is_alive():
            log.error("worker process did not stop within %.0fs; terminating it", timeout)
            process.terminate()
            process.join(5)
        with self._changed:
            self._changed.notify_all()
        if self._feeder is not None:
            self._feeder.join(5)

    # -- inside ---------------------------------------------------------------------------------

    def _create(self, *, started: bool = False) -> None:
        # Forked from a process with no other thread yet (`incident-bot run` at start-up), the
        # worker shares the front's imported modules page for page, copy-on-write: ~70 MB the two
        # processes would otherwise each hold (benchmarks/README.md, memory). Forking a process
        # that runs threads is unsafe (a lock held by another thread stays held in the child),
        # so a restart, or a Service started inside a test, spawns a fresh interpreter instead.
        # (Linux only: macOS system libraries are not fork-safe even then.)
        fork = sys.platform == "linux" and threading.active_count() == 1
        context = multiprocessing.get_context("fork" if fork else "spawn")
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=worker.main,
            # A forked child inherits the write end too; it closes it, or it would never see EOF.
            args=(self.settings, reader, self.secrets, writer if fork else None),
            name="incident-bot-worker",
            daemon=False,  # it is stopped with STOP, so its work in hand finishes
        )
        if fork:
            gc.freeze()  # the collector would otherwise write to (and so copy) every shared page
        process.start()
        reader.close()  # the worker holds the only read end: if it dies, writes fail at once
        if started:
            self._send_start(writer)  # before the feeder can see this pipe: START comes first
        with self._changed:
            self._process, self._pipe = process, writer
            self._changed.notify_all()
        log.info("worker process %d %s", process.pid, "forked" if fork else "spawned")

    def _send_start(self, pipe: Connection) -> None:
        # The pipe is empty, so this does not block; if the worker died already, the watcher acts.
        with contextlib.suppress(OSError):
            pipe.send(worker.START)

    def _feed(self) -> None:
        message: Any = None
        while True:
            if message is None:
                message = self._outgoing.get()
            pipe = self._pipe
            try:
                assert pipe is not None
                pipe.send(message)
            except OSError:
                # The worker died (EPIPE) or its pipe was just replaced: resend on the next one.
                if not self._await_new_pipe(pipe):
                    return
                continue
            except Exception:
                # Not something a pipe can carry (it does not pickle): drop it, keep the feeder.
                log.exception("could not hand %s to the worker process; dropped", type(message).__name__)
                message = None
                continue
            if message == worker.STOP:
                pipe.close()
                return
            message = None

    def _await_new_pipe(self, old: Connection | None) -> bool:
        with self._changed:
            while self._pipe is old:
                if self._stopping.is_set() and not self.alive():
                    return False  # stopping and nothing to send to: what is left is dropped
                self._changed.wait(1.0)
        return True

    def _watch(self) -> None:
        quick_deaths = 0
        while True:
            process = self._process
            started = time.monotonic()
            wait([process.sentinel])
            if self._stopping.is_set():
                return
            quick_deaths = 0 if time.monotonic() - started > HEALTHY_RUN else quick_deaths + 1
            delay = min(RESTART_DELAY * 2 ** max(quick_deaths - 1, 0), MAX_RESTART_DELAY)
            log.error(
                "worker process %d exited with code %s; starting another in %.1fs", process.pid, process.exitcode, delay
            )
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            try:
                self._create(started=True)
            except Exception:
                # The dead process is still self._process: the next turn waits no time, backs off.
                log.exception("could not start a worker process")


class HandOffListenerRunner(ThreadListenerRunner):
    """Bolt's listener runner, except that each lazy listener is queued for the worker process.

    Bolt's own runner first copies the request for the lazy listener's thread (it re-parses the
    body and deep-copies the context): under load a fifth of this process's CPU per ack (py-spy).
    The worker rebuilds the request from the raw body instead, so nothing here is copied.
    """

    def __init__(self, runner: ThreadListenerRunner, send: Callable[[Any], None]) -> None:
        super().__init__(
            logger=runner.logger,
            process_before_response=runner.process_before_response,
            listener_error_handler=runner.listener_error_handler,
            listener_start_handler=runner.listener_start_handler,
            listener_completion_handler=runner.listener_completion_handler,
            listener_executor=runner.listener_executor,
            lazy_listener_runner=runner.lazy_listener_runner,
        )
        self.send = send

    def _start_lazy_function(self, lazy_func: Callable[..., None], request: BoltRequest) -> None:
        body = request.raw_body if request.mode == "http" else request.body
        job = worker.Job(
            function=get_name_for_callable(lazy_func), body=body, headers=dict(request.headers), mode=request.mode
        )
        self.send(job)


def hand_off_lazy_listeners(app: App, send: Callable[[Any], None]) -> None:
    """Make `app` queue its lazy listeners with `send` instead of running them on its threads."""
    # Bolt has no public setter for its listener runner (its AWS Lambda adapter swaps only the lazy
    # runner, after the copy); tests/test_worker_process.py fails if this stops taking effect.
    app._listener_runner = HandOffListenerRunner(app.listener_runner, send)
