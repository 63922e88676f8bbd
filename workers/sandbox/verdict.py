"""Turn the raw facts of one run into an ``Outcome``: the verdict is decided here, on the host.

The runner reports what it saw (exit status or signal, whether it killed the run and
why, CPU time, captured streams, the bytes of the private result channel). Nothing the
program printed counts: a pass needs a ``source ok`` and an ``end`` frame, each
carrying this run's nonce, an exit status of 0 and no limit hit.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from workers.sandbox.types import Limits, Outcome, Resource, Status

#: Untrusted text kept in ``Outcome.detail``.
DETAIL_CHARS = 2048
_CATEGORY_RESOURCE: dict[str, Resource] = {
    "memory": "memory",
    "processes": "processes",
    "file_size": "file_size",
}


@dataclass(frozen=True)
class RunFacts:
    """What the runner observed about one run (see ``_server.Runner._supervise``)."""

    exit_code: int | None
    signal: int | None
    kill: str | None  # "timeout", "output", "result" (flooded result channel) or None
    cpu_seconds: float
    seconds: float
    processes: int  # processes reaped after the run, the program's own included
    stdout: str
    stderr: str
    result: str

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> RunFacts:
        """Validate a runner's reply frame (it is only as trustworthy as the runner)."""

        def optional_int(key: str) -> int | None:
            value = reply.get(key)
            return None if value is None else int(value)

        return cls(
            exit_code=optional_int("exit_code"),
            signal=optional_int("signal"),
            kill=None if reply.get("kill") is None else str(reply["kill"]),
            cpu_seconds=float(reply.get("cpu_seconds") or 0.0),
            seconds=float(reply.get("seconds") or 0.0),
            processes=int(reply.get("processes") or 0),
            stdout=str(reply.get("stdout") or ""),
            stderr=str(reply.get("stderr") or ""),
            result=str(reply.get("result") or ""),
        )


@dataclass(frozen=True)
class Report:
    """The harness's frames, once authenticated by the nonce."""

    source: tuple[str, str] | None  # (category, detail)
    checks: tuple[bool, ...]
    ended: bool
    tampered: bool


def parse_report(result: str, nonce: str) -> Report:
    """Parse the result channel; any frame without the nonce, or out of order, is tampering.

    A last frame cut short (the run was killed while writing it) is ignored.
    """
    data = result.encode("utf-8", "replace")
    expected = nonce.encode("ascii")
    source: tuple[str, str] | None = None
    checks: list[bool] = []
    ended = False
    pos = 0
    while pos < len(data):
        newline = data.find(b"\n", pos)
        if newline < 0:
            break  # an incomplete header at the very end
        header = data[pos:newline].split(b" ")
        if len(header) != 3 or header[0] != expected or not header[2].isdigit() or ended:
            return Report(source, tuple(checks), ended, tampered=True)
        kind, length = header[1], int(header[2])
        payload = data[newline + 1 : newline + 1 + length]
        if len(payload) < length:
            break
        pos = newline + 1 + length
        if kind == b"source" and source is None:
            category, _, detail = payload.decode("utf-8", "replace").partition("\n")
            source = (category, detail)
        elif kind == b"check" and source is not None and payload in (b"0", b"1"):
            checks.append(payload == b"1")
        elif kind == b"end" and source is not None:
            ended = True
        else:
            return Report(source, tuple(checks), ended, tampered=True)
    return Report(source, tuple(checks), ended, tampered=False)


def format_size(size: int) -> str:
    """``1 << 30`` -> ``"1.0 GiB"``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def format_seconds(seconds: float) -> str:
    """``3`` -> ``"3.0 s"``, ``0.25`` -> ``"0.25 s"``."""
    return f"{round(float(seconds), 3)} s"


def limit_detail(resource: Resource, limits: Limits) -> str:
    """The human name of the limit that killed a run, with its value."""
    return {
        "cpu": f"cpu time limit ({limits.cpu_limit} s)",
        "memory": f"memory limit ({format_size(limits.memory_bytes)})",
        "processes": f"process limit ({limits.max_processes})",
        "file_size": f"file size limit ({format_size(limits.max_file_bytes)})",
        "output": f"output limit ({format_size(limits.max_output_bytes)} per stream)",
    }[resource]


def signal_name(number: int) -> str:
    """``11`` -> ``"SIGSEGV"``."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def decide(facts: RunFacts, limits: Limits, nonce: str, n_checks: int = 0) -> Outcome:
    """The verdict on one run."""
    report = parse_report(facts.result, nonce)
    checks = (report.checks + (False,) * n_checks)[:n_checks]

    def outcome(status: Status, detail: str, resource: Resource | None = None) -> Outcome:
        return Outcome(
            status=status,
            detail=detail[:DETAIL_CHARS],
            resource=resource,
            seconds=facts.seconds,
            stdout=facts.stdout,
            stderr=facts.stderr,
            checks=checks,
        )

    def killed(resource: Resource) -> Outcome:
        return outcome("killed", limit_detail(resource, limits), resource)

    if facts.kill == "output":
        return killed("output")
    if facts.kill == "timeout":
        if facts.processes >= limits.max_processes:
            return killed("processes")  # a fork bomb that swallowed its EAGAINs
        return outcome("timeout", f"no result after {format_seconds(limits.wall_seconds)}")
    if facts.kill is not None:
        return outcome("error", "the program flooded the sandbox's result channel")
    if report.tampered:
        return outcome("error", "the program wrote to the sandbox's result channel")
    if facts.signal is not None:
        if facts.signal == signal.SIGXCPU or (
            facts.signal == signal.SIGKILL and facts.cpu_seconds >= limits.cpu_limit - 0.05
        ):
            return killed("cpu")
        if facts.signal == signal.SIGXFSZ:
            return killed("file_size")
        verb = "was killed by" if facts.signal == signal.SIGKILL else "crashed with"
        return outcome("error", f"{verb} signal {signal_name(facts.signal)}")
    stage = "checks" if n_checks and report.source and report.source[0] == "ok" else "tests"
    if report.source is None or (report.source[0] == "ok" and not report.ended):
        return outcome("error", f"exited with status {facts.exit_code} before the {stage} finished")
    category, detail = report.source
    if category == "ok":
        if facts.exit_code != 0:
            return outcome("error", f"exited with status {facts.exit_code} after the tests")
        return outcome("passed", "")
    if category == "failed":
        return outcome("failed", detail)
    if category == "exit":
        return outcome("error", f"exited with status {detail} before the tests finished")
    if category in _CATEGORY_RESOURCE:
        return killed(_CATEGORY_RESOURCE[category])
    return outcome("error", detail or "the program raised an exception")
