"""Normalisation, equivalence, voting keys and the math verifier (ALGORITHMS §17)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from strategies.verify.math import (
    MathAnswerConfig,
    canonical_answer,
    is_equivalent,
    normalize_answer,
    parse_number,
    verify_math,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("\\tfrac12", "\\frac{1}{2}"),
        ("\\frac1{2}", "\\frac{1}{2}"),
        ("\\sqrt3", "\\sqrt{3}"),
        ("x = 5", "x=5"),  # kept: only a comparison of two answers may drop the name
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("50\\%", "50"),
        ("\\$18", "18"),
        ("90^\\circ", "90"),
        ("10 \\text{ cm}", "10"),
        ("\\!3", "3"),
        ("3/4", "\\frac{3}{4}"),
        ("-3/4", "-\\frac{3}{4}"),
    ],
)
def test_it_normalises_hendrycks_style(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("18", "18"),
        ("18.0", "18"),
        ("18.00", "18"),
        ("1,000", "1000"),
        ("1,234,567.5", "1234567.5"),
        ("$18", "18"),
        ("1/2", "\\frac{1}{2}"),
        ("0.5", "\\frac{1}{2}"),
        ("2/4", "1/2"),
        ("\\dfrac{6}{8}", "0.75"),
        ("-3", "-3.0"),
        ("-\\frac{1}{2}", "-0.5"),
        ("50%", "0.5"),
        ("x = 7", "7"),
        ("\\sqrt3", "\\sqrt{3}"),
        ("1.0000000001", "1"),
    ],
)
def test_it_accepts_equivalent_answers(pred: str, gold: str) -> None:
    assert is_equivalent(pred, gold)
    assert is_equivalent(gold, pred)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("17", "18"),
        ("-18", "18"),
        ("1.001", "1"),
        ("1/3", "0.333"),
        ("12", "1,2"),
        ("x + 1", "x + 2"),
        ("", ""),
    ],
)
def test_it_rejects_different_answers(pred: str, gold: str) -> None:
    assert not is_equivalent(pred, gold)


def test_it_never_equates_none() -> None:
    assert not is_equivalent(None, "3")
    assert not is_equivalent("3", None)
    assert not is_equivalent(None, None)


def test_it_is_strict_by_default_and_lenient_on_request() -> None:
    assert not is_equivalent("50", "0.5")
    assert not is_equivalent("0.005", "0.5")
    assert not is_equivalent("3.1416", "3.14159")
    assert is_equivalent("50", "0.5", lenient=True)
    assert is_equivalent("0.005", "0.5", lenient=True)
    assert is_equivalent("3.1416", "3.14159", lenient=True)
    assert not is_equivalent("3.15", "3.14159", lenient=True)


def test_it_honours_custom_tolerances() -> None:
    assert is_equivalent("100.5", "100", rel=0.01)
    assert not is_equivalent("100.5", "100", rel=0.001)
    assert is_equivalent("0.1", "0.2", abs_tol=0.2)
    with pytest.raises(ValueError):
        is_equivalent("1", "1", rel=-1)


def test_it_parses_numbers_exactly() -> None:
    assert parse_number("1,234") == 1234
    assert parse_number("0.1") == Fraction(1, 10)
    assert parse_number("\\frac{1}{3}") == Fraction(1, 3)
    assert parse_number("25%") == Fraction(1, 4)
    assert parse_number("1/0") is None
    assert parse_number("1" * 5000) is None  # beyond int-string limit: not a crash
    assert parse_number("seven") is None


def test_it_gives_one_voting_key_per_number() -> None:
    assert canonical_answer("18") == canonical_answer("18.0") == canonical_answer("18.00") == "18"
    assert canonical_answer("1,800") == "1800"
    assert canonical_answer("2/4") == canonical_answer("\\frac{1}{2}") == "1/2"
    assert canonical_answer("-0.5") == "-1/2"
    assert canonical_answer("x+1") == canonical_answer("x + 1")
    assert canonical_answer(None) is None
    assert canonical_answer("  ") is None


def test_it_verifies_a_completion() -> None:
    assert verify_math("So 47 + 38 = 85. The answer is 85.", "85") == ("85", True)
    assert verify_math("The answer is 84.", "85") == ("84", False)
    assert verify_math("nothing", "85") == (None, False)
    assert verify_math("The answer is 85.", None) == ("85", False)


def test_it_reads_a_gsm8k_solution_as_gold() -> None:
    assert verify_math("#### 1200", "She earns 12 * 100 = 1,200.\n#### 1,200") == ("1200", True)


def test_it_passes_leniency_through_the_config() -> None:
    assert verify_math("The answer is 50.", "0.5") == ("50", False)
    assert verify_math("The answer is 50.", "0.5", MathAnswerConfig(lenient=True)) == ("50", True)
    assert MathAnswerConfig().lenient is False
    with pytest.raises(ValueError, match="lenient"):
        MathAnswerConfig(lenient="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        # integers and exact rationals compare exactly; no absolute floor (ALGORITHMS §17)
        ("1000001", "1000000"),
        ("123456789", "123456788"),
        ("2\\times10^{-10}", "3\\times10^{-10}"),
        ("0.0000001", "0.0000002"),
        ("0", "0.001"),
        ("355/113", "\\pi"),
        # names matter
        ("x = 5", "y = 5"),
        ("f(x) = 2x + 1", "g(x) = 2x + 1"),
        # shapes
        ("(2, 3)", "x = 3, y = 2"),
        ("\\{1, 2\\}", "\\{1, 2, 3\\}"),
        ("x \\ge 2", "(2, \\infty)"),
        ("\\emptyset", "\\{0\\}"),
        ("3\\frac{1}{2}", "\\frac{3}{2}"),
        ("Monday", "Tuesday"),
        ("0.\\overline{3}", "0.33"),
    ],
)
def test_it_rejects_the_wrong_answers_it_used_to_accept(pred: str, gold: str) -> None:
    assert not is_equivalent(pred, gold)
    assert not is_equivalent(gold, pred)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("1{,}000", "1000"),
        ("1\\,000", "1000"),
        ("5\\text{ cm}", "5"),
        ("€45", "45"),
        ("\\mathbf{5}", "5"),
        ("\\text{Even}", "even"),
        ("3\\frac{1}{2}", "3.5"),
        ("3 1/2", "\\frac{7}{2}"),
        ("\\{3, 1, 2\\}", "1, 2, 3"),
        ("1 \\pm \\sqrt{2}", "1-\\sqrt{2}, 1+\\sqrt{2}"),
        ("(-\\infty, 1) \\cup (2, \\infty)", "(2, \\infty) \\cup (-\\infty, 1)"),
        ("f(x) = 2x + 1", "2x + 1"),
        ("width = 5", "5"),
        ("x = 2, y = 3", "(2, 3)"),
        ("\\ln(e^2)", "2"),
        ("5!", "120"),
        ("\\binom{6}{2}", "15"),
        ("\\sqrt[3]{27}", "3"),
        ("\\log_2 8", "3"),
        ("\\lfloor 3.7 \\rfloor", "3"),
        ("\\alpha + \\beta", "\\beta + \\alpha"),
        ("twenty-three", "23"),
        ("\u22125", "-5"),
        ("0.\\overline{3}", "\\frac{1}{3}"),
        ("0.1\\overline{6}", "\\frac{1}{6}"),
        ("0.333...", "\\frac{1}{3}"),
        ("\\varnothing", "\\emptyset"),
        ("no solution", "\\emptyset"),
        ("x < 3", "(-\\infty, 3)"),
        ("-1 < x \\le 4", "(-1, 4]"),
        ("1.5e3", "1500"),
        ("3E-4", "0.0003"),
        ("e^{i\\pi}", "-1"),
        ("3x - y = 4", "y = 3x - 4"),
    ],
)
def test_it_accepts_the_equivalences_it_used_to_miss(pred: str, gold: str) -> None:
    assert is_equivalent(pred, gold)
    assert is_equivalent(gold, pred)


def test_it_counts_a_percentage_as_its_number_and_its_hundredth() -> None:
    assert is_equivalent("25%", "25") and is_equivalent("25%", "0.25")
    assert not is_equivalent("25%", "2.5") and not is_equivalent("50%", "0.5%")


def test_it_gives_equal_keys_only_to_equivalent_answers() -> None:
    assert canonical_answer("\\{2, 1\\}") == canonical_answer("1, 2")
    assert canonical_answer("Monday") == canonical_answer("\\text{monday}")
    assert canonical_answer("x = 5") != canonical_answer("y = 5")
    assert canonical_answer("seven") == "7"
