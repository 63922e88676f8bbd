"""``Sandbox``: run untrusted Python programs on a pool of pre-started, confined runners.

Each worker slot owns one runner (a fork server inside its own namespaces, see
``_server.py``), so a program costs one ``fork`` of a small interpreter that has
already imported the common standard library, not a fresh interpreter. A slot whose
runner dies or stops answering gives the job in flight an "error" verdict (never
"passed") and starts a new runner for the next job.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from workers.sandbox.isolation import (
    DEFAULT_UID_BASE,
    UidLease,
    detect_isolation,
    lease_uid,
    needs_uid,
    runner_config,
)
from workers.sandbox.runner import REPLY_GRACE_SECONDS, Runner, RunnerError
from workers.sandbox.types import Isolation, Limits, Outcome, Program
from workers.sandbox.verdict import RunFacts, decide

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = Limits()


class Stopped(RuntimeError):
    """``run``'s ``keep_going`` turned false: programs running then were killed and the
    rest never started, so there are no outcomes."""


def calibrated_limits(
    canonical_seconds: float,
    base: Limits = DEFAULT_LIMITS,
    *,
    factor: float = 4.0,
    floor: float = 1.0,
    ceiling: float = 20.0,
) -> Limits:
    """``base`` with ``wall_seconds = clamp(factor * canonical_seconds, floor, ceiling)``.

    As evalplus does: a problem's time limit follows how long its reference solution
    takes, so slow-but-correct completions of heavy problems are not timed out while
    light problems keep a tight limit. ``cpu_seconds`` follows unless ``base`` fixes it.
    """
    if not floor <= ceiling:
        raise ValueError(f"floor ({floor}) must not exceed ceiling ({ceiling})")
    wall = min(max(factor * max(canonical_seconds, 0.0), floor), ceiling)
    return replace(base, wall_seconds=wall)


def job_for(program: Program, nonce: str) -> dict[str, Any]:
    """The job frame sent to a runner (limits resolved to the numbers it applies)."""
    limits = program.limits
    return {
        "source": program.source,
        "checks": list(program.checks),
        "nonce": nonce,
        "limits": {
            "wall_seconds": limits.wall_seconds,
            "cpu_seconds": limits.cpu_limit,
            "memory_bytes": limits.memory_bytes,
            "max_processes": limits.max_processes,
            "max_open_files": limits.max_open_files,
            "max_file_bytes": limits.max_file_bytes,
            "max_output_bytes": limits.max_output_bytes,
            "check_seconds": limits.check_seconds,
        },
    }


def _runner_failure(program: Program, detail: str) -> Outcome:
    """The verdict when the runner, not the program, failed: an error, never a pass."""
    return Outcome(
        status="error",
        detail=detail,
        resource=None,
        seconds=0.0,
        stdout="",
        stderr="",
        checks=(False,) * len(program.checks),
    )


class _Slot:
    """One worker slot: a runner, its uid lease, and the restart logic."""

    def __init__(self, config: dict[str, Any], lease: UidLease | None) -> None:
        self.config = config
        self.lease = lease
        self.runner = Runner(config)

    def ensure_started(self) -> None:
        if not self.runner.alive:
            self.runner.start()

    def execute(self, program: Program) -> Outcome:
        nonce = secrets.token_hex(16)
        job = job_for(program, nonce)
        timeout = program.limits.wall_seconds + REPLY_GRACE_SECONDS
        for attempt in (1, 2):
            try:
                self.ensure_started()
                reply = self.runner.execute(job, timeout)
                break
            except RunnerError as exc:
                never_sent = isinstance(exc.__cause__, BrokenPipeError)
                if never_sent and attempt == 1:
                    logger.warning("sandbox runner was gone; restarting it: %s", exc)
                    continue
                logger.warning("sandbox runner failed during a program: %s", exc)
                return _runner_failure(program, str(exc))
        try:
            facts = RunFacts.from_reply(reply)
        except (TypeError, ValueError) as exc:
            self.runner.stop()
            return _runner_failure(program, f"the sandbox runner sent a malformed reply ({exc})")
        return decide(facts, program.limits, nonce, len(program.checks))

    def close(self) -> None:
        self.runner.stop()
        if self.lease is not None:
            self.lease.release()


class Sandbox:
    """A pool of ``workers`` confined runners; ``run`` is thread-safe.

    ``hidden_paths`` (the app's data directory: database, secrets, model cache) are
    covered by an empty read-only file system inside every runner. ``allow_unisolated``
    lets it run where no isolation is available (see ``detect_isolation``).
    ``uid_base`` is the first uid tried for programs when the host is root.

    Create it in the process that uses it: its runners are tied to that process (a
    forked copy, such as a prefork Celery child, must create its own).
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        allow_unisolated: bool = False,
        hidden_paths: Sequence[str | Path] = (),
        uid_base: int = DEFAULT_UID_BASE,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.isolation: Isolation = detect_isolation(allow_unisolated=allow_unisolated)
        self.hidden_paths = tuple(os.path.realpath(p) for p in hidden_paths)
        if self.isolation.tier == "none" and self.hidden_paths:
            logger.warning("sandbox tier none cannot hide %s", ", ".join(self.hidden_paths))
        self._pid = os.getpid()
        self._closed = False
        self._slots: list[_Slot] = []
        self._idle: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        # Slots running a program now, and the stop flags of their ``run`` calls.
        self._busy: dict[_Slot, threading.Event | None] = {}
        self._busy_lock = threading.Lock()
        try:
            for _ in range(workers):
                lease = lease_uid(uid_base) if needs_uid(self.isolation.tier) else None
                config = runner_config(self.isolation.tier, lease, self.hidden_paths)
                self._slots.append(_Slot(config, lease))
            self._start_all()
        except BaseException:
            self.close()
            raise
        for slot in self._slots:
            self._idle.put(slot)
        hidden = set(self._slots[0].runner.info.get("hidden", self.hidden_paths))
        for path in self.hidden_paths:
            if path not in hidden:
                logger.warning("hidden path %s does not exist; there is nothing to hide", path)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
        logger.info("sandbox ready: %d runners, tier %s", workers, self.isolation.tier)

    def _start_all(self) -> None:
        """Start every runner at once (each spends most of its start-up importing)."""
        errors: list[BaseException] = []

        def start(slot: _Slot) -> None:
            try:
                slot.ensure_started()
            except BaseException as exc:  # re-raised below in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(slot,)) for slot in self._slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    @property
    def uids(self) -> tuple[int, ...]:
        """The uids programs run as (empty when no uid is dropped to)."""
        return tuple(slot.lease.uid for slot in self._slots if slot.lease is not None)

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("this Sandbox is closed")
        if os.getpid() != self._pid:
            raise RuntimeError("a Sandbox cannot be used after fork; create one per process")

    def run_one(self, program: Program) -> Outcome:
        """Run one program on the next free runner (blocks while all are busy)."""
        outcome = self._run_unless(program, None)
        assert outcome is not None, "a program without a stop flag always runs"
        return outcome

    def _run_unless(self, program: Program, stop: threading.Event | None) -> Outcome | None:
        """``run_one``, or None without running the program once ``stop`` is set."""
        self._check_usable()
        slot = self._idle.get()
        try:
            with self._busy_lock:
                if stop is not None and stop.is_set():
                    return None
                self._busy[slot] = stop
            return slot.execute(program)
        finally:
            with self._busy_lock:
                self._busy.pop(slot, None)
            self._idle.put(slot)

    def run(
        self, programs: Sequence[Program], *, keep_going: Callable[[], bool] | None = None,
        poll_seconds: float = 0.5,
    ) -> list[Outcome]:
        """Run ``programs``, up to ``workers`` at once; outcomes in the same order.

        ``keep_going`` is asked every ``poll_seconds`` while they run (in the calling
        thread): once it answers False, no further program starts, the ones running are
        killed (their runners restart for the next call) and ``Stopped`` is raised.
        """
        self._check_usable()
        if keep_going is None:
            if len(programs) <= 1:
                return [self.run_one(program) for program in programs]
            return list(self._executor.map(self.run_one, programs))
        stop = threading.Event()
        futures = [self._executor.submit(self._run_unless, program, stop)
                   for program in programs]
        pending = set(futures)
        while pending:
            if not stop.is_set() and not keep_going():
                stop.set()
                self._kill_running(stop)
            pending = wait(pending, timeout=poll_seconds).not_done
        if stop.is_set():
            raise Stopped("stopped: the programs running were killed, the rest not started")
        return [outcome for future in futures if (outcome := future.result()) is not None]

    def _kill_running(self, stop: threading.Event) -> None:
        """Kill the runners running a program of the ``run`` call that owns ``stop``."""
        with self._busy_lock:
            slots = [slot for slot, flag in self._busy.items() if flag is stop]
        for slot in slots:
            slot.runner.kill()
        if slots:
            logger.info("stopped: killed %d program(s) in flight", len(slots))

    def close(self) -> None:
        """Kill every runner (and with it everything still running inside)."""
        self._closed = True
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        for slot in self._slots:
            slot.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
