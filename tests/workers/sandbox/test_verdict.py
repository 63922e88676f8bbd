"""Verdict mapping, limits and calibration: pure functions, no processes."""

from __future__ import annotations

import signal

import pytest

from workers.sandbox import Limits, Program, calibrated_limits
from workers.sandbox.verdict import (
    RunFacts,
    decide,
    format_seconds,
    format_size,
    parse_report,
)

NONCE = "ab" * 16


def frames(*items: tuple[str, str], nonce: str = NONCE) -> str:
    """The result channel as the harness writes it."""
    out = b""
    for kind, text in items:
        body = text.encode()
        out += f"{nonce} {kind} {len(body)}\n".encode() + body
    return out.decode()


def facts(
    result: str = "",
    *,
    exit_code: int | None = 0,
    sig: int | None = None,
    kill: str | None = None,
    cpu: float = 0.01,
    processes: int = 1,
) -> RunFacts:
    return RunFacts(
        exit_code=exit_code,
        signal=sig,
        kill=kill,
        cpu_seconds=cpu,
        seconds=0.02,
        processes=processes,
        stdout="out",
        stderr="err",
        result=result,
    )


OK = frames(("source", "ok\n"), ("end", ""))


def verdict(result: str = OK, limits: Limits | None = None, n_checks: int = 0, **kw: object):
    outcome = decide(facts(result, **kw), limits or Limits(), NONCE, n_checks)  # type: ignore[arg-type]
    return outcome.status, outcome.resource, outcome.detail


def test_a_complete_run_passes() -> None:
    assert verdict() == ("passed", None, "")


def test_the_outcome_keeps_streams_and_time() -> None:
    outcome = decide(facts(OK), Limits(), NONCE)
    assert (outcome.stdout, outcome.stderr, outcome.seconds) == ("out", "err", 0.02)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("failed", ("failed", None, "AssertionError at line 3: assert f(1) == 2")),
        ("error", ("error", None, "AssertionError at line 3: assert f(1) == 2")),
        ("memory", ("killed", "memory", "memory limit (1.0 GiB)")),
        ("processes", ("killed", "processes", "process limit (32)")),
        ("file_size", ("killed", "file_size", "file size limit (16.0 MiB)")),
    ],
)
def test_categories_map_to_verdicts(category: str, expected: tuple) -> None:
    result = frames(
        ("source", f"{category}\nAssertionError at line 3: assert f(1) == 2"), ("end", "")
    )
    assert verdict(result) == expected


def test_system_exit_is_an_early_exit() -> None:
    result = frames(("source", "exit\n0"), ("end", ""))
    assert verdict(result) == ("error", None, "exited with status 0 before the tests finished")


def test_no_report_at_all_is_an_early_exit() -> None:
    assert verdict("", exit_code=0)[2] == "exited with status 0 before the tests finished"
    assert verdict("", exit_code=3)[2] == "exited with status 3 before the tests finished"


def test_a_report_without_its_end_frame_does_not_pass() -> None:
    result = frames(("source", "ok\n"))
    assert verdict(result)[0] == "error"


def test_a_nonzero_exit_after_the_report_does_not_pass() -> None:
    assert verdict(OK, exit_code=71)[0] == "error"


@pytest.mark.parametrize(
    "result",
    [
        frames(("source", "ok\n"), ("end", ""), nonce="cd" * 16),  # someone else's nonce
        frames(("source", "ok\n"), ("end", ""), nonce="cd" * 16) + OK,  # forged before the real one
        "passed\n" + OK,  # junk first
        OK + frames(("source", "ok\n")),  # anything after the end frame
        frames(("end", ""), ("source", "ok\n")),  # out of order
        frames(("source", "ok\n"), ("check", "maybe"), ("end", "")),
    ],
)
def test_tampered_result_channels_are_errors(result: str) -> None:
    status, _, detail = verdict(result)
    assert status == "error" and "result channel" in detail


def test_a_frame_cut_short_by_a_kill_is_ignored() -> None:
    report = parse_report(frames(("source", "ok\n")) + f"{NONCE} check 1", NONCE)
    assert report == parse_report(frames(("source", "ok\n")), NONCE)
    assert not report.tampered and not report.ended


