"""The code that runs one untrusted program inside the confined child process.

Loaded by path inside the runner (standard library only). ``run_program`` is called
in the freshly forked, already confined child and never returns: it executes the
program, then (checks mode) each check, and reports through the private result file
descriptor ``RESULT_FD`` in frames tagged with the run's secret nonce::

    <nonce> <kind> <length>\\n<payload>

``kind`` is ``source`` (payload ``category\\ndetail``), ``check`` (``1`` or ``0``) or
``end``, written last, right before ``os._exit(0)``. The host accepts a pass only when
every frame carries the nonce, a ``source ok`` and an ``end`` frame arrived and the
process exited 0 without hitting a limit, so a program that exits early (``sys.exit``,
``os._exit``), prints fake markers, writes to the result fd without the nonce,
replaces ``sys.excepthook`` or registers ``atexit`` hooks (``os._exit`` skips them)
cannot pass.

Everything the reporting path calls is bound when this module is loaded (default
arguments and closures), before any program runs: a program that replaces ``os.write``,
``json.dumps``, builtins such as ``str`` or ``isinstance``, or module attributes
cannot forge or suppress the report through them. A program that inspects the
interpreter itself (``sys._getframe``, ``gc.get_referrers``, ``sys.settrace``) can
still read the nonce or skip its own tests; that is outside what an in-process
harness can prevent, and the namespaces, rlimits and seccomp filter still contain it.
"""

from __future__ import annotations

import builtins
import errno
import linecache
import os
import signal
import sys
import traceback
import types
from typing import NoReturn

RESULT_FD = 3
#: Untrusted text kept in a verdict's detail.
DETAIL_CHARS = 2048
PROGRAM_FILENAME = "<program>"


class CheckTimeout(BaseException):
    """Raised by SIGALRM inside a check that ran past ``check_seconds``."""


def _on_alarm(signum: int, frame: object, _exc: type[BaseException] = CheckTimeout) -> None:
    raise _exc("check timed out")


def _safe_text(
    value: object, _str: type = str, _type: type = type, _base: type = BaseException
) -> str:
    """``str(value)`` capped, or a placeholder when the object's ``__str__`` misbehaves."""
    try:
        text = _str(value)
        if _type(text) is not _str:  # an exact type check is the point
            return "<unprintable>"
        return text[:DETAIL_CHARS]
    except _base:
        return "<unprintable>"


def _failing_line(
    exc: BaseException, sources: dict[str, str], _len: type = len, _type: type = type
) -> str:
    """``" at line N: <source line>"`` for the innermost frame of the program or a check."""
    tb = exc.__traceback__
    found = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        text = sources.get(filename) if _type(filename) is str else None
        if text is not None:
            lines = text.splitlines()
            number = tb.tb_lineno
            line = lines[number - 1].strip() if 0 < number <= _len(lines) else ""
            where = f"line {number}"
            if filename != PROGRAM_FILENAME:
                where = f"{filename} {where}"
            found = f" at {where}: {line}" if line else f" at {where}"
        tb = tb.tb_next
    return found


def classify(
    exc: BaseException,
    sources: dict[str, str],
    _isinstance=isinstance,
    _type=type,
    _SystemExit=SystemExit,
    _AssertionError=AssertionError,
    _MemoryError=MemoryError,
    _OSError=OSError,
    _RuntimeError=RuntimeError,
    _int=int,
    _bool=bool,
    _EAGAIN=errno.EAGAIN,
    _EFBIG=errno.EFBIG,
) -> tuple[str, str]:
    """(category, detail) of an exception that escaped the program.

    Categories: ``failed`` (an assertion), ``exit`` (SystemExit; detail is the status),
    ``memory``, ``processes`` (fork or thread creation refused: EAGAIN under
    RLIMIT_NPROC), ``file_size`` (EFBIG under RLIMIT_FSIZE) and ``error``.
    """
    name = _safe_text(_type(exc).__name__)
    if _isinstance(exc, _SystemExit):
        code = exc.code
        if code is None:
            return "exit", "0"
        if _isinstance(code, _int) and not _isinstance(code, _bool):
            return "exit", _safe_text(code)
        return "exit", "1"
    message = _safe_text(exc)
    described = f"{name}: {message}" if message else name
    if _isinstance(exc, _AssertionError):
        return "failed", (described + _failing_line(exc, sources))[:DETAIL_CHARS]
    if _isinstance(exc, _MemoryError):
        return "memory", described
    if _isinstance(exc, _OSError) and exc.errno == _EAGAIN:
        return "processes", described
    if _isinstance(exc, _RuntimeError) and "can't start new thread" in message:
        return "processes", described
    if _isinstance(exc, _OSError) and exc.errno == _EFBIG:
        return "file_size", described
    return "error", described


