"""Best-of-N and the lowest-perplexity baseline (ALGORITHMS §8, §9)."""

from __future__ import annotations

import math

import pytest

from strategies.select.best_of_n import BestOfNConfig, reward, select_best_of_n
from strategies.select.perplexity import LowestPerplexityConfig, select_lowest_perplexity
from strategies.types import Candidate


def _candidate(answer: str | None, score: float | None, logprob: float) -> Candidate:
    return Candidate(text="", answer=answer, score=score, logprob_sum=logprob, generated_tokens=1)


def test_it_picks_the_highest_score() -> None:
    pool = [_candidate("1", 0.2, -0.1), _candidate("2", 0.8, -3.0), _candidate("3", 0.5, -0.2)]
    selection = select_best_of_n(pool)
    assert (selection.index, selection.answer, selection.tied) == (1, "2", (1,))
    assert selection.ranking == (1, 2, 0)
    assert selection.scores == (0.2, 0.8, 0.5)


def test_it_breaks_ties_by_mean_logprob_then_index() -> None:
    pool = [
        _candidate("1", 0.5, -0.1),
        _candidate("2", 0.9, -2.0),
        _candidate("3", 0.9, -1.0),
        _candidate("4", 0.9, -1.0),
    ]
    selection = select_best_of_n(pool)
    assert selection.index == 2  # higher mean logprob than 1, lower index than 3
    assert selection.tied == (2, 3)  # the same score and logprob: a true tie
    assert selection.ranking == (2, 3, 1, 0)


def test_it_reports_one_tie_per_answer() -> None:
    pool = [_candidate("4", 0.9, -1.0), _candidate("4.0", 0.9, -1.0), _candidate("5", 0.1, 0.0)]
    selection = select_best_of_n(pool)
    assert (selection.index, selection.tied, selection.ranking) == (0, (0,), (0, 2))


def test_it_scores_missing_or_nan_as_minus_infinity() -> None:
    assert reward(_candidate("1", None, 0.0)) == -math.inf
    assert reward(_candidate("1", math.nan, 0.0)) == -math.inf
    pool = [_candidate("1", None, -0.1), _candidate("2", -5.0, -9.0), _candidate("3", None, 0.0)]
    assert select_best_of_n(pool).index == 1
    unscored = [_candidate("1", None, -0.5), _candidate("2", None, -0.1)]
    assert select_best_of_n(unscored).index == 1  # all -inf: the logprob decides


def test_it_can_skip_candidates_without_an_answer() -> None:
    pool = [_candidate(None, 0.99, 0.0), _candidate("2", 0.1, 0.0)]
    assert select_best_of_n(pool).index == 0
    assert select_best_of_n(pool, BestOfNConfig(require_answer=True)).index == 1
    assert (
        select_best_of_n([_candidate(None, 1.0, 0.0)], BestOfNConfig(require_answer=True)).index
        is None
    )


def test_it_picks_the_lowest_perplexity() -> None:
    pool = [
        Candidate(text="a", answer="1", logprob_sum=-1.0, generated_tokens=2),  # -0.5
        Candidate(text="b", answer="2", logprob_sum=-1.0, generated_tokens=10),  # -0.1
        Candidate(text="c", answer="3", logprob_sum=-0.3, generated_tokens=3),  # -0.1
    ]
    selection = select_lowest_perplexity(pool)
    assert (selection.index, selection.tied) == (1, (1, 2))
    assert selection.scores == pytest.approx((-0.5, -0.1, -0.1))
    answered = LowestPerplexityConfig(require_answer=True)
    pool.insert(0, Candidate(text="", logprob_sum=0.0, generated_tokens=5))
    assert select_lowest_perplexity(pool).index == 0
    assert select_lowest_perplexity(pool, answered).index == 2
