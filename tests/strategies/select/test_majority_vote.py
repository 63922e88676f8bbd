"""Majority vote, tie credit and the first-candidate baseline (ALGORITHMS §7)."""

from __future__ import annotations

import pytest

from strategies.select.first import FirstConfig, select_first
from strategies.select.majority import (
    MajorityConfig,
    expected_accuracy,
    majority_vote,
    select_majority,
)
from strategies.types import Candidate


def test_it_picks_the_most_common_answer() -> None:
    result = majority_vote(["3", "5", "5", "3", "5"])
    assert result.answer == "5"
    assert result.tied == ("5",)
    assert result.counts == {"3": 2, "5": 3}
    assert result.index == 1


def test_it_groups_equivalent_spellings() -> None:
    result = majority_vote(["18.0", "17", "18", "18.00", "17"])
    assert result.answer == "18.0"  # the group's first-seen spelling
    assert result.counts == {"18.0": 3, "17": 2}


def test_it_breaks_ties_by_earliest_first_occurrence() -> None:
    result = majority_vote([None, "8", "7", "7", "8"])
    assert result.answer == "8"
    assert result.tied == ("8", "7")
    assert result.index == 1


def test_it_never_lets_none_vote() -> None:
    result = majority_vote([None, None, None, "4"])
    assert result.answer == "4"
    assert result.counts == {"4": 1}


def test_it_returns_none_when_no_answer_voted() -> None:
    for answers in ([None, None], []):
        result = majority_vote(answers)
        assert result.answer is None
        assert result.tied == ()
        assert result.counts == {}
        assert result.index is None


def test_it_gives_one_over_tied_credit() -> None:
    tied = majority_vote(["1", "2", "3", "1", "2", "3"]).tied
    assert tied == ("1", "2", "3")
    assert expected_accuracy(tied, "2") == pytest.approx(1 / 3)
    assert expected_accuracy(tied, "2.0") == pytest.approx(1 / 3)
    assert expected_accuracy(tied, "4") == 0.0
    assert expected_accuracy(("2",), "2") == 1.0
    assert expected_accuracy((), "2") == 0.0


def test_it_accepts_a_judge_function() -> None:
    assert expected_accuracy(("1", "2"), lambda answer: answer == "1") == 0.5


def test_it_accepts_its_empty_config() -> None:
    assert majority_vote(["1"], MajorityConfig()).answer == "1"


def test_it_selects_the_first_candidate() -> None:
    pool = [Candidate(text="hmm"), Candidate(text="The answer is 3", answer="3")]
    assert select_first(pool) == 0
    assert select_first(pool, FirstConfig(require_answer=True)) == 1
    assert select_first([]) is None
    assert select_first([Candidate(text="")], FirstConfig(require_answer=True)) is None


def test_it_groups_answers_by_the_math_equivalence() -> None:
    result = majority_vote([r"2\sqrt{2}", "3", r"\sqrt{8}", "x = 3", r"2 \sqrt2", "3.0"])
    assert result.counts == {r"2\sqrt{2}": 3, "3": 3}
    assert result.tied == (r"2\sqrt{2}", "3")
    spread = majority_vote(["x = 5", "y = 5", "5"])  # 5 joins both names; x and y stay apart
    assert spread.counts == {"x = 5": 3}


def test_it_selects_by_the_math_equivalence() -> None:
    pool = [Candidate(text="", answer=a) for a in ("(1, 2)", "x = 1, y = 2", "(2, 1)")]
    selection = select_majority(pool)
    assert selection.index == 0 and selection.tied == (0,)
    assert selection.scores == (2.0, 2.0, 1.0)