def test_checks_are_reported_and_padded() -> None:
    result = frames(("source", "ok\n"), ("check", "1"), ("check", "0"), ("end", ""))
    outcome = decide(facts(result), Limits(), NONCE, 3)
    assert outcome.status == "passed"
    assert outcome.checks == (True, False, False)


def test_checks_of_a_failed_source_are_all_false() -> None:
    result = frames(("source", "error\nNameError: name 'f' is not defined"), ("end", ""))
    outcome = decide(facts(result), Limits(), NONCE, 2)
    assert (outcome.status, outcome.checks) == ("error", (False, False))


def test_runner_kills_decide_first() -> None:
    assert verdict(OK, kill="output") == ("killed", "output", "output limit (64.0 KiB per stream)")
    assert verdict(OK, kill="timeout") == ("timeout", None, "no result after 3.0 s")
    assert verdict(OK, kill="result")[0] == "error"


def test_a_timeout_with_every_process_slot_taken_is_a_process_kill() -> None:
    assert verdict("", kill="timeout", processes=32)[:2] == ("killed", "processes")
    assert verdict("", kill="timeout", processes=3)[0] == "timeout"


@pytest.mark.parametrize(
    ("sig", "cpu", "expected"),
    [
        (signal.SIGXCPU, 4.0, ("killed", "cpu", "cpu time limit (4 s)")),
        (signal.SIGKILL, 4.99, ("killed", "cpu", "cpu time limit (4 s)")),
        (signal.SIGKILL, 0.5, ("error", None, "was killed by signal SIGKILL")),
        (signal.SIGXFSZ, 0.1, ("killed", "file_size", "file size limit (16.0 MiB)")),
        (signal.SIGSEGV, 0.1, ("error", None, "crashed with signal SIGSEGV")),
    ],
)
def test_signals(sig: int, cpu: float, expected: tuple) -> None:
    assert verdict("", exit_code=None, sig=sig, cpu=cpu) == expected


def test_untrusted_detail_is_capped() -> None:
    result = frames(("source", "error\n" + "x" * 10_000), ("end", ""))
    assert len(verdict(result)[2]) == 2048


def test_formatting() -> None:
    assert [format_size(n) for n in (1 << 30, 16 << 20, 64 << 10, 10)] == [
        "1.0 GiB",
        "16.0 MiB",
        "64.0 KiB",
        "10 B",
    ]
    assert [format_seconds(s) for s in (3, 0.25, 2.5)] == ["3.0 s", "0.25 s", "2.5 s"]


def test_limits_defaults_and_cpu() -> None:
    limits = Limits()
    assert (limits.wall_seconds, limits.cpu_limit, limits.memory_bytes) == (3.0, 4, 1 << 30)
    assert Limits(wall_seconds=2.5).cpu_limit == 4
    assert Limits(cpu_seconds=1.2).cpu_limit == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"wall_seconds": 0},
        {"wall_seconds": float("inf")},
        {"cpu_seconds": -1},
        {"memory_bytes": 0},
        {"max_processes": 0},
        {"check_seconds": 0},
        {"max_output_bytes": 1.5},
    ],
)
def test_limits_reject_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        Limits(**bad)


def test_program_normalises_checks() -> None:
    program = Program(source="x = 1", checks=["assert x == 1"])  # type: ignore[arg-type]
    assert program.checks == ("assert x == 1",)
    with pytest.raises(TypeError):
        Program(source=b"x = 1")  # type: ignore[arg-type]


def test_calibrated_limits_clamp_the_wall_clock() -> None:
    base = Limits(memory_bytes=1 << 28)
    assert calibrated_limits(0.01, base).wall_seconds == 1.0
    assert calibrated_limits(0.5, base).wall_seconds == 2.0
    assert calibrated_limits(100.0, base).wall_seconds == 20.0
    assert calibrated_limits(1.0, base, factor=2.0, floor=0.5, ceiling=3.0).wall_seconds == 2.0
    calibrated = calibrated_limits(2.0, base)
    assert (calibrated.memory_bytes, calibrated.cpu_seconds, calibrated.cpu_limit) == (
        1 << 28,
        None,
        9,
    )
    with pytest.raises(ValueError):
        calibrated_limits(1.0, floor=5.0, ceiling=1.0)
