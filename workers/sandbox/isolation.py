"""Which isolation this machine allows, and the unprivileged uids programs run as.

``detect_isolation`` does not guess from kernel settings: it starts a real runner in
each tier, best first, and keeps the first that confines itself (and forks one
confined child) successfully. The answer is cached for the process.

Uids (tier ``namespaces+uid``, and tier ``none`` when the host is root): every runner
gets its own uid, so that RLIMIT_NPROC (counted per uid, machine-wide, and never
enforced for root) bounds exactly one program's processes, and so that a program can
signal nothing but its own processes. A uid is taken from ``base + k`` only if no
account has it, it is mapped in our user namespace, no process runs as it, and an
abstract Unix socket named after it can be bound: the socket is the lease, held while
the runner lives and released by the kernel when this process exits, so concurrent
sandboxes (Celery worker processes, a benchmark) never share a uid. (Abstract sockets
are per network namespace: root containers sharing one kernel but not a network
namespace should be given different ``uid_base`` values.)
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
import threading
from dataclasses import dataclass

from workers.sandbox.runner import Runner, RunnerError
from workers.sandbox.types import Isolation, SandboxUnavailable, Tier

logger = logging.getLogger(__name__)

#: Default first uid/gid for sandboxed programs (no distribution allocates this high).
DEFAULT_UID_BASE = 2_000_000_000
#: How many uids above the base may be tried.
UID_SPAN = 4096
OPT_IN_HINT = (
    "To run untrusted code with rlimits and a process group only (no network, file "
    "system or PID isolation), opt in with allow_unisolated=True "
    "(STRATLAB_SANDBOX_ALLOW_UNISOLATED=1 in the app)."
)


@dataclass
class UidLease:
    """An unprivileged uid/gid reserved for one runner while ``_lock`` stays bound."""

    uid: int
    gid: int
    _lock: socket.socket

    def release(self) -> None:
        self._lock.close()


def _mapped_ranges(path: str) -> list[tuple[int, int]]:
    try:
        with open(path) as f:
            rows = [line.split() for line in f if line.strip()]
    except OSError:
        return [(0, 1 << 32)]
    return [(int(inside), int(inside) + int(count)) for inside, _, count in rows]


def _ids_in_use() -> set[int]:
    """Every uid and gid some live process has (real, effective, saved or fs)."""
    used: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith(("Uid:", "Gid:")):
                        used.update(int(v) for v in line.split()[1:])
        except (OSError, ValueError):
            continue
    return used


def _unknown_id(value: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(value)
            return False
        except KeyError:
            pass
    return True


def lease_uid(base: int = DEFAULT_UID_BASE) -> UidLease:
    """Reserve a fresh unprivileged uid (used as gid too) for one runner."""
    uid_ranges = _mapped_ranges("/proc/self/uid_map")
    gid_ranges = _mapped_ranges("/proc/self/gid_map")

    def mapped(value: int) -> bool:
        return all(
            any(lo <= value < hi for lo, hi in ranges) for ranges in (uid_ranges, gid_ranges)
        )

    if not mapped(base) or not mapped(base + UID_SPAN - 1):
        top = min(max(hi for _, hi in uid_ranges), max(hi for _, hi in gid_ranges))
        base = max(top - UID_SPAN - 2, 1000)  # stay below 65534 (nobody) in a small map
    in_use = _ids_in_use()
    for value in range(base, base + UID_SPAN):
        if value in in_use or not mapped(value) or not _unknown_id(value):
            continue
        lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lock.bind(f"\0stratlab-sandbox-uid-{value}")
        except OSError:
            lock.close()
            continue
        return UidLease(value, value, lock)
    raise SandboxUnavailable(f"no free unprivileged uid in {base}..{base + UID_SPAN - 1}")


def runner_config(tier: Tier, lease: UidLease | None, hidden: tuple[str, ...]) -> dict:
    """The configuration frame a runner starts from."""
    return {
        "tier": tier,
        "uid": lease.uid if lease else None,
        "gid": lease.gid if lease else None,
        "hidden": list(hidden),
    }


def needs_uid(tier: Tier) -> bool:
    """Whether runners of ``tier`` drop programs to a leased uid (the host is root)."""
    return os.geteuid() == 0 and tier in ("namespaces+uid", "none")


def describe(tier: Tier, info: dict) -> str:
    """One sentence of what a runner of ``tier`` enforces, from its ``ready`` info."""
    seccomp = (
        "a seccomp filter (no sockets, ptrace, mounts or new namespaces), "
        if info.get("seccomp")
        else "no seccomp filter (unsupported architecture), "
    )
    rest = (
        f"{seccomp}rlimits (CPU, address space, processes, files, file size, no core "
        "dumps), a private process group and a wall-clock kill of everything it started"
    )
    spaces = (
        "new network (no usable interface), mount (host tree read-only, fresh "
        "size-limited tmpfs on /tmp, /var/tmp and /dev/shm, a /dev with only null, zero, "
        "full and random devices, hidden paths covered), PID (fresh /proc), IPC and UTS "
        "namespaces"
    )
    if tier == "namespaces+uid":
        return (
            f"Each program runs as its runner's own unprivileged uid, without "
            f"capabilities, in {spaces}, under {rest}."
        )
    if tier == "namespaces":
        return (
            f"Each program runs as root of a new user namespace mapped to the worker's "
            f"uid, with every capability dropped, in {spaces}, under {rest}."
        )
    who = "its runner's own unprivileged uid" if needs_uid(tier) else "the worker's own uid"
    return (
        f"NOT ISOLATED: each program runs as {who} with the host's network and file "
        f"system (hidden paths are not hidden), under {rest}."
    )


_lock = threading.Lock()
_detected: Isolation | None = None
_failures: list[str] = []


def _probe(tier: Tier) -> Isolation:
    lease = lease_uid() if needs_uid(tier) else None
    runner = Runner(runner_config(tier, lease, ()))
    try:
        info = runner.start()
    finally:
        runner.stop()
        if lease is not None:
            lease.release()
    return Isolation(tier, describe(tier, info))


def detect_isolation(*, allow_unisolated: bool = False) -> Isolation:
    """The best isolation this machine gives; raise ``SandboxUnavailable`` for tier none.

    Tiers, best first: ``namespaces+uid`` (root: namespaces plus a dropped uid),
    ``namespaces`` (unprivileged user namespaces, programs are root of their own user
    namespace), ``none`` (refused unless ``allow_unisolated``; then a warning is logged).
    """
    global _detected
    with _lock:
        if _detected is None:
            candidates: tuple[Tier, ...] = (
                ("namespaces+uid", "namespaces") if os.geteuid() == 0 else ("namespaces",)
            )
            for tier in candidates:
                try:
                    _detected = _probe(tier)
                    break
                except (RunnerError, OSError) as exc:
                    _failures.append(f"{tier}: {exc}")
                    logger.info("sandbox tier %s unavailable: %s", tier, exc)
            else:
                try:
                    _detected = _probe("none")
                except (RunnerError, OSError) as exc:
                    _failures.append(f"none: {exc}")
                    _detected = Isolation("none", describe("none", {}))
        detected = _detected
    if detected.tier == "none":
        if not allow_unisolated:
            raise SandboxUnavailable(
                "No process isolation is available on this machine (it needs root, or "
                "unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 "
                "and user.max_user_namespaces > 0; " + "; ".join(_failures) + "). " + OPT_IN_HINT
            )
        logger.warning("running untrusted code WITHOUT isolation: %s", detected.description)
    return detected
