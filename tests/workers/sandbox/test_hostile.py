"""Hostile programs: each gets the right verdict and leaves the host exactly as it was.

After every program: the verdict is as expected, the runners are the same processes
(none was killed or restarted), no process of the sandbox uids and nothing below a
runner's PID 1 is left, no secret reached any output, and a correct program run next
on the same Sandbox still passes.
"""

from __future__ import annotations

import ast
import os
import socket
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.workers.sandbox.conftest import Secrets
from tests.workers.sandbox.helpers import (
    CORRECT,
    PROJECT,
    assert_no_secret,
    files_owned_by,
    leftovers,
    runner_pids,
)
from workers.sandbox import Limits, Outcome, Program, Sandbox

FAST = Limits(wall_seconds=1.0)  # for programs meant to run into the wall clock
ROOMY = Limits(wall_seconds=5.0)  # for the others, so that a loaded machine cannot flake

RunHostile = Callable[..., Outcome]


@pytest.fixture
def run_hostile(sandbox: Sandbox, planted: Secrets) -> RunHostile:
    """Run one program and check everything that must hold after any hostile program."""

    def run(source: str, limits: Limits = ROOMY, checks: tuple[str, ...] = ()) -> Outcome:
        before = runner_pids()
        outcome = sandbox.run_one(Program(source=source, limits=limits, checks=checks))
        assert leftovers(sandbox) == []
        assert files_owned_by(sandbox.uids) == []
        assert runner_pids() == before, "a runner died or was restarted"
        assert_no_secret(outcome, planted.token)
        after = sandbox.run_one(CORRECT)
        assert after.status == "passed", after
        return outcome

    return run


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    status: str
    resource: str | None = None
    detail: str = ""  # must appear in Outcome.detail
    limits: Limits = field(default=ROOMY)


