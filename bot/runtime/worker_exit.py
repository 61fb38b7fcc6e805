"""Knowing when the worker process has really ended, however it was started.

A forked or spawned worker is the front's child: its `sentinel` becomes ready when it exits.
One from multiprocessing's forkserver is the forkserver's child, and its sentinel is the
front's pipe to the forkserver: it also becomes ready when the forkserver dies while the worker
runs on. A SIGTERM to the whole process group does that (the forkserver keeps the default
action; the worker ignores SIGTERM until the front sends STOP), and so may an operator or the
OOM killer. Taken for the worker's death, it had the front give back the requests a live
worker held, start a second worker beside it, and exit without waiting for it. A pidfd
(Linux 5.3) refers to the worker itself, so that is what is waited on where there is one.

Two threads wait for the same worker (the front's watcher, to restart a dead one, and `stop`),
and only one can reap it: the other's waitpid then fails, which multiprocessing reads as "still
running". So the end is read off the sentinel or the pidfd, never off waitpid, and the reaping
(`join`) is done under a lock, by whichever thread comes first; the other finds it done. Before,
`stop` could log "did not stop" and SIGKILL a worker that had just exited cleanly.
"""

from __future__ import annotations

import contextlib
import os
import threading
from multiprocessing.connection import wait
from typing import Any


class WorkerExit:
    """The worker's process, and its end: `wait` for it, ask whether it `ended`, read its `exitcode`."""

    def __init__(self, process: Any, *, forkserver: bool) -> None:
        self.process = process
        self._pidfd: int | None = None
        self._reaping = threading.Lock()
        if forkserver:
            # Taken just after the start: the worker cannot have been reaped yet, and so its pid
            # not reused, unless it already exited, which pidfd_open reports.
            with contextlib.suppress(AttributeError, OSError):  # no pidfd here: the sentinel
                self._pidfd = os.pidfd_open(process.pid)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds (None: for ever) for the worker to end; True once it has."""
        if not wait([self._end], timeout):
            return False
        with self._reaping:
            # It has ended, so this returns at once (a forkserver still running sends the exit
            # code just after; one that died with it sends none, hence the bound).
            self.process.join(None if self._pidfd is None else 1.0)
        return True

    def ended(self) -> bool:
        return bool(wait([self._end], 0))

    @property
    def _end(self) -> Any:
        """What becomes ready when the worker ends: the pidfd, or the child's own sentinel."""
        return self._pidfd if self._pidfd is not None else self.process.sentinel

    def kill(self) -> None:
        self.process.kill()

    def close(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None
