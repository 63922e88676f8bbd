"""How many threads a CPU decode uses: the cores that other processes leave free.

torch's OpenMP threads spin while they wait for work, which makes back-to-back kernels
fast on idle cores. When another process holds one of the cores, a spinning thread
burns its time slices waiting for a partner that is not running: measured on a 2-core
machine with one busy process, SmolLM2-135M greedy decoding fell from 31 to 8 tokens/s
with two threads, while one thread kept 21. A passive wait policy (``OMP_WAIT_POLICY``)
avoids the spinning but costs a quarter of the speed on idle cores (22 tokens/s).

So the wait policy stays as it is and the thread count follows the load: ``ThreadPolicy``
reads the busy time of the process's cores from ``/proc/stat``, subtracts this
process's own CPU time, and gives the decode the cores the others left free (at least
one). The engine asks it at every decode step (a clock read unless ``MIN_INTERVAL`` has
passed) and starts a new interval at each batch, so the time between two batches (other
work, another program's turn) does not count as contention.
Where ``/proc/stat`` is missing, or with ``STRATLAB_ADAPTIVE_THREADS=0``, the thread
count is left alone.

This module imports neither Django nor Celery.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

#: Shortest interval (seconds) over which the load is judged; the engine asks at every
#: step and a shorter interval keeps the count without reading ``/proc/stat``.
MIN_INTERVAL = 0.25
#: Share of a core another process must hold for that core to count as taken.
TAKEN = 0.5

ADAPTIVE = os.environ.get("STRATLAB_ADAPTIVE_THREADS", "1") != "0"


def proc_stat_busy(cpus: frozenset[int], path: Path = Path("/proc/stat")) -> float | None:
    """Seconds the given CPUs have spent busy since boot (None when unreadable)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    found = False
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        if int(name[3:]) not in cpus:
            continue
        fields = [int(v) for v in rest.split()]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        busy += sum(fields[:8]) - idle
        found = True
    return busy / ticks if found else None


class ThreadPolicy:
    """Picks the thread count of this process's torch from the load of its cores."""

    def __init__(
        self,
        cpus: frozenset[int] | None = None,
        *,
        busy: Callable[[frozenset[int]], float | None] = proc_stat_busy,
        own: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cpus is None:
            cpus = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else frozenset(range(os.cpu_count() or 1))
        self.cpus = cpus
        self.cores = len(cpus)
        self._busy, self._own, self._clock = busy, own, clock
        self._last: tuple[float, float, float] | None = None
        self.threads = self.cores
        self.others = 0.0

    def choose(self, *, restart: bool = False) -> int:
        """Threads for the next steps: the cores not held by other processes (>= 1).

        Judged over the interval since the previous judgement, once it is at least
        ``MIN_INTERVAL`` long (the count stays as it is until then). ``restart`` starts
        a new interval without judging the one that ends (the gap between batches).
        """
        clock = self._clock()
        if not restart and self._last is not None and clock - self._last[0] < MIN_INTERVAL:
            return self.threads
        busy = self._busy(self.cpus)
        if busy is None:
            return self.threads
        now = (clock, busy, self._own())
        if restart or self._last is None:
            self._last = now
            return self.threads
        wall = now[0] - self._last[0]
        others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / wall
        self._last = now
        self.others = others
        taken = int(others + (1 - TAKEN))  # a core counts as taken from TAKEN of it on
        self.threads = max(1, min(self.cores, self.cores - taken))
        return self.threads


_POLICY: ThreadPolicy | None = None


def adapt(*, restart: bool = False) -> None:
    """Set torch's thread count from the load (no-op when turned off or unreadable);
    ``restart`` at the start of a batch (see ``ThreadPolicy.choose``)."""
    global _POLICY
    if not ADAPTIVE:
        return
    import torch

    if _POLICY is None:
        _POLICY = ThreadPolicy()
    threads = _POLICY.choose(restart=restart)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
