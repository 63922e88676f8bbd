"""The Sandbox as callers see it: verdicts, checks mode, limits, concurrency, runner restarts."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.workers.sandbox.helpers import (
    CORRECT,
    SERVER_MARK,
    leftovers,
    runner_pids,
    wait_for_program,
)
from workers.sandbox import (
    Isolation,
    Limits,
    Program,
    Sandbox,
    SandboxUnavailable,
    detect_isolation,
)
from workers.sandbox import isolation as isolation_module
from workers.sandbox.isolation import lease_uid, runner_config
from workers.sandbox.sandbox import _Slot

FAST = Limits(wall_seconds=1.0)


def run(sandbox: Sandbox, source: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return sandbox.run_one(Program(source=source, **kwargs))  # type: ignore[arg-type]


def test_isolation_is_detected(sandbox: Sandbox) -> None:
    isolation = detect_isolation()
    assert isolation == sandbox.isolation
    assert isolation.tier in ("namespaces+uid", "namespaces")
    assert isolation.description.endswith(".")
    if os.geteuid() == 0:
        assert isolation.tier == "namespaces+uid"
        assert all(uid >= 1000 for uid in sandbox.uids) and len(set(sandbox.uids)) == 2


def test_verdicts(sandbox: Sandbox) -> None:
    passed = run(sandbox, "print('hello')\n")
    assert (passed.status, passed.resource, passed.detail) == ("passed", None, "")
    assert passed.stdout == "hello\n" and passed.seconds > 0

    failed = run(sandbox, "def f(x):\n    return x\n\nassert f(3) == 4\n")
    assert failed.status == "failed"
    assert failed.detail == "AssertionError at line 4: assert f(3) == 4"
    assert "Traceback" in failed.stderr and "<program>" in failed.stderr

    message = run(sandbox, "assert 1 == 2, 'one is not two'\n")
    assert (
        message.detail == "AssertionError: one is not two at line 1: assert 1 == 2, "
        "'one is not two'"
    )

    error = run(sandbox, "def f():\n    return 1 / 0\n\nf()\n")
    assert (error.status, error.detail) == ("error", "ZeroDivisionError: division by zero")

    name = run(sandbox, "print(x)\n")
    assert name.detail == "NameError: name 'x' is not defined"

    syntax = run(sandbox, "def f(:\n")
    assert syntax.status == "error" and syntax.detail.startswith("SyntaxError")

    timeout = run(sandbox, "while True:\n    pass\n", limits=FAST)
    assert (timeout.status, timeout.detail) == ("timeout", "no result after 1.0 s")


def test_a_failing_humaneval_style_check_names_the_assert(sandbox: Sandbox) -> None:
    source = (
        "def add(a, b):\n    return a - b\n\n"
        "def check(candidate):\n    assert candidate(1, 1) == 0\n"
        "    assert candidate(3, 1) == 4\n\ncheck(add)\n"
    )
    outcome = run(sandbox, source)
    assert outcome.detail == "AssertionError at line 6: assert candidate(3, 1) == 4"


def test_output_is_captured_up_to_the_cap(sandbox: Sandbox) -> None:
    limits = Limits(max_output_bytes=1000)
    exact = run(
        sandbox,
        "import sys\nsys.stdout.write('a' * 1000)\nsys.stderr.write('b' * 1000)\n",
        limits=limits,
    )
    assert exact.status == "passed"
    assert (exact.stdout, exact.stderr) == ("a" * 1000, "b" * 1000)
    over = run(sandbox, "import sys\nsys.stdout.write('a' * 1001)\n", limits=limits)
    assert (over.status, over.resource) == ("killed", "output")
    assert over.stdout == "a" * 1000


def test_output_is_decoded_with_replacement(sandbox: Sandbox) -> None:
    outcome = run(sandbox, "import os\nos.write(1, b'ok \\xff\\xfe end')\n")
    assert outcome.stdout == "ok \ufffd\ufffd end"


def test_checks_mode(sandbox: Sandbox) -> None:
    program = Program(
        source="def f(x):\n    return x + 1\n",
        checks=(
            "assert f(1) == 2",
            "assert f(2) == 0",
            "while True:\n    pass",
            "assert f(3) == 4",
            "raise SystemExit(0)",
            "assert f(",
            "x = f(0)",
            "assert x == 1",
        ),
        limits=Limits(wall_seconds=5.0, check_seconds=0.3),
    )
    outcome = sandbox.run_one(program)
    assert outcome.status == "passed"  # the stuck check was cut at 0.3 s, the rest ran
    assert outcome.checks == (True, False, False, True, False, False, True, True)


def test_checks_mode_when_the_source_fails(sandbox: Sandbox) -> None:
    outcome = sandbox.run_one(
        Program(source="def f(x):\n    return 1 / 0\nf(1)\n", checks=("assert True", "assert True"))
    )
    assert (outcome.status, outcome.checks) == ("error", (False, False))


def test_checks_mode_wall_clock_keeps_checks_done(sandbox: Sandbox) -> None:
    program = Program(
        source="x = 1\n",
        checks=("assert x == 1", "sum(range(10 ** 12))", "assert x == 1"),
        limits=Limits(wall_seconds=2.0, check_seconds=0.2),
    )
    outcome = sandbox.run_one(program)
    assert outcome.status == "timeout"
    assert outcome.checks == (True, False, False)


def test_programs_are_isolated_from_each_other(sandbox: Sandbox) -> None:
    first = run(
        sandbox,
        "import os, math\nopen('note', 'w').write('x')\nmath.pi = 3\nos.environ['LEFT'] = '1'\n",
    )
    assert first.status == "passed"
    for _ in range(3):  # whichever runner takes it
        later = run(
            sandbox,
            "import os, math\nassert not os.path.exists('note')\n"
            "assert os.listdir('.') == []\nassert math.pi > 3.14\n"
            "assert 'LEFT' not in os.environ\n",
        )
        assert later.status == "passed", later


def test_environment_is_minimal(sandbox: Sandbox) -> None:
    outcome = run(
        sandbox, "import os, sys\nprint(sorted(os.environ), os.getcwd(), sys.flags.isolated)\n"
    )
    assert outcome.stdout == (
        "['HOME', 'LANG', 'MKL_NUM_THREADS', 'OMP_NUM_THREADS', "
        "'OPENBLAS_NUM_THREADS', 'PATH', 'TMPDIR'] /tmp 1\n"
    )


def test_run_keeps_order_and_uses_every_worker(sandbox: Sandbox) -> None:
    programs = [
        Program(source=f"import os, time\ntime.sleep(0.2)\nprint({i}, os.getuid())\n")
        for i in range(6)
    ]
    outcomes = sandbox.run(programs)
    assert [o.stdout.split()[0] for o in outcomes] == [str(i) for i in range(6)]
    if sandbox.uids:  # each runner has its own uid: both took programs
        assert {int(o.stdout.split()[1]) for o in outcomes} == set(sandbox.uids)
    assert sandbox.run([]) == []


def test_run_is_thread_safe(sandbox: Sandbox) -> None:
    def batch(k: int) -> list[str]:
        outs = sandbox.run([Program(source=f"print({k} * 100 + {i})") for i in range(5)])
        return [o.stdout.strip() for o in outs]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(batch, range(4)))
    assert results == [[str(k * 100 + i) for i in range(5)] for k in range(4)]


def test_a_dead_runner_gives_an_error_and_is_replaced() -> None:
    with Sandbox(workers=1) as box:
        before = box._slots[0].runner.pid
        assert before is not None and before in runner_pids()

        def kill_runner_once_the_program_runs() -> None:
            if wait_for_program(before):
                os.kill(before, 9)

        killer = threading.Thread(target=kill_runner_once_the_program_runs)
        killer.start()
        outcome = box.run_one(
            Program(source="import time\ntime.sleep(30)\n", limits=Limits(wall_seconds=20.0))
        )
        killer.join()
        assert outcome.status == "error" and "runner" in outcome.detail
        assert box.run_one(CORRECT).status == "passed"
        after = box._slots[0].runner.pid
        assert after != before and after in runner_pids()
        assert leftovers(box) == []
    assert not any(SERVER_MARK in _cmd(pid) for pid in (before, after))


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def test_close_kills_everything() -> None:
    box = Sandbox(workers=2)
    pids = {slot.runner.pid for slot in box._slots}
    uids = box.uids
    box.run_one(
        Program(
            source="import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(100)\n"
        )
    )
    box.close()
    assert all(not _cmd(pid) for pid in pids)
    with pytest.raises(RuntimeError):
        box.run_one(CORRECT)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and leftovers(box, settle=0):
        time.sleep(0.05)
    assert leftovers(box, settle=0) == [] and uids == box.uids


def test_no_isolation_is_refused_unless_opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    none = Isolation("none", "NOT ISOLATED: test.")
    monkeypatch.setattr(isolation_module, "_detected", none)
    with pytest.raises(SandboxUnavailable, match="STRATLAB_SANDBOX_ALLOW_UNISOLATED=1"):
        detect_isolation()
    with pytest.raises(SandboxUnavailable, match="allow_unisolated=True"):
        Sandbox(workers=1)
    assert detect_isolation(allow_unisolated=True) == none


@pytest.mark.parametrize("tier", ["namespaces", "none"])
def test_the_other_tiers_work(tier: str) -> None:
    """The lower tiers, driven directly (this machine would pick the top one)."""
    lease = lease_uid() if tier == "none" and os.geteuid() == 0 else None
    slot = _Slot(runner_config(tier, lease, ()), lease)  # type: ignore[arg-type]
    try:
        assert slot.execute(CORRECT).status == "passed"
        assert slot.execute(Program(source="assert 1 == 2")).status == "failed"
        timeout = slot.execute(
            Program(
                source="import os, time\nif os.fork() == 0:\n"
                "    os.setsid()\n    time.sleep(100)\n"
                "while True:\n    pass\n",
                limits=FAST,
            )
        )
        assert timeout.status == "timeout"
        runner = slot.runner.pid
        escaped = [pid for pid in _children_tree(runner) if pid != runner]
        expected = 1 if tier != "none" else 0  # the namespace's PID 1 only
        assert len(escaped) == expected, escaped
        written = slot.execute(Program(source="open('/etc/stratlab-sandbox-test', 'w')"))
        assert written.status == "error"
        assert not os.path.exists("/etc/stratlab-sandbox-test")
        socket_ = slot.execute(Program(source="import socket\nsocket.socket()"))
        assert socket_.status == "error"
    finally:
        slot.close()


def _children_tree(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        tree.extend(frontier)
    return tree
