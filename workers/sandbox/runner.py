"""Host side of one sandbox runner: start it, hand it jobs, notice when it dies.

A runner is a ``python -I workers/sandbox/_server.py`` process (see its docstring)
started with a minimal environment and two pipes. The host never trusts it blindly:
a reply must arrive before the job's wall clock plus a grace period, or the runner is
SIGKILLed (which takes its whole PID namespace with it) and started again for the
next job.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workers.sandbox import _wire

logger = logging.getLogger(__name__)

SERVER = Path(__file__).resolve().parent / "_server.py"
#: How long a runner may take to confine itself and pre-import its modules.
START_SECONDS = 30.0
#: Beyond a job's wall clock: time for the runner to kill the program's processes.
REPLY_GRACE_SECONDS = 10.0
#: How long a runner whose control pipe was closed may take to exit by itself.
STOP_SECONDS = 1.0


class RunnerError(RuntimeError):
    """The runner died, misbehaved or stopped answering; it has been stopped."""


def runner_env(home: str) -> dict[str, str]:
    """The runner's whole environment, which programs inherit: nothing of the host's."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": home,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class Runner:
    """One fork server process; not thread-safe (a slot owns it)."""

    def __init__(self, config: dict[str, Any], python: str = sys.executable) -> None:
        self._config = config
        self._python = python
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl: int | None = None
        self._reply: int | None = None
        self._stderr: Any = None
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int | None:
        """Host pid of the runner's outer process, while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> dict[str, Any]:
        """Start the process and wait until it is confined; return its ``ready`` info."""
        self.stop()
        ctl_r, ctl_w = os.pipe()
        reply_r, reply_w = os.pipe()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the runner
        home = "/tmp" if self._config["tier"] != "none" else tempfile.gettempdir()
        try:
            self._proc = subprocess.Popen(
                [self._python, "-I", str(SERVER), str(ctl_r), str(reply_w)],
                pass_fds=(ctl_r, reply_w),
                env=runner_env(home),
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(ctl_w)
            os.close(reply_r)
            raise RunnerError(f"the sandbox runner could not be started: {exc}") from None
        finally:
            os.close(ctl_r)
            os.close(reply_w)
        self._ctl, self._reply = ctl_w, reply_r
        try:
            _wire.write_frame(ctl_w, self._config)
            ready = _wire.read_frame(reply_r, time.monotonic() + START_SECONDS)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            reason = self._failure_text(exc)
            self.stop()
            raise RunnerError(f"the sandbox runner did not start: {reason}") from None
        if "error" in ready or "ready" not in ready:
            self.stop()
            raise RunnerError(
                f"the sandbox runner could not confine itself: {ready.get('error', ready)}"
            )
        self.info = dict(ready["ready"])
        logger.debug("sandbox runner %s ready: %s", self.pid, self.info)
        return self.info

    def _failure_text(self, exc: BaseException) -> str:
        detail = str(exc)
        if self._stderr is not None:
            try:
                self._stderr.seek(0)
                tail = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
            except OSError:
                tail = ""
            if tail:
                detail += f" (stderr: {tail})"
        return detail

    def execute(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one job and wait for its reply; raise ``RunnerError`` if the runner fails.

        ``RunnerError.__cause__`` is ``BrokenPipeError`` when the job never reached the
        runner (it had died before), so the caller may safely retry it elsewhere.
        """
        if not self.alive or self._ctl is None or self._reply is None:
            raise RunnerError("the sandbox runner is not running") from BrokenPipeError()
        try:
            _wire.write_frame(self._ctl, job)
        except BrokenPipeError as exc:
            self.stop()
            raise RunnerError("the sandbox runner had exited") from exc
        try:
            return _wire.read_frame(self._reply, time.monotonic() + timeout)
        except TimeoutError:
            self.stop()
            raise RunnerError(
                f"the sandbox runner gave no answer within {timeout:.1f} s; "
                "it was killed and will be restarted"
            ) from None
        except (EOFError, OSError, ValueError) as exc:
            code = self._proc.poll() if self._proc is not None else None
            self.stop()
            raise RunnerError(
                f"the sandbox runner died while running the program ({exc}; exit status {code})"
            ) from None

    def kill(self) -> None:
        """SIGKILL the runner from another thread (its programs die with it: the PID
        namespace goes, or in tier none their parent-death signal fires); the thread
        waiting in ``execute`` then gets a ``RunnerError`` and stops it properly."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def stop(self) -> None:
        """Stop the runner: closing its control pipe makes it kill its programs and exit
        (tier none also removes its scratch directory); SIGKILL if it does not within
        ``STOP_SECONDS`` (the kernel then kills everything in its namespace)."""
        for fd in (self._ctl, self._reply):
            if fd is not None:
                os.close(fd)
        self._ctl = self._reply = None
        if self._proc is not None:
            try:
                self._proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        scratch = self.info.pop("scratch_base", None)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
