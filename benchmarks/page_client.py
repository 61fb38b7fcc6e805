"""Subprocess entry: status page clients, GETs over keep-alive HTTP/1.1 connections on loopback,
asking for gzip as browsers do (HEADERS).

    python benchmarks/page_client.py PORT closed THREADS REQUESTS PATH[,PATH...]
    python benchmarks/page_client.py PORT open RATE THREADS PATH[,PATH...]

A process of its own, so its threads never share a GIL with the load generator that times the acks
(nor with the bot). Each thread holds one connection and sends the paths in turn. It opens every
connection (one GET each), prints "ready", then obeys one-line commands on stdin:
  go     closed: send REQUESTS in all, each thread sending its next as soon as it has its answer
         (THREADS concurrent clients), then print the result; open: send RATE requests per second
         in all, on a fixed schedule (each thread every THREADS/RATE s), until `stop`
  stop   (open) stop sending and print the result
  quit   exit
The result is one JSON line: {"seconds", "samples": {path: [ms, ...]}, "status": {path: {code: n}}}.
"""

from __future__ import annotations

import http.client
import itertools
import json
import sys
import threading
import time
from collections import Counter, defaultdict

# What browsers, `curl --compressed` and monitors send: the bot answers its cached pages gzipped.
HEADERS = {"Accept-Encoding": "gzip, deflate"}


class Client:
    def __init__(self, port: int, paths: list[str]) -> None:
        self.port = port
        self.paths = itertools.cycle(paths)
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter[int]] = defaultdict(Counter)

    def get(self, path: str | None = None) -> None:
        path = path or next(self.paths)
        start = time.perf_counter()
        try:
            self.connection.request("GET", path, headers=HEADERS)
            response = self.connection.getresponse()
            response.read()
            status = response.status
            if response.will_close:
                self.connection.close()  # http.client reopens it on the next request
        except (OSError, http.client.HTTPException):
            self.connection.close()
            status = 0
        self.samples[path].append((time.perf_counter() - start) * 1000)
        self.status[path][status] += 1

    def reset(self) -> None:
        self.samples.clear()
        self.status.clear()


def result(clients: list[Client], seconds: float) -> str:
    samples: dict[str, list[float]] = defaultdict(list)
    status: dict[str, Counter[int]] = defaultdict(Counter)
    for client in clients:
        for path, values in client.samples.items():
            samples[path] += [round(v, 3) for v in values]
        for path, counts in client.status.items():
            status[path].update(counts)
        client.reset()
    return json.dumps({"seconds": round(seconds, 3), "samples": samples, "status": status})


def closed(clients: list[Client], requests: int) -> float:
    left = iter(range(requests))
    lock = threading.Lock()

    def loop(client: Client) -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            client.get()

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def open_loop(clients: list[Client], rate: float, stop: threading.Event) -> float:
    every = len(clients) / rate

    def loop(client: Client, offset: float, start: float) -> None:
        due = start + offset
        while not stop.is_set():
            pause = due - time.perf_counter()
            if pause > 0:
                stop.wait(pause)
                if stop.is_set():
                    return
            client.get()
            due += every  # a fixed schedule: a slow answer does not lower the rate that follows

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(c, i * every / len(clients), start)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    port, mode = int(argv[0]), argv[1]
    if mode == "closed":
        threads, requests, paths = int(argv[2]), int(argv[3]), argv[4].split(",")
        rate = 0.0
    else:
        rate, threads, paths = float(argv[2]), int(argv[3]), argv[4].split(",")
        requests = 0
    clients = [Client(port, paths) for _ in range(threads)]
    for index, client in enumerate(clients):
        client.get(paths[index % len(paths)])  # open the connection
        client.reset()
    print("ready", flush=True)
    while True:
        command = sys.stdin.readline().strip()
        if command in ("quit", ""):
            break
        if command != "go":
            continue
        if mode == "closed":
            print(result(clients, closed(clients, requests)), flush=True)
            continue
        print(result(clients, open_until_stop(clients, rate)), flush=True)
    return 0


def open_until_stop(clients: list[Client], rate: float) -> float:
    stop = threading.Event()
    seconds: list[float] = []
    runner = threading.Thread(target=lambda: seconds.append(open_loop(clients, rate, stop)))
    runner.start()
    while sys.stdin.readline().strip() not in ("stop", ""):
        pass
    stop.set()
    runner.join()
    return seconds[0]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
