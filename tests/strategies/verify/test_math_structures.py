"""Math equivalence steps 3-5 (ALGORITHMS §17): structures, equations, sympy, timeout, cache."""

from __future__ import annotations

import os
import threading
import time

import math_verify
import math_verify.grader
import pytest
import sympy

from strategies.verify import math as math_module
from strategies.verify import symbolic
from strategies.verify.math import MathAnswerConfig, is_equivalent, verify_math, verify_math_result
from strategies.verify.result import VerifierResult
from strategies.verify.structure import equation_sides, matrix_cells, sequence_parts

PMATRIX = r"\begin{pmatrix} 1 & \frac{1}{2} \\ 0 & -3 \end{pmatrix}"
BMATRIX = r"\begin{bmatrix} 1 & 0.5 \\ 0 & -3.0 \end{bmatrix}"


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("(1, 2)", "(1,2)"),
        ("(0.5, -3)", r"\left(\frac{1}{2}, -3\right)"),
        ("[1, 2)", r"[1,\frac{4}{2})"),
        ("(1, (2, 3))", "(1,(2.0,3))"),
        (PMATRIX, BMATRIX),
        ("y = 2x + 1", "2x + 1 = y"),
        ("x + y = 1", "1 - x - y = 0"),  # the same equation up to sign
        ("2x + 2", "2(x + 1)"),
        (r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}"),
        (r"\sqrt{8}", r"2\sqrt{2}"),
        (r"x^2 - 1", "(x - 1)(x + 1)"),
        (r"2\pi", r"\pi + \pi"),
        ("3", r"\sqrt{9}"),
    ],
)
def test_it_accepts_equivalent_structures(pred: str, gold: str) -> None:
    assert is_equivalent(pred, gold)
    assert is_equivalent(gold, pred)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("(1, 2)", "(2, 1)"),
        ("(1, 2)", "[1, 2]"),  # open vs closed interval
        ("(1, 2, 3)", "(1, 2)"),
        ("(1, 2)", "1"),
        (PMATRIX, r"\begin{pmatrix} 1 & 0.5 \end{pmatrix}"),
        (PMATRIX, r"\begin{pmatrix} 1 & 0.5 \\ 0 & 3 \end{pmatrix}"),
        (PMATRIX, "1"),
        ("x + y = 1", "x + y = 2"),
        ("2x + 2y = 2", "x + y = 1"),  # a multiple, not a sign flip
        ("x + 1", "x + 2"),
        (r"\pi", "3.14"),
        ("12", "1,2"),
    ],
)
def test_it_rejects_different_structures(pred: str, gold: str) -> None:
    assert not is_equivalent(pred, gold)


def test_it_splits_structures_on_hand_inputs() -> None:
    assert sequence_parts("(a,(b,c))") == ("(", ")", ["a", "(b,c)"])
    assert sequence_parts("(x+1)") is None and sequence_parts("(1,2") is None
    assert matrix_cells(PMATRIX) == [["1", r"\frac{1}{2}"], ["0", "-3"]]
    assert matrix_cells("[[1, 2]]") is None
    assert equation_sides("x = 3") == ("x", "3")
    assert equation_sides("x == 3") is None and equation_sides("a = b = c") is None