def run_program(
    source: str,
    checks: list[str],
    check_seconds: float,
    nonce: str,
    *,
    _write=os.write,
    _exit=os._exit,
    _getpid=os.getpid,
    _compile=compile,
    _exec=exec,
    _len=len,
    _str=str,
    _type=type,
    _encode=str.encode,
    _setitimer=signal.setitimer,
    _signal=signal.signal,
    _ITIMER_REAL=signal.ITIMER_REAL,
    _SIGALRM=signal.SIGALRM,
    _on_alarm=_on_alarm,
    _classify=classify,
    _base=BaseException,
    _module=types.ModuleType,
    _builtins=builtins,
    _modules=sys.modules,
    _linecache=linecache.cache,
    _print_exception=traceback.print_exception,
    _SIG_IGN=signal.SIG_IGN,
) -> NoReturn:
    """Run ``source`` (then each check) as ``__main__``, report, and ``os._exit(0)``."""
    me = _getpid()
    head = _encode(nonce, "ascii") + b" "
    stdout, stderr = sys.stdout, sys.stderr  # the program may replace sys's

    def emit(kind: bytes, text: str) -> None:
        body = _encode(text, "utf-8", "replace")
        frame = head + kind + b" " + _encode(_str(_len(body)), "ascii") + b"\n" + body
        while frame:
            frame = frame[_write(RESULT_FD, frame) :]

    sources = {PROGRAM_FILENAME: source}
    _linecache[PROGRAM_FILENAME] = (_len(source), None, source.splitlines(True), PROGRAM_FILENAME)
    main = _module("__main__")
    namespace = main.__dict__
    namespace["__builtins__"] = _builtins
    _modules["__main__"] = main
    category, detail = "ok", ""
    try:
        _exec(_compile(source, PROGRAM_FILENAME, "exec"), namespace)
    except _base as exc:
        try:
            category, detail = _classify(exc, sources)
        except _base:
            category, detail = "error", "an exception that could not be described"
        if category not in ("memory", "exit"):
            try:  # as the interpreter would print it, from the program's first frame on
                tb = exc.__traceback__
                while tb is not None and tb.tb_frame.f_code.co_filename not in sources:
                    tb = tb.tb_next
                _print_exception(_type(exc), exc, tb or exc.__traceback__, file=stderr)
            except _base:
                pass
    try:  # the harness owns SIGALRM from here on (the program's own alarm is over)
        _setitimer(_ITIMER_REAL, 0)
        _signal(_SIGALRM, _SIG_IGN)
    except _base:  # a handler of the program's that fired just now
        pass
    try:
        if _getpid() != me:  # a forked copy of the program reached the end: not the run
            _exit(1)
        emit(b"source", category + "\n" + detail)
        if category == "ok":
            index = 0
            while index < _len(checks):
                name = f"<check {index}>"
                sources[name] = checks[index]
                passed = "0"
                try:
                    code = _compile(checks[index], name, "exec")
                    _signal(_SIGALRM, _on_alarm)
                    _setitimer(_ITIMER_REAL, check_seconds)
                    try:
                        _exec(code, namespace)
                    finally:
                        # A SIGALRM already caught but not yet handled raises here at the
                        # latest (inside this try), never later in the reporting code.
                        _setitimer(_ITIMER_REAL, 0)
                        _signal(_SIGALRM, _SIG_IGN)
                    passed = "1"
                except _base:
                    pass
                if _getpid() != me:
                    _exit(1)
                emit(b"check", passed)
                index += 1
        for stream in (stdout, stderr):
            try:  # noqa: SIM105 - contextlib is the program's to patch; plain try is not
                stream.flush()
            except _base:
                pass
        emit(b"end", "")
    except _base:
        _exit(70)
    _exit(0)
