"""`incident-bot run`: start everything in order, and stop it cleanly on SIGTERM."""

from __future__ import annotations

import errno
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.incidents import outbox
from bot.oncall import paging
from bot.runtime import alert_route, logs, oncall_route, prometheus, status_route
from bot.runtime.background import Background, learn_identity
from bot.runtime.http import Health, HttpServer
from bot.runtime.intake import Intake
from bot.runtime.worker_process import WorkerProcess
from bot.settings import Settings, SettingsError
from bot.slack.app import create_app
from bot.slack.context import Runtime, TokenRejected
from bot.slack.listeners import Stage
from storage import db, urls
from storage.readonly import create_read_engine

log = logging.getLogger("incident-bot")

# The longest the ack path waits for the database (a lock, a connection): past it, Slack gets a
# 503 and retries, instead of an answer after its 3 s.
ACK_PATH_WAIT = 2.0


def secrets_of(settings: Settings) -> tuple[str, ...]:
    values = (
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.alertmanager_token,
        settings.oncall_feed_secret,
        settings.smtp_url,
        settings.page_webhook_secret,
    )
    return tuple(v.get_secret_value() for v in values if v is not None)


class Service:
    """The running bot. Tests start this same object in-process, so they test the real wiring.

    This process answers Slack (the ACK app and the intake). With WORKER_PROCESS (the default) a
    worker process does the rest (bot/runtime/worker_process.py); without it, `background` does,
    here. Either way the work goes through the inbox in the database, never through memory.
    """

    def __init__(self, settings: Settings) -> None:
        settings.require_for_run()
        urls.require_creatable(settings.database_url)  # a new SQLite file, never a missing folder
        self.settings = settings
        self.stopping = threading.Event()
        # Set when the bot cannot go on (Slack rejected the token for good): `run` then stops it.
        self.failed = threading.Event()
        self.failure: str | None = None
        self.engine = db.create_db_engine(settings.database_url, wait=ACK_PATH_WAIT)
        self.rt = Runtime.build(settings, self.engine)
        self.app = create_app(self.rt, Stage.ACK)
        self.worker: WorkerProcess | None = None
        self.background: Background | None = None
        self._background_engine: Any = None
        if settings.worker_process:
            self.worker = WorkerProcess(settings, secrets_of(settings), self.engine)
            self.wake = self.worker.wake
        else:
            self._background_engine = db.create_db_engine(settings.database_url)
            work_rt = Runtime.build(settings, self._background_engine, client=self.rt.client, identity=self.rt.identity)
            self.background = Background(work_rt)
            self.wake = self.background.wake
        # The outbox is delivered where the background runs: kicks from here (a stored form, an
        # alert) wake it there.
        self.rt.deliverer.hand_kicks_to(self.wake)
        self.intake = Intake(self.app, self.engine, stored=self.wake, wait=ACK_PATH_WAIT)
        # /healthz is as CONTRACT.md says (database and migrations): a dead worker is restarted
        # within seconds, and the acks, which is what Slack sees, go on meanwhile.
        self.health = Health(self.rt)
        self.health.details["dead_letters"] = outbox.count_dead_letters
        self.health.details["page_dead_letters"] = paging.dead_notices  # e-mail / webhook notices
        self.server = HttpServer(host=settings.host, port=settings.port, health=self.health)
        # In both modes, like /healthz; keep it inside (README, Deploying it).
        self.metrics = prometheus.Metrics(create_read_engine(settings.database_url))
        self.server.add_route("GET", prometheus.PATH, self.metrics.route)
        if not settings.socket_mode:
            self.server.add_route("POST", "/slack/events", self._slack)
        alerts = alert_route.make_route(self.rt)  # None while ALERTMANAGER_TOKEN is unset
        if alerts is not None:
            self.server.add_route("POST", alert_route.PATH, alerts)
        self.status = status_route.install(self.server, self.rt, ready=self.health.migrated.is_set)
        feed = oncall_route.make_route(self.rt)  # None without schedules (or a key for the tokens)
        if feed is not None:
            self.server.add_prefix_route(oncall_route.PREFIX, oncall_route.prefix_route(feed))
        self.socket_client: Any = None
        self._socket_lock = threading.Lock()
        self._socket_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> Service:
        if self.worker is not None:
            self.worker.start()  # first, while this process has no other thread and no socket
        try:
            self._start()
        except BaseException:
            # Undo what started (the database may be unreachable): a worker left waiting for
            # START would keep this process from exiting.
            self.stop()
            raise
        return self

    def _start(self) -> None:
        try:
            self.server.start()
        except OSError as exc:
            raise SettingsError(listen_problem(self.settings.host, self.settings.port, exc)) from None
        log.info(
            "listening on %s:%d (%s mode)",
            self.settings.host,
            self.server.port,
            "Socket" if self.settings.socket_mode else "HTTP",
        )
        with urls.explained(self.settings.database_url):
            db.upgrade(self.engine)  # serialised across replicas; /healthz is 503 until it is done
        learn_identity(self.rt, self.stopping, rejected=self._token_rejected)
        if self.worker is not None:
            self.worker.begin()  # after the migrations: it uses the tables at once
        if self.background is not None:
            self.background.start()
        self.health.migrated.set()
        if self.settings.socket_mode:
            self._socket_thread = threading.Thread(target=self._connect_socket, name="socket-mode", daemon=True)
            self._socket_thread.start()

    def _token_rejected(self, exc: TokenRejected) -> None:
        self.failure = str(exc)
        self.failed.set()

    def stop(self) -> None:
        """Stop taking requests, finish those in flight and the work they left, then the rest."""
        self.stopping.set()
        with self._socket_lock:  # the connect thread may be handing over a client right now
            if self.socket_client is not None:
                self.socket_client.close()
        if self._socket_thread is not None:
            self._socket_thread.join(timeout=5)  # a connect() under way finishes, and closes what it opened
        self.server.stop()
        if self.worker is not None:
            self.worker.stop()  # it finishes the requests in hand, then its scheduler and deliverer
        if self.background is not None:
            self.background.stop()
        self.intake.close()
        self.engine.dispose()
        self.metrics.close()
        if self._background_engine is not None:
            self._background_engine.dispose()

    # -- Slack ----------------------------------------------------------------------------------

    def _slack(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        started = time.perf_counter()
        if not self.health.migrated.is_set():
            return 503, b"starting", {}
        raw = body.decode("utf-8", errors="replace")
        try:
            # BoltRequest only reads the headers; its dict[str, str | Sequence[str]] rejects a dict[str, str].
            request = BoltRequest(body=raw, headers=headers)  # type: ignore[arg-type]
        except ValueError:  # a JSON body that does not parse (cut short, or not Slack's)
            return 400, b"malformed body", {}
        response = self.intake.answer(request, raw)
        self.metrics.observe_ack(request.body, response.status, time.perf_counter() - started)
        flat = {k: v[0] if isinstance(v, list) else str(v) for k, v in response.headers.items()}
        return response.status, (response.body or "").encode("utf-8"), flat

    def _connect_socket(self) -> None:
        """Connect Socket Mode, retrying while Slack is unreachable; /healthz keeps serving meanwhile."""
        from slack_sdk.socket_mode import SocketModeClient

        assert self.settings.slack_app_token is not None
        client = SocketModeClient(
            app_token=self.settings.slack_app_token.get_secret_value(), web_client=self.rt.client
        )
        client.socket_mode_request_listeners.append(self._on_socket_request)
        with self._socket_lock:
            if self.stopping.is_set():
                client.close()
                return
            self.socket_client = client
        delay = 1.0
        while not self.stopping.is_set():
            try:
                client.connect()
            except (SlackApiError, SlackClientError, OSError) as exc:
                log.warning("Socket Mode connection failed (%s); retrying in %.0fs", type(exc).__name__, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 60)
                continue
            if self.stopping.is_set():
                # stop() closed the client while connect() was under way, and connect() turns
                # reconnecting back on and starts its monitor: close again, or that monitor
                # keeps calling apps.connections.open after the bot has stopped.
                client.close()
                return
            log.info("connected to Slack over Socket Mode")
            return

    def _on_socket_request(self, client: Any, request: Any) -> None:
        """One Socket Mode envelope: the same intake as HTTP, then the envelope's ack."""
        from slack_sdk.socket_mode.response import SocketModeResponse

        started = time.perf_counter()
        headers: dict[str, str | Sequence[str]] = {}
        if request.retry_attempt is not None:
            headers["x-slack-retry-num"] = str(request.retry_attempt)
        if request.retry_reason is not None:
            headers["x-slack-retry-reason"] = str(request.retry_reason)
        bolt_request = BoltRequest(body=request.payload, headers=headers, mode="socket_mode")
        response = self.intake.answer(bolt_request, json.dumps(request.payload))
        self.metrics.observe_ack(request.payload, response.status, time.perf_counter() - started)
        if response.status != 200:
            return  # no ack: Slack sends the envelope again
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, **_socket_payload(response))
        )


