"""One module per Slack surface; each has `register(app, runtime, stage)`.

A listener whose work can wait (the database, the Web API) registers that work with `after_ack`.
The same listeners are registered twice, in two Bolt apps (bot/app.py):
- `Stage.ACK`, the app that answers Slack: only the ack functions, so an answer never waits for
  work. The request is then stored in the inbox (bot/runtime/intake.py) before the answer leaves.
- `Stage.WORK`, the app the inbox workers dispatch stored requests to: the ack functions (their
  answer goes nowhere) and the work, as Bolt lazy listeners run inline by `InlineExecutor`, so the
  worker knows when the work is over and marks the request done.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack.blocks import messages
from storage import db
from storage.inbox import ClaimLost

log = logging.getLogger(__name__)
Work = TypeVar("Work", bound=Callable[..., None])


class Stage(StrEnum):
    ACK = "ack"  # answer Slack; the work comes later, from the inbox
    WORK = "work"  # do the work of a stored request


def acknowledge(ack: Ack) -> None:
    ack()


def after_ack(
    listener: Callable[..., Any],
    stage: Stage,
    *,
    ack: Callable[..., None] = acknowledge,
    limit: threading.Semaphore | None = None,
) -> Callable[[Work], Work]:
    """`@after_ack(app.action(X), stage)`: answer Slack with `ack`; the decorated function is the work.

    `limit` caps how many of these run at once (the rest wait, without using CPU).
    """

    def register(work: Work) -> Work:
        if stage is Stage.ACK:
            listener(ack)
        else:
            listener(ack=ack, lazy=[_logged(work, limit)])
        return work

    return register


class InlineExecutor(Executor):
    """Runs what Bolt submits at once, in the caller's thread: the WORK app's lazy listeners.

    The inbox worker's thread then holds the request's claim (a context variable) while the work
    runs, and `dispatch` returns only when the work is over.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        # Anything else (WorkDeferred, SystemExit) goes up to the inbox worker that dispatched.
        return future


class WorkDeferred(BaseException):
    """The work could not reach the database: the request stays in the inbox and is tried again.

    A BaseException so that it passes Bolt's own `except Exception` on its way to the worker.
    """


def _logged(work: Callable[..., None], limit: threading.Semaphore | None) -> Callable[..., None]:
    @functools.wraps(work)  # Bolt reads the wrapped function's parameters to pass its arguments
    def run(**kwargs: Any) -> None:
        try:
            with limit or contextlib.nullcontext():
                work(**kwargs)
        except sa.exc.SQLAlchemyError as exc:
            if not db.is_disconnect(exc):
                log.exception("%s failed after the ack", work.__name__)
                return
            log.warning("%s: the database is unavailable; the request will be tried again", work.__name__)
            raise WorkDeferred from exc
        except ClaimLost as exc:
            # Our lease ran out while the work ran and another worker took the request over: our
            # transaction rolled back, and theirs does the work once.
            log.info("%s: %s", work.__name__, exc)
        except Exception:
            # Bolt would log a lazy listener's failure in one line, without the traceback.
            log.exception("%s failed after the ack", work.__name__)

    return run


def open_modal(client: WebClient, tell: Callable[[str], object], trigger_id: str, view: dict[str, Any]) -> None:
    """Open a modal; if Slack refuses, log its error code and tell the user (`tell`) what to do."""
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        code = exc.response.get("error") if exc.response is not None else None
        # expired_trigger_id: trigger_ids last 3 s, so a slow Slack or a long queue means asking again.
        log.warning("views.open refused: %s", code or "unknown error")
        tell(messages.form_not_opened(f"Slack answered `{code or 'error'}`"))
    except (SlackClientError, OSError) as exc:
        log.warning("views.open failed: %s", type(exc).__name__)
        tell(messages.form_not_opened("Slack did not answer"))


def tell(client: WebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral answer to whoever clicked, where they clicked (or a DM); a failure is only logged."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    user = body["user"]["id"]
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            client.chat_postMessage(channel=user, text=text)
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("could not tell %s: %s", user, type(exc).__name__)
