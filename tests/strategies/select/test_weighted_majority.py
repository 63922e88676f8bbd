"""Weighted majority vote (ALGORITHMS §7)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from strategies.select.base import selection_credit
from strategies.select.majority import select_majority
from strategies.select.weighted import WeightedMajorityConfig, select_weighted_majority
from strategies.types import Candidate


def _candidate(
    answer: str | None, logprob: float, tokens: int = 1, score: float | None = None
) -> Candidate:
    return Candidate(
        text="", answer=answer, logprob_sum=logprob, generated_tokens=tokens, score=score
    )


def test_it_weights_votes_by_mean_logprob() -> None:
    # "7": exp(-2) * 2 = 0.271; "8": exp(-0.1) = 0.905
    pool = [_candidate("7", -2.0), _candidate("7.0", -2.0), _candidate("8", -0.1)]
    selection = select_weighted_majority(pool)
    assert (selection.index, selection.answer, selection.tied) == (2, "8", (2,))
    assert selection.scores == pytest.approx([2 * math.exp(-2)] * 2 + [math.exp(-0.1)])
    assert selection.ranking == (2, 0)
    assert select_majority(pool).answer == "7"


def test_it_normalises_by_length() -> None:
    # mean logprob: "7" -> -4/8 = -0.5, "8" -> -1/1 = -1.0
    pool = [_candidate("7", -4.0, tokens=8), _candidate("8", -1.0, tokens=1)]
    assert select_weighted_majority(pool).answer == "7"
    sum_config = WeightedMajorityConfig(weight="sum_logprob")
    assert select_weighted_majority(pool, sum_config).answer == "8"


def test_it_reports_ties_and_breaks_them_by_first_occurrence() -> None:
    # "8": 0.6; "7": 0.3 + 0.3 = 0.6 (up to rounding) -> tie, earliest first occurrence wins
    pool = [
        _candidate(None, 0.0),
        _candidate("8", math.log(0.6)),
        _candidate("7", math.log(0.3)),
        _candidate("7", math.log(0.3)),
    ]
    selection = select_weighted_majority(pool)
    assert (selection.index, selection.answer, selection.tied) == (1, "8", (1, 2))
    judged = [dataclasses.replace(c, is_correct=c.answer == "7") for c in pool]
    assert selection_credit(selection, judged) == 0.5


def test_it_aggregates_sum_logprob_with_logsumexp() -> None:
    # "7": log(e^-1000 + e^-1002); "8": log(2 e^-1001): no underflow, "7" wins
    pool = [
        _candidate("7", -1000.0),
        _candidate("8", -1001.0),
        _candidate("8", -1001.0),
        _candidate("7", -1002.0),
    ]
    selection = select_weighted_majority(pool, WeightedMajorityConfig(weight="sum_logprob"))
    assert selection.answer == "7"
    expected_7 = -1000 + math.log1p(math.exp(-2))
    expected_8 = -1001 + math.log(2)
    assert selection.scores == pytest.approx([expected_7, expected_8, expected_8, expected_7])


def test_it_weights_votes_by_verifier_score() -> None:
    pool = [
        _candidate("7", 0.0, score=0.4),
        _candidate("7", 0.0, score=0.4),
        _candidate("8", 0.0, score=0.9),
        _candidate("9", 0.0),  # no score: weighs nothing
    ]
    selection = select_weighted_majority(pool, WeightedMajorityConfig(weight="score"))
    assert selection.answer == "8"
    assert selection.scores == pytest.approx([0.8, 0.8, 0.9, 0.0])


def test_it_never_lets_none_vote() -> None:
    pool = [_candidate(None, 0.0), _candidate(None, 0.0), _candidate("3", -5.0)]
    for weight in ("mean_logprob", "sum_logprob", "score"):
        config = WeightedMajorityConfig(weight=weight)
        assert select_weighted_majority(pool, config).index == 2
        abstain = select_weighted_majority(pool[:2], config)
        assert (abstain.index, abstain.answer, abstain.tied, abstain.ranking) == (
            None,
            None,
            (),
            (),
        )


def test_it_reduces_to_majority_with_equal_weights() -> None:
    pool = [_candidate(a, 0.0) for a in ["1", "2", "2", "1", "3", "1"]]
    assert select_weighted_majority(pool).tied == select_majority(pool).tied == (0,)


def test_it_rejects_an_unknown_weight() -> None:
    with pytest.raises(ValueError, match="weight"):
        WeightedMajorityConfig(weight="entropy")  # type: ignore[arg-type]
