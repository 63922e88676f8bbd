"""Sandbox runner: a fork server that lives inside its own namespaces.

The host starts one runner per worker slot as ``python -I _server.py CTL_FD REPLY_FD``
with a minimal environment, sends a configuration frame and then one job frame per
program (``_wire``). Start-up, by tier:

- ``namespaces+uid`` (host is root) and ``namespaces`` (unprivileged user namespaces):
  the process unshares new mount, network, IPC, UTS and PID namespaces (plus a user
  namespace mapping the caller to root, for ``namespaces``) and forks. The child is
  PID 1 of the new PID namespace and the fork server; the parent only waits for it
  and exits with it. PID 1 makes the mount tree private, mounts a fresh /proc,
  re-exposes the Python installation if it lies under a directory closed to the
  program's uid (pyenv under /root), replaces /dev by a tmpfs with null, zero, full,
  random and urandom only, covers every hidden path with an empty read-only file
  system, makes the whole tree read-only and nosuid, drops the capability bounding
  set, pre-imports common standard-library modules (so a program's ``import typing``
  is free), freezes the heap for copy-on-write, and reports ``ready``.
- ``none``: no namespaces; the runner is a child subreaper so that programs that
  escape their process group with ``setsid`` are still found and killed.

Per job, PID 1 mounts fresh size-limited tmpfs on /tmp, /var/tmp and /dev/shm (or,
in tier ``none``, makes a private directory), forks a child that confines itself
(own session and process group, rlimits, unprivileged uid or no capabilities,
no_new_privs, seccomp) and runs ``_harness.run_program``; it captures stdout, stderr
and the result fd up to their caps, kills everything on the wall-clock deadline or
an output overflow, then kills every other process left in the namespace
(``kill(-1, SIGKILL)`` from PID 1, repeated until nothing is left to reap) and sends
the raw facts back. The host, not this process, decides the verdict.

If the host goes away (its end of the control pipe closes) the runner kills its
programs and exits; PID 1 exiting makes the kernel kill whatever is left in the
namespace.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import resource
import select
import signal
import sys
import time
from types import ModuleType
from typing import Any, NoReturn

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str) -> ModuleType:
    """Load a sibling module by path: the ``workers`` package must not be imported here."""
    spec = importlib.util.spec_from_file_location(
        f"_stratlab_sandbox_{name}", os.path.join(_HERE, f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wire = _load("_wire")
confine = _load("_confine")
harness = _load("_harness")
seccomp = _load("_seccomp")

#: Modules imported once in the runner so that programs inherit them for free. Kept to
#: what generated code imports most (``from typing import List`` alone costs a fresh
#: interpreter milliseconds): every module makes each fork copy more page tables.
PRELOAD = (
    "typing",
    "math",
    "re",
    "collections",
    "itertools",
    "functools",
    "string",
    "heapq",
    "bisect",
    "copy",
)
#: (mount point, tmpfs size, inodes): the private scratch file systems of one program.
SCRATCH = (("/tmp", 64 << 20, 4096), ("/var/tmp", 16 << 20, 1024), ("/dev/shm", 16 << 20, 1024))
#: RLIMIT_STACK of programs: the usual default, so that runaway C recursion crashes
#: fast (SIGSEGV) even where the host runs with an unlimited stack.
STACK_BYTES = 8 << 20
#: Result-channel bytes kept; a program that floods it is tampering and gets killed.
RESULT_CAP = 1 << 20
NAMESPACE_FLAGS = (
    confine.CLONE_NEWNS
    | confine.CLONE_NEWNET
    | confine.CLONE_NEWIPC
    | confine.CLONE_NEWUTS
    | confine.CLONE_NEWPID
)


class Runner:
    """State of the fork server (PID 1 of its namespace, or a subreaper in tier none)."""

    def __init__(self, config: dict[str, Any], ctl: int, reply: int) -> None:
        self.tier: str = config["tier"]
        self.namespaced = self.tier != "none"
        self.uid: int | None = config.get("uid")
        self.gid: int | None = config.get("gid")
        self.hidden: list[str] = list(config.get("hidden", ()))
        self.ctl = ctl
        self.reply = reply
        self.syscall_filter = None
        self.scratch_base: str | None = None
        self.mounted: set[str] = set()

    # --- start-up -------------------------------------------------------------------

    def setup(self) -> dict[str, Any]:
        """Confine the runner itself; return what is in force for the ``ready`` frame."""
        info: dict[str, Any] = {"tier": self.tier}
        confine.set_dumpable(False)
        if self.namespaced:
            if os.getpid() != 1:  # kill(-1) below must only ever reach our own namespace
                raise OSError(1, "the runner is not PID 1 of a new PID namespace")
            confine.make_mounts_private()
            info["proc"] = confine.mount_proc()
            if self.tier == "namespaces+uid":
                info["revealed"] = confine.reveal(confine.python_dirs(), confine.other_uid_blocked)
            info["dev"] = confine.minimal_dev()
            info["hidden"] = []
            for path in self.hidden:
                if os.path.lexists(path):
                    confine.hide_path(path)
                    info["hidden"].append(path)
            info["readonly"] = confine.make_tree_readonly()
            info["scratch"] = [p for p, _, _ in SCRATCH if os.path.isdir(p)]
            confine.set_hostname("sandbox")
        else:
            import tempfile  # only here: it imports random, whose fork hook costs every fork

            confine.set_child_subreaper()
            self.scratch_base = tempfile.mkdtemp(
                prefix="stratlab-sandbox-", dir=os.environ.get("TMPDIR") or None
            )
            os.chmod(self.scratch_base, 0o711)
            info["scratch_base"] = self.scratch_base
        if os.geteuid() == 0 or self.tier == "namespaces":
            confine.drop_bounding_set()
        program = seccomp.seccomp_program()
        if program is not None:
            self.syscall_filter = seccomp.SeccompFilter(program)
        info["seccomp"] = self.syscall_filter is not None
        info["uid"] = self.uid
        self._probe_child()
        for name in PRELOAD:
            __import__(name)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        gc.collect()
        gc.freeze()
        return info

    def _probe_child(self) -> None:
        """Fork one confined child that exits at once, so a broken tier fails at start-up."""
        pid = os.fork()
        if pid == 0:
            try:
                self._drop_privileges(nproc=4)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise OSError(
                1, "a confined child could not drop its privileges or install the seccomp filter"
            )

    # --- one job --------------------------------------------------------------------

    def serve(self) -> NoReturn:
        """Answer jobs until the host closes the control pipe."""
        while True:
            try:
                job = wire.read_frame(self.ctl)
            except EOFError:
                self._shutdown(0)
            wire.write_frame(self.reply, self.run_job(job))

    def _shutdown(self, code: int) -> NoReturn:
        self._kill_all(None)
        if self.scratch_base:
            import shutil

            shutil.rmtree(self.scratch_base, ignore_errors=True)
        os._exit(code)

    def _fresh_scratch(self) -> str:
        """A new, empty working directory for the next program; returns its path."""
        if not self.namespaced:
            return self._fresh_directory()
        owner = (self.uid, self.gid) if self.tier == "namespaces+uid" else (0, 0)
        flags = confine.MS_NOSUID | confine.MS_NODEV | confine.MS_NOEXEC
        for path, size, inodes in SCRATCH:
            if path in self.mounted:
                if confine.pristine(path, owner):
                    continue  # untouched by the last program: as good as a new one
                confine.umount(path)
                self.mounted.discard(path)
            if not os.path.isdir(path):
                continue
            confine.mount(
                "tmpfs",
                path,
                "tmpfs",
                flags,
                f"size={size},nr_inodes={inodes},mode=0700,uid={owner[0]},gid={owner[1]}",
            )
            self.mounted.add(path)
        return "/tmp"

    def _fresh_directory(self) -> str:
        """Tier none: a new private directory under the runner's base directory."""
        import shutil
        import tempfile

        assert self.scratch_base is not None
        for name in os.listdir(self.scratch_base):
            path = os.path.join(self.scratch_base, name)
            for root, dirs, _ in os.walk(path):  # a program may have chmod 000 its dirs
                for name_ in dirs:
                    with contextlib.suppress(OSError):
                        os.chmod(os.path.join(root, name_), 0o700)
            shutil.rmtree(path, ignore_errors=True)
        work = tempfile.mkdtemp(dir=self.scratch_base)
        if self.uid is not None and os.geteuid() == 0:
            os.chown(work, self.uid, self.gid if self.gid is not None else self.uid)
        return work

    def run_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one program in a fresh confined child; return the raw facts of the run."""
        limits = job["limits"]
        work = self._fresh_scratch()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                self._child(job, limits, work, out_w, err_w, res_w)
            finally:
                os._exit(71)
        for fd in (out_w, err_w, res_w):
            os.close(fd)
        facts = self._supervise(
            pid, limits, started, {out_r: "stdout", err_r: "stderr", res_r: "result"}
        )
        for fd in (out_r, err_r, res_r):
            os.close(fd)
        return facts

    def _child(
        self,
        job: dict[str, Any],
        limits: dict[str, Any],
        work: str,
        out_w: int,
        err_w: int,
        res_w: int,
    ) -> NoReturn:
        """In the forked child: confine this process, then run the program."""
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        for src, dst in ((devnull, 0), (out_w, 1), (err_w, 2), (res_w, harness.RESULT_FD)):
            os.dup2(src, dst)  # dup2 clears close-on-exec on the target
        os.closerange(harness.RESULT_FD + 1, 1 << 20)
        os.chdir(work)
        if not self.namespaced:  # in the namespaces HOME and TMPDIR are already /tmp
            os.environ["HOME"] = os.environ["TMPDIR"] = work
            confine.set_parent_death_signal(signal.SIGKILL)  # no PID 1 to take us along
        nproc = int(limits["max_processes"])
        if self.tier == "namespaces":
            nproc += 1  # the count is per user namespace and includes this PID 1
        elif self.tier == "none" and (self.uid is None or os.geteuid() != 0):
            nproc += _processes_of(os.getuid())  # counted across the whole user
        cpu = int(limits["cpu_seconds"])
        for which, value in (
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_AS, int(limits["memory_bytes"])),
            (resource.RLIMIT_FSIZE, int(limits["max_file_bytes"])),
            (resource.RLIMIT_NOFILE, int(limits["max_open_files"])),
            (resource.RLIMIT_STACK, STACK_BYTES),
            (resource.RLIMIT_CORE, 0),
        ):
            pair = value if isinstance(value, tuple) else (value, value)
            resource.setrlimit(which, pair)
        self._drop_privileges(nproc)
        sys.argv = [harness.PROGRAM_FILENAME]
        harness.run_program(
            job["source"], job.get("checks") or [], float(limits["check_seconds"]), job["nonce"]
        )

    def _drop_privileges(self, nproc: int) -> None:
        """Process limit, unprivileged uid (or no capabilities), no_new_privs, seccomp."""
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if self.uid is not None and os.geteuid() == 0 and self.tier != "namespaces":
            gid = self.gid if self.gid is not None else self.uid
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(self.uid, self.uid, self.uid)
        elif self.tier == "namespaces":
            confine.clear_capabilities()
        confine.set_no_new_privs()
        if self.syscall_filter is not None:
            self.syscall_filter.install()

    def _supervise(
        self, pid: int, limits: dict[str, Any], started: float, streams: dict[int, str]
    ) -> dict[str, Any]:
        """Collect output until the child exits, a cap is hit or the deadline passes."""
        caps = {
            "stdout": int(limits["max_output_bytes"]),
            "stderr": int(limits["max_output_bytes"]),
            "result": RESULT_CAP,
        }
        data: dict[str, bytearray] = {name: bytearray() for name in caps}
        deadline = started + float(limits["wall_seconds"])
        poller = select.poll()
        for fd in streams:
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        pidfd = _pidfd_open(pid)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        poller.register(self.ctl, 0)  # reports POLLHUP only: the host went away
        open_fds = set(streams)
        kill: str | None = None
        ended: float | None = None
        status: tuple[int, Any] | None = None
        while kill is None:
            left = deadline - time.monotonic()
            if left <= 0:
                kill = "timeout"
                break
            wait_ms = left * 1000 if pidfd is not None else min(left * 1000, 20)
            for fd, _event in poller.poll(wait_ms):
                if fd == self.ctl:
                    self._shutdown(0)
                if fd == pidfd:
                    ended = time.monotonic()
                    continue
                if fd in open_fds and not _read_some(fd, data[streams[fd]], open_fds, poller):
                    continue
            for name, buf in data.items():
                if len(buf) > caps[name]:
                    kill = "output" if name != "result" else "result"
            if ended is not None or (pidfd is None and _exited(pid)):
                ended = ended or time.monotonic()
                break
        if kill is None:
            _, wait_status, usage = os.wait4(pid, 0)
            status = (wait_status, usage)
        killed, main = self._kill_all(pid)
        if status is None:
            status = main
        if ended is None:
            ended = time.monotonic()
        for fd in open_fds:
            _drain(fd, data[streams[fd]], caps[streams[fd]])
        if pidfd is not None:
            os.close(pidfd)
        wait_status, usage = status if status is not None else (None, None)
        code = sig = None
        if wait_status is not None:
            if os.WIFSIGNALED(wait_status):
                sig = os.WTERMSIG(wait_status)
            else:
                code = os.waitstatus_to_exitcode(wait_status)
        out_cap = caps["stdout"]
        return {
            "exit_code": code,
            "signal": sig,
            "kill": kill,
            "cpu_seconds": (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0,
            "seconds": ended - started,
            "processes": killed,
            "stdout": bytes(data["stdout"][:out_cap]).decode("utf-8", "replace"),
            "stderr": bytes(data["stderr"][:out_cap]).decode("utf-8", "replace"),
            "result": bytes(data["result"][:RESULT_CAP]).decode("utf-8", "replace"),
        }

    def _kill_all(self, main: int | None) -> tuple[int, tuple[int, Any] | None]:
        """SIGKILL every process the program left and reap them; (count, main's status)."""
        count = 0
        main_status = None
        while True:
            if self.namespaced:
                assert os.getpid() == 1, "kill(-1) outside our own PID namespace"
                _kill(-1)  # from PID 1: everything else in the namespace
            else:
                if main is not None:
                    _kill(-main)
                for pid in _descendants(os.getpid()):
                    _kill(pid)
            try:
                pid, status, usage = os.wait4(-1, 0)
            except ChildProcessError:
                if self.namespaced or not _descendants(os.getpid()):
                    return count, main_status
                continue
            count += 1
            if pid == main:
                main_status = (status, usage)


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _read_some(fd: int, buf: bytearray, open_fds: set[int], poller: Any) -> bool:
    """Append what is readable now; on EOF stop watching ``fd``. False on EOF."""
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return True
    if not chunk:
        open_fds.discard(fd)
        poller.unregister(fd)
        return False
    buf += chunk
    return True


def _drain(fd: int, buf: bytearray, cap: int) -> None:
    """Read what is left after every writer is dead (so EOF is certain)."""
    while len(buf) <= cap:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            return
        buf += chunk


def _proc_status(pid: str) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return {}


def _descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (tier none: found through /proc parent links)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _proc_status(entry).get("PPid")
            if ppid is not None:
                parents[int(entry)] = int(ppid)
    found: list[int] = []
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        found.extend(frontier)
    return found


def _processes_of(uid: int) -> int:
    """How many processes (threads count too for RLIMIT_NPROC) ``uid`` runs now."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            status = _proc_status(entry)
            if status.get("Uid", "").split("\t")[:1] == [str(uid)]:
                total += int(status.get("Threads", "1"))
    return total


def _enter_namespaces(tier: str, host_fds: tuple[int, ...]) -> None:
    """Unshare the namespaces and fork; only the child (PID 1) returns."""
    uid, gid = os.getuid(), os.getgid()
    flags = NAMESPACE_FLAGS | (confine.CLONE_NEWUSER if tier == "namespaces" else 0)
    confine.unshare(flags)
    if tier == "namespaces":
        confine.map_user_to_root(uid, gid)
    lifeline_r, lifeline_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(lifeline_w)
        confine.set_parent_death_signal(signal.SIGKILL)
        if select.select([lifeline_r], [], [], 0)[0]:  # the parent died before the prctl
            os._exit(1)
        os.close(lifeline_r)
        return
    os.close(lifeline_r)
    for fd in host_fds:  # only PID 1 talks to the host
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    os._exit(max(os.waitstatus_to_exitcode(status), 0))


def main(argv: list[str]) -> NoReturn:
    """Entry point: read the configuration, confine, report ready, serve jobs."""
    ctl, reply = int(argv[1]), int(argv[2])
    try:
        config = wire.read_frame(ctl)
        tier = config["tier"]
        if tier != "none":
            _enter_namespaces(tier, (ctl, reply))
        runner = Runner(config, ctl, reply)
        info = runner.setup()
    except BaseException as exc:  # report why, so the host can pick a lower tier
        try:
            wire.write_frame(reply, {"error": f"{type(exc).__name__}: {exc}"})
        finally:
            os._exit(3)
    wire.write_frame(reply, {"ready": info})
    runner.serve()


if __name__ == "__main__":
    main(sys.argv)
