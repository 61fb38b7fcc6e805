"""The worker process: the work after the acks (the inbox), the outbox and the scheduler.

The front process answers Slack; this one does the rest. They are apart because that work is
Python CPU: in the front's process it held the interpreter lock while acks waited for it (the ack
p99 was 5-9x a bare Bolt app's). Here it competes for a core instead, at a lower priority.

Nothing of value crosses between the two: the front stores each request in the database before
it answers (bot/runtime/intake.py), and this process claims it from there. The pipe carries only
WAKE (something was stored: look now, not at the next poll) and STOP; a lost WAKE costs a poll
interval, and a closed pipe means the front is gone, so this process finishes its work and exits.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.runtime import logs
from bot.runtime.background import Background, learn_identity
from bot.runtime.worker_exit import WorkerExit
from bot.settings import Settings
from bot.slack.context import Runtime
from storage import db, inbox

log = logging.getLogger("incident-bot")

NICENESS = 10  # added to the front's; see _yield_the_cpu_to_acks
START, WAKE, STOP = "start", "wake", "stop"
# How long a restart waits after a worker died, doubling while it keeps dying at once.
RESTART_DELAY, MAX_RESTART_DELAY = 0.5, 30.0
# A worker that lived this long had a healthy run: the next restart is quick again.
HEALTHY_RUN = 60.0


class WorkerProcess:
    """The worker process, seen from the front: `start` it, `begin` once migrated, `wake`, `stop`."""

    def __init__(self, settings: Settings, secrets: tuple[str, ...], engine: Engine) -> None:
        self.settings = settings
        self.secrets = secrets
        self.engine = engine  # the front's, to give back what a dead worker held
        self.restarts = 0
        self.worker_id = ""
        self._process: WorkerExit | None = None
        self._pipe: Connection | None = None
        self._begun = False
        self._stopping = threading.Event()
        self._wanted = threading.Event()  # a WAKE is owed to the worker
        self._sender: threading.Thread | None = None

    def start(self) -> WorkerProcess:
        """Create the process; it waits for START before it touches the database."""
        self._create()
        return self

    def begin(self) -> None:
        """The tables are migrated: let the worker start."""
        self._begun = True
        if self._pipe is not None:
            self._send(self._pipe, START)
        self._sender = threading.Thread(target=self._send_wakes, name="worker-wake", daemon=True)
        self._sender.start()
        threading.Thread(target=self._watch, name="worker-watch", daemon=True).start()

    def wake(self) -> None:
        """Never blocks: wake-ups coalesce, and a thread of ours writes the pipe (a stalled worker
        leaves a full pipe, which blocks its writer)."""
        self._wanted.set()

    def alive(self) -> bool:
        return self._process is not None and not self._process.ended()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self, timeout: float = 60) -> None:
        """Send STOP and wait for the worker to finish its work in hand and exit."""
        self._stopping.set()
        self._wanted.set()
        process, pipe = self._process, self._pipe
        if pipe is not None:
            if self._begun:
                self._send(pipe, STOP)
            with contextlib.suppress(OSError):
                pipe.close()  # end of input: its signal to exit, whatever else was lost
        if process is None:
            return
        if not process.wait(timeout):
            # SIGKILL, not SIGTERM, which the worker ignores; what it held is in the inbox, leased.
            log.error("worker process did not stop within %.0fs; killing it", timeout)
            process.kill()
            process.wait(5)

    # -- inside ---------------------------------------------------------------------------------

    def _create(self, *, started: bool = False) -> None:
        # Forked from a process with no other thread yet (`incident-bot run` at start-up), the
        # worker shares the front's imported modules page for page, copy-on-write: ~70 MB the two
        # processes would otherwise each hold. Forking a process that runs threads is unsafe (a
        # lock held by another thread stays held in the child), so a restart, or a Service
        # started inside a test, asks multiprocessing's forkserver instead: a process started
        # fresh once (no threads), with this module imported, that forks each later worker. The
        # first costs what a fresh interpreter does (~1.5 s of CPU importing the bot); each one
        # after it, a fork. (Linux only: macOS system libraries are not fork-safe even then.) The
        # front forks before it opens its listening socket, so the worker never holds it.
        fork = sys.platform == "linux" and threading.active_count() == 1
        context: BaseContext
        if fork:
            context = multiprocessing.get_context("fork")
        elif sys.platform == "linux":
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])  # used when the server starts, not after
        else:
            context = multiprocessing.get_context("spawn")
        reader, writer = context.Pipe(duplex=False)
        worker_id = uuid.uuid4().hex[:12]
        process = context.Process(
            target=main,
            # A forked child inherits the write end too; it closes it, or it would never see EOF.
            args=(self.settings, reader, self.secrets, worker_id, writer if fork else None),
            name="incident-bot-worker",
            daemon=False,  # it is stopped with STOP, so its work in hand finishes
        )
        if fork:
            gc.freeze()  # the collector would otherwise write to (and so copy) every shared page
        process.start()
        reader.close()  # the worker holds the only read end: if it dies, writes fail at once
        if started:
            self._send(writer, START)
        if self._process is not None:
            self._process.close()  # the dead one's
        method = context.get_start_method()
        watched = WorkerExit(process, forkserver=method == "forkserver")
        self._process, self._pipe, self.worker_id = watched, writer, worker_id
        how = {"fork": "forked", "forkserver": "forked by the forkserver"}.get(method, "spawned")
        log.info("worker process %d %s", process.pid, how)

    def _send(self, pipe: Connection, message: str) -> None:
        # If the worker died already, the watcher replaces it; the inbox keeps what it missed.
        with contextlib.suppress(OSError, ValueError):
            pipe.send(message)

    def _send_wakes(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            self._wanted.clear()
            pipe = self._pipe
            if pipe is not None and not self._stopping.is_set():
                self._send(pipe, WAKE)

    def _watch(self) -> None:
        quick_deaths = 0
        while True:
            process, worker_id = self._process, self.worker_id
            assert process is not None  # begin() runs after start()
            started = time.monotonic()
            process.wait()  # its own end, not its forkserver's (bot/runtime/worker_exit.py)
            if self._stopping.is_set():
                return
            quick_deaths = 0 if time.monotonic() - started > HEALTHY_RUN else quick_deaths + 1
            delay = min(RESTART_DELAY * 2 ** max(quick_deaths - 1, 0), MAX_RESTART_DELAY)
            log.error(
                "worker process %d exited with code %s; starting another in %.1fs", process.pid, process.exitcode, delay
            )
            self._release(worker_id)
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            try:
                self._create(started=True)
            except Exception:
                # The dead process is still self._process: the next turn waits no time, backs off.
                log.exception("could not start a worker process")

    def _release(self, worker_id: str) -> None:
        """What the dead worker held is taken by the next one at once, not after its lease."""
        try:
            with self.engine.begin() as connection:
                released = inbox.release(connection, worker=worker_id)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not release the dead worker's requests (%s); they wait for their lease", exc)
            return
        if released:
            log.info("released %d Slack requests the dead worker held", released)


def main(
    settings: Settings, messages: Connection, secrets: tuple[str, ...], worker_id: str, inherited: Connection | None
) -> None:
    """The worker process's entry point (forked or spawned by WorkerProcess)."""
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
    stopping = threading.Event()
    learn_identity(rt, stopping)
    background = Background(rt, worker_id=worker_id).start()
    log.info("worker process started")
    try:
        _serve(background, messages)
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
        log.error("the front process sent %r before START; exiting", first)
        return False
    return True


def _serve(background: Background, messages: Connection) -> None:
    """Take wake-ups until STOP or until the front closes the pipe."""
    while True:
        try:
            message = messages.recv()
        except (EOFError, OSError):
            log.warning("the front process went away; finishing the work in hand")
            return
        if message == STOP:
            return
        if message == WAKE:
            background.wake()
        else:
            log.error("unknown message from the front process: %r", message)
