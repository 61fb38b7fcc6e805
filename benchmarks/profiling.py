"""Optional profiles (`run.py --profile`): py-spy on the bot process, pyinstrument in-process.

Neither tool is a dependency of the project; install them yourself (`pip install py-spy
pyinstrument`). Profiles land in benchmarks/results/profiles/.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from procs import RESULTS

PROFILES = RESULTS / "profiles"


@contextlib.contextmanager
def py_spy(pids: dict[str, int | None], name: str, *, enabled: bool) -> Iterator[None]:
    """Sample each process (all threads, idle ones excluded) while the block runs; collapsed
    stacks to NAME-<part>.txt, one file per entry of `pids` (the bot's front and its worker)."""
    exe = shutil.which("py-spy")
    if not enabled or exe is None:
        yield
        return
    PROFILES.mkdir(parents=True, exist_ok=True)
    recorders = []
    for part, pid in pids.items():
        if pid is None:
            continue
        out = PROFILES / f"{name}-{part}.txt"
        argv = [exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking", "-o", str(out)]
        recorders.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(30)
            except subprocess.TimeoutExpired:
                recorder.kill()


@contextlib.contextmanager
def pyinstrument(name: str, *, enabled: bool) -> Iterator[None]:
    """Profile this process while the block runs; a text report to NAME.txt."""
    if not enabled:
        yield
        return
    try:
        from pyinstrument import Profiler
    except ImportError:
        yield
        return
    PROFILES.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(PROFILES / f"{name}.txt").write_text(profiler.output_text(unicode=True, show_all=False))


def top_frames(path: Path, *, own: bool, limit: int = 25) -> list[tuple[float, str]]:
    """From py-spy's collapsed stacks: the share of samples in each frame (own: leaf only; else inclusive)."""
    totals: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        chosen = frames[-1:] if own else list(dict.fromkeys(frames))
        for frame in chosen:
            totals[frame] = totals.get(frame, 0) + count
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:limit]
    return [(round(100 * count / max(samples, 1), 1), frame) for frame, count in ranked]
