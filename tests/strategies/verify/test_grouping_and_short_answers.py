"""Grouping answers for votes, the short-answer path, and the float screen (issue 14)."""

from __future__ import annotations

import random

import pytest

from strategies.verify import symbolic
from strategies.verify.equivalence import clear_caches
from strategies.verify.grouping import group_answers
from strategies.verify.math import verify_math
from strategies.verify.screen import quick_value
from strategies.verify.short_text import reference_kind, verify_short_answer


def test_it_groups_equivalent_answers_by_union_find() -> None:
    ids, firsts = group_answers(["7", None, "x = 7", "8", "7.0", r"\frac{16}{2}", "", "y = 7"])
    assert ids.tolist() == [0, -1, 0, 1, 0, 1, -1, 0]
    assert firsts == (0, 3)


def test_it_groups_sets_intervals_and_expressions() -> None:
    answers = [r"\{1,2\}", "2, 1", "x < 3", r"(-\infty, 3)", r"2\sqrt{2}", r"\sqrt{8}", r"\sqrt{2}"]
    ids, _ = group_answers(answers)
    assert ids.tolist() == [0, 0, 1, 1, 2, 2, 3]


def test_it_never_groups_different_exact_numbers() -> None:
    ids, firsts = group_answers([str(n) for n in range(1000)] * 2)
    assert len(firsts) == 1000 and ids[:1000].tolist() == ids[1000:].tolist()


def test_it_sends_letters_and_yes_no_around_the_symbolic_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(text: str) -> None:
        raise AssertionError(f"parsed {text!r}")

    clear_caches()
    monkeypatch.setattr(symbolic, "parse_latex", refuse)
    assert verify_math("A fails, B fails, so the answer is (C).", "C") == ("C", True)
    assert verify_math("A fails, B fails, so the answer is (C).", "(B)") == ("C", False)
    assert verify_math("I'd go with b.\nAnswer: b", "B") == ("B", True)
    assert verify_math("91 = 7 * 13 is not prime. The answer is No.", "no") == ("no", True)
    assert verify_math("Yes, since 2 + 2 = 4.", "True") == ("yes", True)
    assert verify_math("The claim is false.", "yes") == ("no", False)


def test_it_reads_short_references() -> None:
    assert [reference_kind(r) for r in ("B", "(c)", "Answer: D", "yes", "FALSE")] == [
        "choice", "choice", "choice", "yes_no", "yes_no",
    ]  # fmt: skip
    assert reference_kind("x") is None and reference_kind("e") is None
    assert reference_kind("12") is None and reference_kind("Paris") is None


def test_it_compares_short_text_case_folded() -> None:
    assert verify_short_answer(
        "Counting on, we reach Friday. The answer is FRIDAY.", "friday"
    ).passed
    assert not verify_short_answer("The answer is Thursday.", "friday").passed
    assert verify_short_answer("nothing", "friday").answer is None


@pytest.mark.parametrize(
    "form",
    [
        r"\frac{\sqrt{2}}{2}",
        "2x^2+3x-1",
        r"(x+1)(x-1)",
        r"3\sqrt{3}\pi",
        r"\sqrt[3]{27}",
        r"x^{-1}",
        r"\frac{a+b}{c}",
        "-x^2",
        r"2\cdot3\times4",
        r"\sqrt{-4}",
        r"(-8)^{\frac{1}{3}}",
        "AB",
        "xy^2z",
        r"\frac{1}{\sqrt{3}}",
        r"2^{10}",
        r"\pi r^2",
    ],
)
def test_its_float_screen_agrees_with_math_verify(form: str) -> None:
    quick = quick_value(form)
    assert quick is not None
    value = symbolic.numeric_value(form)
    assert value is not None
    assert abs(quick[0] - value) <= 1e-9 * max(abs(value), 1.0)


@pytest.mark.parametrize("form", ["f(x)", "x^23", "2/3x", r"\ln 2", "e^2", "2i", "1,000", "5!"])
def test_its_float_screen_leaves_ambiguous_text_to_the_parser(form: str) -> None:
    assert quick_value(form) is None


def test_its_float_screen_agrees_on_random_polynomials() -> None:
    rng = random.Random(14)
    for _ in range(60):
        terms = [
            f"{rng.randint(1, 9)}{rng.choice('abxyz')}^{{{rng.randint(0, 4)}}}" for _ in range(3)
        ]
        form = "+".join(terms) + rf"-\frac{{{rng.randint(1, 9)}}}{{{rng.randint(1, 9)}}}"
        quick, value = quick_value(form), symbolic.numeric_value(form)
        assert quick is not None and value is not None
        assert abs(quick[0] - value) <= 1e-9 * max(abs(value), 1.0), form
