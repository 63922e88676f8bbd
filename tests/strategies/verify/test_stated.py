"""A reviewer's stated answer is judged the way each text verifier judges the answer it
extracts; the verifiers that judge whole outputs cannot judge one."""

from __future__ import annotations

import pytest

from strategies.verify.choice import verify_choice
from strategies.verify.exact import verify_exact
from strategies.verify.math import verify_math
from strategies.verify.regex import verify_regex
from strategies.verify.stated import STATED_ANSWER_VERIFIERS, stated_answer_passes


@pytest.mark.parametrize(("verifier", "config", "answer", "reference", "expected"), [
    ("math", {}, "4.0", "4", True),
    ("math", {}, "\\frac{1}{2}", "0.5", True),
    ("math", {}, "x = 5", "5", True),
    ("math", {}, "6", "5", False),
    ("math", {}, "1,000", "The total is #### 1000", True),   # a GSM8K solution as reference
    ("math", {}, "(b)", "B", True),                          # letters by their key
    ("math", {}, "C", "B", False),
    ("math", {}, "True", "yes", True),                       # yes/no by their key
    ("math", {"lenient": True}, "50", "0.5", True),          # lenient: gold*100
    ("math", {}, "50", "0.5", False),
    ("exact", {}, "  PARIS ", "paris", True),
    ("exact", {"case_sensitive": True}, "Paris", "paris", False),
    ("regex", {}, "1,000", "1000", True),
    ("regex", {"numeric": False}, "1,000", "1000", False),
    ("choice", {}, "c", "(C)", True),
    ("choice", {"choices": "ABCD"}, "D", "A", False),
])
def test_it_judges_a_stated_answer_as_the_verifier_does(
        verifier: str, config: dict[str, object], answer: str, reference: str,
        expected: bool) -> None:
    assert stated_answer_passes(verifier, config, answer, reference) is expected


@pytest.mark.parametrize(("text", "answer", "reference"), [
    ("So 2 + 2 = 4. The answer is 4.", "4", "4"),
    ("The answer is 7.", "7", "9"),
    ("I pick the answer \\boxed{\\frac{3}{4}}", "0.75", "3/4"),
])
def test_it_agrees_with_the_math_verifier_on_its_own_extraction(
        text: str, answer: str, reference: str) -> None:
    extracted, passed = verify_math(text, reference)
    assert stated_answer_passes("math", {}, answer, reference) is passed
    assert extracted is not None
    assert stated_answer_passes("math", {}, extracted, reference) is passed


def test_it_agrees_with_exact_regex_and_choice_on_their_extractions() -> None:
    exact = verify_exact("  Paris ", "paris")
    assert stated_answer_passes("exact", {}, exact.answer or "", "paris") is exact.passed
    regex = verify_regex("The answer is 1,000.", "1000")
    assert stated_answer_passes("regex", {}, regex.answer or "", "1000") is regex.passed
    choice = verify_choice("so the answer is (B)", "b")
    assert stated_answer_passes("choice", {}, choice.answer or "", "b") is choice.passed


@pytest.mark.parametrize("verifier", ["judge", "unit_tests", "self_eval", "extract", "nope"])
def test_it_cannot_judge_with_a_verifier_of_whole_outputs(verifier: str) -> None:
    assert verifier not in STATED_ANSWER_VERIFIERS
    assert stated_answer_passes(verifier, {}, "4", "4") is None


def test_it_needs_an_answer_and_a_reference() -> None:
    assert stated_answer_passes("math", {}, "  ", "4") is None
    assert stated_answer_passes("math", {}, "4", "") is None
    assert stated_answer_passes("choice", {}, "A", "no letter here at all") is None


def test_it_refuses_a_bad_config_as_the_verifier_would() -> None:
    with pytest.raises(ValueError, match="lenient"):
        stated_answer_passes("math", {"lenient": "yes"}, "4", "4")