def _socket_payload(response: BoltResponse) -> dict[str, Any]:
    # Over Socket Mode an answer (an ephemeral text, view errors) rides in the envelope's ack.
    if not response.body:
        return {}
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        return {"payload": json.loads(response.body)}
    return {"payload": {"text": response.body}}


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`: the main thread then stops the service in order."""

    def handle(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """One line for a listening socket that could not be opened, naming the setting to change."""
    code = exc.errno
    if code == errno.EADDRINUSE:
        return f"PORT {port} is already in use on {host}: stop what listens there, or set PORT to a free port"
    if code == errno.EACCES:
        return f"PORT {port} needs privileges this process lacks: use a port above 1023"
    if code in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return f"HOST {host!r} is not an address of this machine: use 0.0.0.0, or one of its addresses"
    return f"cannot listen on HOST {host!r}, PORT {port}: {exc.strerror or type(exc).__name__}"


def _preflight(settings: Settings) -> None:
    """What makes `run` fail at once, checked before anything starts (so the one line is alone)."""
    settings.require_for_run()
    urls.require_creatable(settings.database_url)
    if settings.port:
        # The server binds the same way (SO_REUSEADDR); a port taken between here and there still
        # gives the same line, from Service._start.
        try:
            family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
            with socket.create_server((settings.host, settings.port), family=family):
                pass
        except OSError as exc:
            raise SettingsError(listen_problem(settings.host, settings.port, exc)) from None


def run(settings: Settings) -> int:
    _preflight(settings)
    logs.configure(settings.log_level, secrets_of(settings))
    for warning in settings.config_file_warnings():
        log.warning("%s", warning)
    stop = threading.Event()
    install_signal_handlers(stop)
    service = Service(settings).start()
    # Wake up now and then: a SIGTERM taken by another thread only sets a flag, and Python runs
    # the handler when the main thread next executes bytecode, which a bare wait() never does.
    while not stop.wait(timeout=0.5) and not service.failed.is_set():
        pass
    log.info("stopping: no new requests, finishing those in flight")
    service.stop()
    log.info("stopped")
    if service.failure is not None:
        raise SettingsError(service.failure)  # one line, and exit 2 (bot/cli.py)
    return 0
