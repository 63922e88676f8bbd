"""Cohen's kappa on hand-computed agreement tables, and against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.metrics.stats import cohen_kappa


def test_it_matches_the_hand_computed_two_by_two() -> None:
    # Rows: human pass / fail; columns: verifier pass / fail. 50 labels, 35 agree:
    # p_o = 0.7; margins 25/25 and 30/20 give p_e = (25*30 + 25*20) / 2500 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    assert cohen_kappa([[20, 5], [10, 15]]) == pytest.approx(0.4)


def test_it_is_one_on_perfect_agreement_and_minus_one_on_perfect_disagreement() -> None:
    assert cohen_kappa([[7, 0], [0, 3]]) == 1.0
    assert cohen_kappa([[0, 2], [2, 0]]) == -1.0


def test_it_is_zero_when_agreement_is_what_chance_gives() -> None:
    # Margins 50/50 both ways: p_e = 0.5, and p_o = 0.5.
    assert cohen_kappa([[25, 25], [25, 25]]) == 0.0


def test_it_matches_a_hand_computed_uneven_table() -> None:
    # p_o = (1 + 1) / 3; row sums 1, 2 and column sums 2, 1: p_e = (1*2 + 2*1) / 9 = 4/9;
    # kappa = (6/9 - 4/9) / (5/9) = 0.4.
    assert cohen_kappa([[1, 0], [1, 1]]) == pytest.approx(0.4)
    # One human "pass" on a verifier "fail", one human "fail" on a verifier "pass", one
    # agreeing "fail": p_o = 1/3, p_e = 5/9, kappa = (3/9 - 5/9) / (4/9) = -0.5.
    assert cohen_kappa([[0, 1], [1, 1]]) == pytest.approx(-0.5)


def test_it_takes_more_than_two_categories() -> None:
    # n = 10, diagonal 7; row sums 4, 3, 3; column sums 3, 4, 3:
    # p_e = (12 + 12 + 9) / 100 = 0.33; kappa = (0.7 - 0.33) / 0.67.
    table = [[2, 2, 0], [1, 2, 0], [0, 0, 3]]
    assert cohen_kappa(table) == pytest.approx(0.37 / 0.67)


def test_it_is_undefined_when_both_raters_use_one_category() -> None:
    assert math.isnan(cohen_kappa([[4, 0], [0, 0]]))


@pytest.mark.parametrize("table", [[[1, 2, 3]], [[0, 0], [0, 0]], [[1, -1], [0, 2]],
                                   [[1]], [[1, float("nan")], [0, 1]]])
def test_it_refuses_tables_it_cannot_read(table: list[list[float]]) -> None:
    with pytest.raises(ValueError):
        cohen_kappa(table)


def test_it_agrees_with_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    human = rng.integers(0, 2, size=200)
    verifier = np.where(rng.random(200) < 0.8, human, 1 - human)
    table = np.zeros((2, 2), dtype=int)
    np.add.at(table, (human, verifier), 1)
    assert cohen_kappa(table) == pytest.approx(metrics.cohen_kappa_score(human, verifier))
