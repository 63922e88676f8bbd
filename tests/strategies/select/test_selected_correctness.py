"""Scoring any selector's choice in [0, 1]."""

from __future__ import annotations

import pytest

from strategies.select.majority import majority_vote
from strategies.select.scoring import selected_correctness
from strategies.types import Candidate


def _pool() -> list[Candidate]:
    return [
        Candidate(text="", answer="7", is_correct=False),
        Candidate(text="", answer="8", is_correct=True),
        Candidate(text="", answer=None, is_correct=False),
        Candidate(text="", answer="8.0", is_correct=True),
        Candidate(text="", answer="7", is_correct=False),
    ]


def test_it_scores_an_index_by_the_stored_verdict() -> None:
    assert selected_correctness(_pool(), 0) == 0.0
    assert selected_correctness(_pool(), 1) == 1.0


def test_it_scores_an_index_against_a_gold_answer() -> None:
    assert selected_correctness(_pool(), 3, gold="8") == 1.0
    assert selected_correctness(_pool(), 2, gold="8") == 0.0


def test_it_scores_nothing_chosen_as_zero() -> None:
    assert selected_correctness(_pool(), None) == 0.0


def test_it_gives_tie_credit_for_a_vote() -> None:
    pool = _pool()
    vote = majority_vote([c.answer for c in pool])
    assert vote.tied == ("7", "8")
    assert selected_correctness(pool, vote) == pytest.approx(0.5)
    assert selected_correctness(pool, vote, gold="8") == pytest.approx(0.5)
    assert selected_correctness(pool[:4], majority_vote([c.answer for c in pool[:4]])) == 1.0


def test_it_needs_a_verdict_or_a_gold() -> None:
    pool = [Candidate(text="", answer="3")]
    with pytest.raises(ValueError, match="gold"):
        selected_correctness(pool, 0)
    with pytest.raises(ValueError, match="gold"):
        selected_correctness(pool, majority_vote(["3"]))
    with pytest.raises(ValueError, match="range"):
        selected_correctness(pool, 5, gold="3")
