"""The load generator: signed requests from a fixed pool of threads, one keep-alive connection each.

The same pool, and so the same threads and connection handling, serves every target, so what
differs between the bot's latencies and the bare app's is the server side alone.
"""

from __future__ import annotations

import gc
import http.client
import math
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_requests import SignedRequest

PATH = "/slack/events"


@dataclass(frozen=True)
class Sample:
    seconds: float  # from just before the request is written until its whole response is read
    status: int  # 0 when the connection failed


class LoadPool:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load")
        self._local = threading.local()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _connection(self, port: int) -> http.client.HTTPConnection:
        connections: dict[int, http.client.HTTPConnection] = self._local.__dict__.setdefault("connections", {})
        connection = connections.get(port)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connections[port] = connection
        return connection

    def _drop(self, port: int) -> None:
        connection = self._local.__dict__.get("connections", {}).pop(port, None)
        if connection is not None:
            connection.close()

    def _one(self, port: int, request: SignedRequest) -> Sample:
        start = time.perf_counter()
        reused = port in self._local.__dict__.get("connections", {})
        try:
            status = self._send(port, request)
            return Sample(time.perf_counter() - start, status)
        except (OSError, http.client.HTTPException):
            self._drop(port)
            if not reused:
                return Sample(time.perf_counter() - start, 0)
        # The server closes a keep-alive connection left idle past its timeout (CLIENT_TIMEOUT, 5 s, as
        # between two phases); like any HTTP client, send once more on a new connection.
        try:
            status = self._send(port, request)
            return Sample(time.perf_counter() - start, status)
        except (OSError, http.client.HTTPException):
            self._drop(port)
            return Sample(time.perf_counter() - start, 0)

    def _send(self, port: int, request: SignedRequest) -> int:
        connection = self._connection(port)
        connection.request("POST", PATH, body=request.body, headers=request.headers)
        response = connection.getresponse()
        response.read()
        if response.will_close:
            self._drop(port)
        return response.status

    def warm(self, port: int, requests: Sequence[SignedRequest]) -> None:
        """Open every thread's connection to `port` (and let the server start its handler threads)."""
        self.run(port, requests)

    def run(self, port: int, requests: Sequence[SignedRequest]) -> list[Sample]:
        # No garbage collection of ours inside a round: once this process holds a first backend's
        # results, a gen-2 collection takes 50-70 ms, and one that fell in a round was timed as
        # the server's latency (the bare app's p99 on PostgreSQL, 86-121 ms in `--backend both`
        # against 22-30 ms alone). Collected before the round instead, outside the timings.
        gc.collect()
        gc.disable()
        try:
            futures = [self._pool.submit(self._one, port, request) for request in requests]
            return [future.result() for future in futures]
        finally:
            gc.enable()

    def submit_all(self, port: int, requests: Sequence[SignedRequest]) -> list[object]:
        """Start sending without waiting; pass the result to `gather`."""
        return [self._pool.submit(self._one, port, request) for request in requests]

    @staticmethod
    def gather(futures: list[object]) -> list[Sample]:
        return [f.result() for f in futures]  # type: ignore[attr-defined]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(samples: Sequence[Sample]) -> dict[str, float | int]:
    """Latency figures in milliseconds, over all samples (failures count at the time they failed)."""
    seconds = [s.seconds for s in samples]
    return {
        "n": len(samples),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else math.nan,
        "mean_ms": round(statistics.fmean(seconds) * 1000, 2) if seconds else math.nan,
        "non_200": sum(1 for s in samples if s.status != 200),
    }
