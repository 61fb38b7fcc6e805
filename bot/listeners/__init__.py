"""One module per Slack surface; each has `register(app, runtime)`.

A listener whose work can wait (the database, the Web API) registers that work with `after_ack`:
Bolt acks in the request's own thread and then runs the work on its listener pool (a lazy
listener), so an ack never queues behind other listeners' slow Slack calls or database writes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import Ack

log = logging.getLogger(__name__)
Work = TypeVar("Work", bound=Callable[..., None])


def acknowledge(ack: Ack) -> None:
    ack()


def after_ack(
    listener: Callable[..., Any],
    *,
    ack: Callable[..., None] = acknowledge,
    limit: threading.Semaphore | None = None,
) -> Callable[[Work], Work]:
    """`@after_ack(app.action(X))`: answer Slack with `ack`, then run the decorated function.

    `limit` caps how many of these run at once (the rest wait, without using CPU).
    """

    def register(work: Work) -> Work:
        listener(ack=ack, lazy=[_logged(work, limit)])
        return work

    return register


def _logged(work: Callable[..., None], limit: threading.Semaphore | None) -> Callable[..., None]:
    @functools.wraps(work)  # Bolt reads the wrapped function's parameters to pass its arguments
    def run(**kwargs: Any) -> None:
        try:
            with limit or contextlib.nullcontext():
                work(**kwargs)
        except Exception:
            # Bolt would log a lazy listener's failure in one line, without the traceback.
            log.exception("%s failed after the ack", work.__name__)

    return run
