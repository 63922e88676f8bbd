"""Exact, regex and multiple-choice verifiers in the uniform ``VerifierResult`` shape."""

from __future__ import annotations

import pytest

from strategies.verify.choice import ChoiceConfig, extract_choice, verify_choice
from strategies.verify.exact import ExactConfig, verify_exact
from strategies.verify.regex import (
    MAX_PATTERN_LENGTH,
    RegexConfig,
    extract_with_pattern,
    verify_regex,
)
from strategies.verify.result import VerifierResult


def test_it_matches_exactly_after_normalising() -> None:
    assert verify_exact("  The  Eiffel\nTower ", "the eiffel tower") == VerifierResult(
        answer="the eiffel tower", passed=True, score=1.0, detail="exact match"
    )
    assert not verify_exact("Paris.", "Paris").passed
    assert verify_exact("Paris.", "Paris", ExactConfig(strip_punctuation=True)).passed
    assert not verify_exact("Paris", "paris", ExactConfig(case_sensitive=True)).passed
    assert not verify_exact("a  b", "a b", ExactConfig(collapse_whitespace=False)).passed
    with pytest.raises(ValueError, match="case_sensitive"):
        ExactConfig(case_sensitive="no")  # type: ignore[arg-type]


def test_it_extracts_with_the_default_pattern() -> None:
    assert extract_with_pattern("x\nThe answer is 12.\nThe answer is 13.") == "13"
    result = verify_regex("Work...\nthe final answer is: 1,024.", "1024")
    assert (result.answer, result.passed, result.score) == ("1,024", True, 1.0)
    assert verify_regex("The answer is Blue", "blue").passed
    assert not verify_regex("The answer is Blue", "blue", RegexConfig(case_sensitive=True)).passed


def test_it_uses_the_named_then_the_first_group() -> None:
    named = RegexConfig(pattern=r"(\w+)=(?P<answer>\d+)")
    assert extract_with_pattern("a=1 b=2", named) == "2"
    first = RegexConfig(pattern=r"(\w+)=(\d+)", occurrence="first")
    assert extract_with_pattern("a=1 b=2", first) == "a"
    assert extract_with_pattern("a=1 b=2", RegexConfig(pattern=r"(\w+)=(\d+)", group="2")) == "2"
    assert extract_with_pattern("a=1", RegexConfig(pattern=r"\d")) == "1"  # whole match
    numeric_off = RegexConfig(pattern=r"=(\d+\.?\d*)", numeric=False)
    assert not verify_regex("x=7.0", "7", numeric_off).passed
    assert verify_regex("x=7.0", "7", RegexConfig(pattern=r"=(\d+\.?\d*)")).passed


def test_it_reports_a_missing_match() -> None:
    assert verify_regex("nothing here", "5") == VerifierResult(
        answer=None, passed=False, score=0.0, detail="pattern not found"
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pattern": "(unclosed"}, "pattern"),
        ({"pattern": "a" * (MAX_PATTERN_LENGTH + 1)}, "pattern"),
        ({"pattern": ""}, "pattern"),
        ({"pattern": r"(\d)", "group": "2"}, "group"),
        ({"pattern": r"(\d)", "group": "name"}, "group"),
        ({"occurrence": "middle"}, "occurrence"),
        ({"max_text_chars": 0}, "max_text_chars"),
    ],
)
def test_it_rejects_a_bad_regex_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RegexConfig(**kwargs)  # type: ignore[arg-type]


def test_it_only_searches_the_tail_of_long_outputs() -> None:
    config = RegexConfig(pattern=r"ID(\d)", max_text_chars=10)
    assert extract_with_pattern("ID1" + "x" * 50, config) is None
    assert extract_with_pattern("x" * 50 + "ID2", config) == "2"


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is (B).", "B"),
        ("After checking, the answer is C", "C"),
        ("B) 42", "B"),
        ("I pick\nD) because it is largest", "D"),
        ("Answer: b", "B"),
        ("answer: (a) since", "A"),
        ("The correct answer is **E**.", "E"),
        ("Between A and C, I would choose C.", "C"),
        ("It must be D", "D"),
        ("The answer is (B). Although (D) is tempting, I stay with B.", "B"),
    ],
)
def test_it_extracts_the_chosen_letter(text: str, letter: str) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize(
    "text", ["A train leaves at noon.", "I think so.", "The answer is a number.", "no letter", "F"]
)
def test_it_finds_no_choice_in_prose(text: str) -> None:
    assert extract_choice(text) is None


def test_it_honours_the_configured_choices() -> None:
    config = ChoiceConfig(choices="ABCD")
    assert extract_choice("The answer is E, or maybe D", config) == "D"
    assert extract_choice("It is E", config) is None


def test_it_verifies_a_choice_against_any_reference_spelling() -> None:
    assert verify_choice("The answer is (B)", "B").passed
    assert verify_choice("the answer is b", "(B)").passed
    assert verify_choice("B) 12", "Answer: B") == VerifierResult(
        answer="B", passed=True, score=1.0, detail="chose B, reference B"
    )
    assert verify_choice("C) 12", "b").passed is False
    assert verify_choice("unsure", "b") == VerifierResult(
        answer=None, passed=False, score=0.0, detail="no choice found"
    )
    with pytest.raises(ValueError, match="reference"):
        verify_choice("The answer is B", "banana")
    with pytest.raises(ValueError, match="choices"):
        ChoiceConfig(choices="abc")
