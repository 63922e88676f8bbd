"""Host-side inspection for the sandbox tests: processes left behind, runners alive."""

from __future__ import annotations

import os
import time
from pathlib import Path

from workers.sandbox import Outcome, Program, Sandbox

CORRECT = Program(
    source=(
        "from typing import List\n\n"
        "def total(xs: List[int]) -> int:\n    return sum(xs)\n\n"
        "def check(candidate):\n"
        "    assert candidate([1, 2, 3]) == 6\n"
        "    assert candidate([]) == 0\n\n"
        "check(total)\n"
    )
)
SERVER_MARK = "workers/sandbox/_server.py"
PROJECT = Path(__file__).resolve().parents[3]
#: Host directories a program might try to drop files into.
WATCHED = ("/", "/etc", "/root", "/tmp", "/var/tmp", "/dev/shm", str(PROJECT))


def _status(pid: str) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _table() -> dict[int, tuple[int, set[int]]]:
    """pid -> (ppid, every uid and gid it holds), for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            status = _status(entry)
            if "PPid" in status:
                ids = {int(v) for key in ("Uid", "Gid") for v in status.get(key, "").split()}
                table[int(entry)] = (int(status["PPid"]), ids)
    return table


def _descendants(table: dict[int, tuple[int, set[int]]], root: int) -> dict[int, int]:
    """pid -> depth below ``root``."""
    depth = {root: 0}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in table.items():
            if pid not in depth and ppid in depth:
                depth[pid] = depth[ppid] + 1
                changed = True
    depth.pop(root)
    return depth


def runner_pids() -> set[int]:
    """Runner processes that are children of this test process."""
    table = _table()
    me = os.getpid()
    return {pid for pid, (ppid, _) in table.items() if ppid == me and SERVER_MARK in _cmdline(pid)}


def leftovers(sandbox: Sandbox, settle: float = 2.0) -> list[str]:
    """Processes a program left: any holding a sandbox uid, or anything below a runner.

    Runners are children of this process (outer) and their PID 1 (inner); a program is
    a child of PID 1, so anything three levels below this process is a leftover.
    Waits up to ``settle`` seconds for processes that are already dying.
    """
    deadline = time.monotonic() + settle
    while True:
        table = _table()
        uids = set(sandbox.uids)
        found = [f"{pid} (uid)" for pid, (_, ids) in table.items() if ids & uids]
        found += [
            f"{pid} (depth {d}): {_cmdline(pid)[:80]}"
            for pid, d in _descendants(table, os.getpid()).items()
            if d >= 3
        ]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def assert_no_secret(outcome: Outcome, token: str) -> None:
    for text in (outcome.stdout, outcome.stderr, outcome.detail):
        assert token not in text


def files_owned_by(uids: tuple[int, ...], dirs: tuple[str, ...] = WATCHED) -> list[str]:
    """Entries in ``dirs`` owned by a sandbox uid: anything there escaped the sandbox."""
    found = []
    for directory in dirs:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid in uids or st.st_gid in uids:
                found.append(entry.path)
    return found


def wait_for_program(runner_pid: int, timeout: float = 10.0) -> bool:
    """Wait until the runner has a program running (a process two levels below it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if 2 in _descendants(_table(), runner_pid).values():
            return True
        time.sleep(0.02)
    return False
