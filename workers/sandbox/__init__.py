"""Run untrusted, model-generated Python programs (unit tests) and judge them.

Each program runs in a forked child of a pre-started runner that lives in new mount,
network, PID, IPC and UTS namespaces (read-only host file system, fresh tmpfs
scratch, hidden data paths, no network), as an unprivileged uid with rlimits and a
seccomp filter, under a wall-clock kill of everything it starts. The verdict is
decided on the host from facts the program cannot forge; see ``_harness`` for the
remaining in-process threat model.

This package imports neither Django, Celery nor ``webapp``; configuration comes in as
arguments.
"""

from __future__ import annotations

from workers.sandbox.isolation import detect_isolation
from workers.sandbox.sandbox import Sandbox, Stopped, calibrated_limits
from workers.sandbox.types import (
    Isolation,
    Limits,
    Outcome,
    Program,
    Resource,
    SandboxUnavailable,
    Status,
)

__all__ = [
    "Isolation",
    "Limits",
    "Outcome",
    "Program",
    "Resource",
    "Sandbox",
    "SandboxUnavailable",
    "Status",
    "Stopped",
    "calibrated_limits",
    "detect_isolation",
]