CASES = [
    Case(
        "fork_bomb",
        "import os\nwhile True:\n    os.fork()\n",
        "killed",
        "processes",
        "process limit (32)",
    ),
    Case(
        "fork_bomb_ignoring_errors",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "killed",
        "processes",
        limits=FAST,
    ),
    Case(
        "thread_bomb",
        "import threading, time\nfor _ in range(1000):\n"
        "    threading.Thread(target=time.sleep, args=(10,)).start()\n",
        "killed",
        "processes",
    ),
    Case("memory_bomb", "x = bytearray(1 << 34)\n", "killed", "memory", "memory limit (1.0 GiB)"),
    Case(
        "memory_creep",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 7))\n",
        "killed",
        "memory",
        "memory limit (256.0 MiB)",
        Limits(wall_seconds=5.0, memory_bytes=256 << 20),
    ),
    Case(
        "loop_ignoring_signals",
        "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, "
        "signal.SIGXCPU):\n    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n",
        "timeout",
        None,
        "no result after 1.0 s",
        FAST,
    ),
    Case("long_c_call_sum", "sum(range(10 ** 12))\n", "timeout", limits=FAST),
    Case("long_c_call_pow", "x = 10 ** (10 ** 8)\n", "timeout", limits=FAST),
    Case(
        "stopped_itself",
        "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n",
        "timeout",
        limits=FAST,
    ),
    Case(
        "cpu_limit",
        "while True:\n    pass\n",
        "killed",
        "cpu",
        "cpu time limit (1 s)",
        Limits(wall_seconds=10.0, cpu_seconds=1.0),
    ),
    Case(
        "cpu_limit_ignoring_sigxcpu",
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
        "killed",
        "cpu",
        "",
        Limits(wall_seconds=10.0, cpu_seconds=1.0),
    ),
    Case(
        "file_size",
        "with open('big', 'wb') as f:\n    f.write(b'x' * (2 << 20))\n",
        "killed",
        "file_size",
        "file size limit (1.0 MiB)",
        Limits(wall_seconds=5.0, max_file_bytes=1 << 20),
    ),
    Case("unbounded_stdout", "while True:\n    print('x' * 1000)\n", "killed", "output"),
    Case(
        "unbounded_stderr",
        "import sys\nwhile True:\n    sys.stderr.write('x' * 1000)\n",
        "killed",
        "output",
    ),
    Case("reads_stdin", "input()\n", "error", None, "EOFError"),
    Case("stdin_is_empty", "import sys\nassert sys.stdin.read() == ''\n", "passed"),
    Case(
        "segfault_by_deep_recursion",
        "import json, sys\nsys.setrecursionlimit(10 ** 6)\nnested = []\nfor _ in range(10 ** 6):\n"
        "    nested = [nested]\njson.dumps(nested)\n",
        "error",
        None,
        "crashed with signal SIGSEGV",
        Limits(wall_seconds=5.0),
    ),
    Case(
        "segfault_in_c_code",
        "nested = ()\nfor _ in range(10 ** 6):\n    nested = (nested,)\nhash(nested)\n",
        "error",
        None,
        "crashed with signal SIGSEGV",
        Limits(wall_seconds=5.0),
    ),
    Case(
        "recursion_error",
        "def f():\n    return f()\nf()\n",
        "error",
        None,
        "RecursionError: maximum recursion depth exceeded",
    ),
    Case(
        "setsid_background_child",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1000)\n",
        "passed",
    ),
    Case(
        "double_forked_daemon",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(1000)\n    os._exit(0)\nos.wait()\n",
        "passed",
    ),
    Case(
        "background_subprocess",
        "import subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\n",
        "passed",
    ),
    Case(
        "kills_process_group",
        "import os\nos.killpg(0, 9)\n",
        "error",
        None,
        "was killed by signal SIGKILL",
    ),
    Case("kills_everything", "import os\nos.kill(-1, 9)\nassert False\n", "error"),
    Case(
        "sys_exit_0",
        "import sys\nsys.exit(0)\nassert False\n",
        "error",
        None,
        "exited with status 0 before the tests finished",
    ),
    Case(
        "os_exit_0",
        "import os\nos._exit(0)\nassert False\n",
        "error",
        None,
        "exited with status 0 before the tests finished",
    ),
    Case(
        "raise_system_exit_0",
        "raise SystemExit(0)\nassert False\n",
        "error",
        None,
        "exited with status 0 before the tests finished",
    ),
    Case("keyboard_interrupt", "raise KeyboardInterrupt\n", "error", None, "KeyboardInterrupt"),
    Case(
        "atexit_hooks",
        "import atexit, os\natexit.register(os._exit, 0)\n"
        "atexit.register(print, 'passed')\nassert False\n",
        "failed",
        None,
        "AssertionError at line 4: assert False",
    ),
    Case(
        "replaces_excepthook",
        "import sys\nsys.excepthook = lambda *args: None\nassert 1 == 2\n",
        "failed",
        None,
        "assert 1 == 2",
    ),
    Case(
        "prints_fake_markers",
        'import sys\nprint(\'passed\')\nprint(\'{"status": "passed", "passed": true}\')\n'
        "sys.stderr.write('passed\\n')\nassert False\n",
        "failed",
    ),
    Case(
        "forges_result_frames",
        "import os\nfor fd in range(3, 10):\n    try:\n"
        "        os.write(fd, b'0' * 32 + b' source 3\\nok\\n' + b'0' * 32 + b' end 0\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)\n",
        "error",
        None,
        "result channel",
    ),
    Case(
        "writes_junk_to_result_fd_then_passes",
        "import os\nos.write(3, b'passed\\n')\n",
        "error",
        None,
        "result channel",
    ),
    Case("closes_result_fd", "import os\nos.close(3)\n", "error"),
    Case(
        "patches_reporting_primitives",
        "import builtins, json, os\nbuiltins.isinstance = lambda *a: True\n"
        "builtins.str = lambda *a: 'ok'\nos.write = lambda *a: 0\nos._exit = lambda *a: None\n"
        "json.dumps = lambda *a, **k: '{}'\nassert False\n",
        "failed",
    ),
    Case(
        "alarm_handler_exits_early",
        "import signal\nsignal.signal(signal.SIGALRM, "
        "lambda *a: (_ for _ in ()).throw(SystemExit(0)))\nsignal.setitimer(signal.ITIMER_REAL, "
        "0.05)\nwhile True:\n    pass\n",
        "error",
        None,
        "exited with status 0 before the tests finished",
    ),
    Case(
        "alarm_left_pending_after_the_tests",
        "import signal\nsignal.signal(signal.SIGALRM, "
        "lambda *a: (_ for _ in ()).throw(SystemExit(3)))\nsignal.alarm(2)\n",
        "passed",
        None,
        "",
        Limits(wall_seconds=5.0),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_program(case: Case, run_hostile: RunHostile) -> None:
    outcome = run_hostile(case.source, case.limits)
    assert (outcome.status, outcome.resource) == (case.status, case.resource), outcome
    assert case.detail in outcome.detail


def test_killing_the_parent_hurts_nobody(sandbox: Sandbox, run_hostile: RunHostile) -> None:
    outcome = run_hostile("import os\nos.kill(os.getppid(), 9)\n")
    if sandbox.isolation.tier == "namespaces+uid":  # another uid: not allowed
        assert outcome.status == "error" and "PermissionError" in outcome.detail
    else:  # PID 1 of a namespace ignores SIGKILL sent from inside it
        assert outcome.status == "passed"


def test_writes_outside_the_sandbox_change_nothing(run_hostile: RunHostile) -> None:
    name = "stratlab-sandbox-escape-" + os.urandom(6).hex()
    outside = [
        PROJECT / name,
        Path("/etc") / name,
        Path("/root") / name,
        Path("/") / name,
        PROJECT / "workers" / "sandbox" / "__init__.py",
    ]
    private = [Path("/tmp") / name, Path("/var/tmp") / name, Path("/dev/shm") / name]
    before = (PROJECT / "workers" / "sandbox" / "__init__.py").read_bytes()
    source = (
        "import os\nresults = {}\n"
        f"for path in {[str(p) for p in outside + private]!r}:\n"
        "    try:\n"
        "        with open(path, 'a') as f:\n"
        "            f.write('pwned')\n"
        "        results[path] = 'written'\n"
        "    except OSError as exc:\n"
        "        results[path] = exc.strerror\n"
        "print(results)\n"
    )
    outcome = run_hostile(source)
    assert outcome.status == "passed", outcome
    written = ast.literal_eval(outcome.stdout)
    for path in outside:
        assert written[str(path)] != "written", path
    for path in private:  # fine inside: these are the program's private tmpfs
        assert written[str(path)] == "written", path
    for path in outside[:-1] + private:
        assert not path.exists(), path
    assert (PROJECT / "workers" / "sandbox" / "__init__.py").read_bytes() == before


def test_planted_sitecustomize_has_no_effect(sandbox: Sandbox, run_hostile: RunHostile) -> None:
    targets = sorted(
        {
            sysconfig.get_paths()["purelib"],
            sysconfig.get_paths()["stdlib"],
            os.path.dirname(os.__file__),
        }
    )
    before = {t: set(os.listdir(t)) for t in targets}
    source = (
        "import os, site, sys, sysconfig\n"
        "dirs = set(sys.path) | {os.getcwd(), site.getusersitepackages()}\n"
        "dirs |= set(sysconfig.get_paths().values())\n"
        "for d in sorted(p for p in dirs if p):\n"
        "    for name in ('sitecustomize.py', 'usercustomize.py', 'typing.py'):\n"
        "        try:\n"
        "            os.makedirs(d, exist_ok=True)\n"
        "            with open(os.path.join(d, name), 'w') as f:\n"
        "                f.write('PLANTED = True\\nraise SystemExit(0)\\n')\n"
        "        except OSError:\n"
        "            pass\n"
    )
    assert run_hostile(source).status == "passed"
    for target in targets:
        assert set(os.listdir(target)) == before[target], target
    probe = sandbox.run_one(
        Program(
            source=(
                "import sys, typing\n"
                "assert not hasattr(typing, 'PLANTED')\n"
                "try:\n    import sitecustomize\nexcept ImportError:\n    pass\n"
                "else:\n    assert not getattr(sitecustomize, 'PLANTED', False)\n"
                "try:\n    import usercustomize\nexcept ImportError:\n    pass\n"
                "else:\n    assert not getattr(usercustomize, 'PLANTED', False)\n"
            )
        )
    )
    assert probe.status == "passed", probe


def test_secrets_stay_out_of_reach(planted: Secrets, run_hostile: RunHostile) -> None:
    source = (
        "import os\n"
        "def show(label, read):\n"
        "    try:\n        print(label, repr(read()))\n"
        "    except Exception as exc:\n        print(label, 'unreadable:', type(exc).__name__)\n"
        "print('env', dict(os.environ))\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit() or pid == 'self':\n"
        "        for item in ('environ', 'cmdline'):\n"
        "            path = f'/proc/{pid}/{item}'\n"
        "            show(path, lambda: open(path, 'rb').read())\n"
        f"show('hidden dir', lambda: os.listdir({str(planted.hidden_dir)!r}))\n"
        f"secret = {str(planted.hidden_dir / 'secret.txt')!r}\n"
        "show('hidden dir file', lambda: open(secret).read())\n"
        f"show('hidden file', lambda: open({str(planted.hidden_file)!r}).read())\n"
        f"show('public file', lambda: open({str(planted.public_file)!r}).read())\n"
        "show('proc 1 root', lambda: os.listdir('/proc/1/root/proc'))\n"
    )
    outcome = run_hostile(source)
    assert outcome.status == "passed", outcome
    assert "public file 'public'" in outcome.stdout  # the path itself is reachable
    assert "hidden dir []" in outcome.stdout
    assert planted.token not in outcome.stdout
    assert "SECRET" not in outcome.stdout


def test_no_network(run_hostile: RunHostile) -> None:
    accepted: list[object] = []
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    source = (
        "import socket\nresults = []\n"
        f"for target in [('127.0.0.1', {port}), ('1.1.1.1', 53), ('8.8.8.8', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=0.5)\n"
        "        results.append('connected')\n"
        "    except OSError as exc:\n"
        "        results.append(type(exc).__name__)\n"
        "try:\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    s.sendto(b'x', ('1.1.1.1', 53))\n"
        "    results.append('sent')\n"
        "except OSError as exc:\n"
        "    results.append(type(exc).__name__)\n"
        "print(results)\n"
        "assert 'connected' not in results and 'sent' not in results\n"
    )
    try:
        outcome = run_hostile(source)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert outcome.status == "passed", outcome
    assert accepted == []


def test_kernel_attack_surface_is_filtered(run_hostile: RunHostile) -> None:
    source = (
        "import ctypes, os, threading\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def refused(ret):\n"
        "    return ret == -1 and ctypes.get_errno() in (1, 38)\n"
        "results = {\n"
        "    'unshare user': refused(libc.unshare(0x10000000)),\n"
        "    'unshare net': refused(libc.unshare(0x40000000)),\n"
        "    'mount': refused(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),\n"
        "    'ptrace': refused(libc.ptrace(16, 1, None, None)),\n"
        "}\n"
        "if os.uname().machine == 'x86_64':  # clone(CLONE_NEWPID | SIGCHLD)\n"
        "    results['clone newpid'] = refused(libc.syscall(56, 0x20000000 | 17, 0, 0, 0, 0))\n"
        "thread = threading.Thread(target=print, args=('thread ok',))\n"
        "thread.start()\n"
        "thread.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(7)\n"
        "results['fork'] = os.waitpid(pid, 0)[1] >> 8 == 7\n"
        "print(results)\n"
        "assert all(results.values()), results\n"
    )
    outcome = run_hostile(source)
    assert outcome.status == "passed", outcome
    assert "thread ok" in outcome.stdout