def test_it_can_switch_the_symbolic_step_off() -> None:
    assert is_equivalent("2x + 2", "2(x + 1)")
    assert not is_equivalent("2x + 2", "2(x + 1)", symbolic=False)
    assert verify_math(r"\boxed{\sqrt{9}}", "3")[1]
    assert not verify_math(r"\boxed{\sqrt{9}}", "3", MathAnswerConfig(symbolic=False))[1]
    with pytest.raises(ValueError, match="symbolic"):
        MathAnswerConfig(symbolic=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo hacked')",
        "x.__class__",
        "().__class__",
        "lambda: 1",
        "open('f')",
        "x[0]",
        "a;b",
        r"\input{secret}",
        "9" * 300,
    ],
)
def test_it_never_runs_answer_text_as_python(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[object] = []
    monkeypatch.setattr(os, "system", lambda *args: ran.append(args) or 0)
    assert not symbolic.symbolic_equal(text, "1")
    assert not is_equivalent(text, "1")
    assert ran == []


def test_it_parses_latex_with_math_verify() -> None:
    assert str(symbolic.parse_latex(r"\frac{x}{2}+\sqrt{y}")) == "x/2 + sqrt(y)"
    parsed = symbolic.parse_latex("exec(1)")  # letters times letters: nothing is called
    assert isinstance(parsed, sympy.Expr)
    assert {str(s) for s in parsed.free_symbols} <= {"E", "c", "x", "e"}
    assert symbolic.parse_latex("9" * 300) is None  # over MAX_SYMBOLIC_CHARS: never parsed


def test_it_refuses_towers_of_powers_quickly() -> None:
    started = time.monotonic()
    assert not symbolic.symbolic_equal("9^{9^{9}}", "1")
    assert not symbolic.symbolic_equal("2^{100000}", "1")
    assert not symbolic.symbolic_equal("100000!", "1")
    assert time.monotonic() - started < 1.0


def test_it_times_out_in_the_main_thread_and_bounds_input_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow() -> int:
        time.sleep(3)
        return 1

    started = time.monotonic()
    assert symbolic.time_limited(slow, None) is None  # math-verify's SIGALRM timeout, 1 s
    assert time.monotonic() - started < 2.5
    assert symbolic.time_limited(lambda: 5, None) == 5
    seen: list[object] = []
    real_verify = math_verify.verify

    def spy(*args: object, **kwargs: object) -> bool:
        seen.append(kwargs.get("timeout_seconds"))
        return real_verify(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(math_verify, "verify", spy)
    symbolic.symbolic_equal.cache_clear()
    outcome: list[object] = []

    def in_a_thread() -> None:
        outcome.append(symbolic.time_limited(lambda: 7, None))
        outcome.append(symbolic.symbolic_equal("a+b+7", "b+a+7"))  # no signal off the main thread

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join(10.0)
    assert outcome == [7, True]
    assert seen == [None]
    assert symbolic.symbolic_equal("a+b+8", "b+a+8")
    assert seen == [None, symbolic.SYMBOLIC_TIMEOUT_S]
    symbolic.symbolic_equal.cache_clear()


def test_it_counts_a_symbolic_timeout_as_not_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck(*args: object, **kwargs: object) -> bool:
        time.sleep(5)
        return True

    monkeypatch.setattr(math_verify.grader, "sympy_expr_eq", stuck)
    symbolic.symbolic_equal.cache_clear()
    started = time.monotonic()
    assert not symbolic.symbolic_equal("a+b", "b+a")
    assert time.monotonic() - started < 2.5
    symbolic.symbolic_equal.cache_clear()


def test_it_caches_pairwise_results() -> None:
    math_module._equivalent.cache_clear()
    assert is_equivalent("(1, x + x)", "(1, 2x)")
    hits = math_module._equivalent.cache_info().hits
    assert is_equivalent(" (1, x + x) ", "(1, 2x)")  # same pair once stripped
    assert math_module._equivalent.cache_info().hits == hits + 1


def test_it_wraps_verify_math_in_the_uniform_shape() -> None:
    assert verify_math_result("So the answer is 12.", "12") == VerifierResult(
        answer="12", passed=True, score=1.0, detail="equivalent to the reference"
    )
    assert verify_math_result("The answer is 11.", "12").detail == "differs from the reference"
    assert verify_math_result("no idea", "12") == VerifierResult(
        answer=None, passed=False, score=0.0, detail="no answer found"
    )
    lenient = verify_math_result("The answer is 50.", "0.5", MathAnswerConfig(lenient=True))
    assert lenient.passed
