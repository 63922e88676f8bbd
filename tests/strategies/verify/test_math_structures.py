"""Math equivalence steps 3-5 (ALGORITHMS §17): structures, equations, sympy, timeout, cache."""

from __future__ import annotations

import threading
import time

import pytest

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
def test_it_never_hands_unsafe_text_to_sympy(text: str) -> None:
    assert symbolic.latex_to_expression(text) is None
    assert not symbolic.symbolic_equal(text, "1")


def test_it_reads_unknown_words_as_products_of_symbols() -> None:
    assert symbolic.latex_to_expression("exec(1)") == "e*x*e*c(1)"
    assert symbolic.latex_to_expression(r"\frac{x}{2}+\sqrt{y}") == "((x)/(2))+ sqrt (y)"


def test_it_refuses_towers_of_powers_quickly() -> None:
    started = time.monotonic()
    assert not symbolic.symbolic_equal("9^{9^{9}}", "1")
    assert not symbolic.symbolic_equal("2^{100000}", "1")
    assert time.monotonic() - started < 1.0


def test_it_times_out_in_the_main_thread_and_in_other_threads() -> None:
    def slow() -> int:
        time.sleep(3)
        return 1

    started = time.monotonic()
    assert symbolic.run_with_timeout(slow, 0.2) is None
    assert time.monotonic() - started < 1.5
    assert symbolic.run_with_timeout(lambda: 5, 1.0) == 5
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(symbolic.run_with_timeout(slow, 0.2)))
    worker.start()
    worker.join(2.0)
    assert outcome == [None]


def test_it_counts_a_symbolic_timeout_as_not_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck(*args: object) -> bool:
        time.sleep(5)
        return True

    monkeypatch.setattr(symbolic, "_compare", stuck)
    monkeypatch.setattr(symbolic, "SYMBOLIC_TIMEOUT_S", 0.2)
    symbolic.symbolic_equal.cache_clear()
    started = time.monotonic()
    assert not symbolic.symbolic_equal("a+b", "b+a")
    assert time.monotonic() - started < 1.5
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
