"""The sandbox's value types: what to run, with which limits, and what came of it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Status = Literal["passed", "failed", "timeout", "error", "killed"]
Resource = Literal["cpu", "memory", "processes", "file_size", "output"]
Tier = Literal["namespaces+uid", "namespaces", "none"]


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Resource limits of one program run.

    ``wall_seconds`` bounds the whole run (source and every check), after which every
    process the program started is SIGKILLed. ``cpu_seconds`` (RLIMIT_CPU; ``None``
    means ``ceil(wall_seconds) + 1``) only matters when it is below the wall clock or
    for CPU burnt in parallel. ``memory_bytes`` is RLIMIT_AS (address space, so a
    little above what a program touches). ``max_processes`` counts the program's own
    process and threads. stdout and stderr are each captured up to
    ``max_output_bytes``; one byte more kills the run. ``check_seconds`` limits each
    check in checks mode (see ``Program``).
    """

    wall_seconds: float = 3.0
    cpu_seconds: float | None = None
    memory_bytes: int = 1 << 30
    max_processes: int = 32
    max_open_files: int = 64
    max_file_bytes: int = 16 << 20
    max_output_bytes: int = 64 << 10
    check_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("wall_seconds", "check_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.cpu_seconds is not None and not (
            math.isfinite(self.cpu_seconds) and self.cpu_seconds > 0
        ):
            raise ValueError(f"cpu_seconds must be positive or None, got {self.cpu_seconds!r}")
        for name in (
            "memory_bytes",
            "max_processes",
            "max_open_files",
            "max_file_bytes",
            "max_output_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def cpu_limit(self) -> int:
        """RLIMIT_CPU in whole seconds (the kernel's granularity)."""
        if self.cpu_seconds is None:
            return math.ceil(self.wall_seconds) + 1
        return max(1, math.ceil(self.cpu_seconds))


@dataclass(frozen=True, kw_only=True)
class Program:
    """A full Python program, optionally followed by checks.

    It passes when ``source`` runs to the end without an exception (HumanEval:
    ``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"``).

    Checks mode (CodeT, B4): when ``checks`` is not empty, ``source`` runs first; if it
    raises, the status says so and every check is False. Otherwise each check (say one
    ``assert f(1) == 2`` line) runs in the same globals under its own
    ``limits.check_seconds`` alarm and is recorded True (ran without an exception) or
    False. The status is then "passed" whatever the checks gave, because it describes
    the program, and the check results are the answer. The wall clock covers the
    source and all checks, so leave room for them in ``limits.wall_seconds``; a check
    stuck in one C call cannot be interrupted by the alarm and ends the whole run
    ("timeout", with the checks finished so far kept and the rest False).
    """

    source: str
    limits: Limits = Limits()
    checks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise TypeError("source must be a str")
        object.__setattr__(self, "checks", tuple(self.checks))
        if not all(isinstance(check, str) for check in self.checks):
            raise TypeError("every check must be a str")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The verdict on one program, decided outside the sandboxed process.

    ``detail`` explains it: the failing assertion for "failed" ("AssertionError at line
    12: assert candidate(3) == 4"), the exception for "error" ("ZeroDivisionError:
    division by zero", "exited with status 0 before the tests finished", "crashed with
    signal SIGSEGV"), "no result after 3.0 s" for "timeout", and the limit for
    "killed" ("memory limit (1.0 GiB)"), whose ``resource`` names it. Untrusted text is
    capped and decoded with ``errors="replace"``.
    """

    status: Status
    detail: str
    resource: Resource | None
    seconds: float
    stdout: str
    stderr: str
    checks: tuple[bool, ...] = ()

    @property
    def passed(self) -> bool:
        """Convenience: ``status == "passed"``."""
        return self.status == "passed"


class SandboxUnavailable(RuntimeError):
    """No isolation is available on this machine and running without it was not allowed."""


@dataclass(frozen=True)
class Isolation:
    """The isolation tier in force, and one human sentence saying what it means."""

    tier: Tier
    description: str
