"""`incident-bot run`: start everything in order, and stop it cleanly on SIGTERM."""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot import extensions, logs
from bot.app import create_app
from bot.background import Background, learn_identity
from bot.handoff import WorkerProcess, hand_off_lazy_listeners
from bot.runtime import Runtime
from bot.server import Health, Server
from bot.settings import Settings
from storage import db

log = logging.getLogger("incident-bot")


def secrets_of(settings: Settings) -> tuple[str, ...]:
    values = (
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.alertmanager_token,
    )
    return tuple(v.get_secret_value() for v in values if v is not None)


class Service:
    """The running bot. Tests start this same object in-process, so they test the real wiring.

    With WORKER_PROCESS (the default) this process answers Slack and a worker process does the
    rest (bot/worker.py); without it, both happen here.
    """

    def __init__(self, settings: Settings) -> None:
        settings.require_for_run()
        self.settings = settings
        self.stopping = threading.Event()
        self.engine = db.create_db_engine(settings.database_url)
        self.rt = Runtime.build(settings, self.engine)
        self.app = create_app(self.rt)
        self.worker: WorkerProcess | None = None
        if settings.worker_process:
            self.worker = WorkerProcess(settings, secrets_of(settings))
            hand_off_lazy_listeners(self.app, self.worker.send)
            self.rt.deliverer.hand_kicks_to(self.worker.kick)
        # /healthz is as CONTRACT.md says (database and migrations): a dead worker is restarted
        # within seconds, and the acks, which is what Slack sees, go on meanwhile.
        self.health = Health(self.rt)
        self.server = Server(
            self.rt,
            app=None if settings.socket_mode else self.app,
            host=settings.host,
            port=settings.port,
            health=self.health,
        )
        extensions.install(self.server, self.rt)
        self.background: Background | None = None
        self.socket_handler: Any = None

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> Service:
        if self.worker is not None:
            self.worker.start()  # first, while this process has no other thread (see WorkerProcess)
        try:
            self._start()
        except BaseException:
            # Undo what started (the database may be unreachable): a worker left waiting for
            # START would keep this process from exiting.
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.server.start()
        log.info(
            "listening on %s:%d (%s mode)",
            self.settings.host,
            self.server.port,
            "Socket" if self.settings.socket_mode else "HTTP",
        )
        db.upgrade(self.engine)  # serialised across replicas; /healthz is 503 until it is done
        learn_identity(self.rt, self.stopping)
        if self.worker is not None:
            self.worker.begin()  # after the migrations: it uses the tables at once
        else:
            self.background = Background(self.rt).start()
        self.health.migrated.set()
        if self.settings.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert self.settings.slack_app_token is not None
            token = self.settings.slack_app_token.get_secret_value()
            self.socket_handler = SocketModeHandler(self.app, token, web_client=self.rt.client)
            threading.Thread(target=self._connect_socket, name="socket-mode", daemon=True).start()

    def stop(self) -> None:
        """Stop taking requests, finish those in flight and the work they left, then the rest."""
        self.stopping.set()
        if self.socket_handler is not None:
            self.socket_handler.close()
        self.server.stop()
        if self.worker is not None:
            self.worker.stop()  # it finishes what it was handed, then its scheduler and deliverer
        if self.background is not None:
            self.background.stop()  # the work acked requests left, then the scheduler and deliverer
        self.engine.dispose()

    def _connect_socket(self) -> None:
        """Connect Socket Mode, retrying while Slack is unreachable; /healthz keeps serving meanwhile."""
        delay = 1.0
        while not self.stopping.is_set():
            try:
                self.socket_handler.connect()
            except (SlackApiError, SlackClientError, OSError) as exc:
                log.warning("Socket Mode connection failed (%s); retrying in %.0fs", type(exc).__name__, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 60)
                continue
            log.info("connected to Slack over Socket Mode")
            return


def run(settings: Settings) -> int:
    settings.require_for_run()
    logs.configure(settings.log_level, secrets_of(settings))
    stop = threading.Event()
    from bot.__main__ import install_signal_handlers

    install_signal_handlers(stop)
    service = Service(settings).start()
    # Wake up now and then: a SIGTERM taken by another thread only sets a flag, and Python runs
    # the handler when the main thread next executes bytecode, which a bare wait() never does.
    while not stop.wait(timeout=0.5):
        pass
    log.info("stopping: no new requests, finishing those in flight")
    service.stop()
    log.info("stopped")
    return 0
