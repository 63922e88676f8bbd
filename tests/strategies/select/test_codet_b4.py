"""CodeT and B4 over a pass matrix (ALGORITHMS §10), on worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import betaln  # type: ignore[import-untyped]

from strategies.select.b4 import B4Config, b4_rank, b4_score, select_b4
from strategies.select.base import selection_credit
from strategies.select.clusters import ClusterRanking
from strategies.select.codet import CodeTConfig, codet_rank, select_codet
from strategies.types import Candidate

# Solutions 0-2 agree and pass test 0 only; solution 3 passes tests 1 and 2.
MATRIX = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 1]])


def test_it_ranks_codet_clusters_with_the_paper_exponent() -> None:
    # |S| x |T|: {0,1,2} -> 3 x 1 = 3; {3} -> 1 x 2 = 2
    ranking = codet_rank(MATRIX, CodeTConfig(solution_exponent=1.0))
    assert ranking == ClusterRanking(clusters=((0, 1, 2), (3,)), scores=(3.0, 2.0))


def test_it_ranks_codet_clusters_with_the_code_exponent() -> None:
    # sqrt(|S|) x |T|: {0,1,2} -> sqrt(3) = 1.732; {3} -> 1 x 2 = 2
    ranking = codet_rank(MATRIX)
    assert ranking.clusters == ((3,), (0, 1, 2))
    assert ranking.scores == pytest.approx((2.0, math.sqrt(3)))


def test_it_scores_zero_test_clusters_zero() -> None:
    matrix = np.array([[0, 0], [0, 0], [0, 0], [0, 1]])
    ranking = codet_rank(matrix, CodeTConfig(solution_exponent=1.0))
    assert ranking.clusters == ((3,), (0, 1, 2))
    assert ranking.scores == (1.0, 0.0)
    ties = codet_rank(np.zeros((3, 2), dtype=int))
    assert ties == ClusterRanking(clusters=((0, 1, 2),), scores=(0.0,))


def test_it_computes_b4_by_hand() -> None:
    alpha, beta0 = 1e3, 1e4
    n, m = 4, 3
    # x = {0,1,2}, y = {t0}: wrong solution 3 on y -> E1 = [0]; on the rest -> E0 = [1, 1]
    cluster_a = (
        betaln(3 + alpha, n - 3 + 1)
        + betaln(1 + alpha, m - 1 + 1)
        + betaln(0 + 1, 1 - 0 + 1)
        + betaln(2 + 1, 2 - 2 + beta0)
    )
    # x = {3}, y = {t1, t2}: wrong solutions 0-2 on y -> E1 = 6 zeros; on t0 -> E0 = 3 ones
    cluster_b = (
        betaln(1 + alpha, n - 1 + 1)
        + betaln(2 + alpha, m - 2 + 1)
        + betaln(0 + 1, 6 - 0 + 1)
        + betaln(3 + 1, 3 - 3 + beta0)
    )
    assert b4_score(MATRIX, [0, 1, 2]) == pytest.approx(cluster_a)
    assert b4_score(MATRIX, [3]) == pytest.approx(cluster_b)
    ranking = b4_rank(MATRIX, B4Config(alpha_xy=alpha, beta_0=beta0))
    assert ranking.clusters == ((0, 1, 2), (3,))  # wrong code passing 3 wrong tests is unlikely
    assert ranking.scores == pytest.approx((cluster_a, cluster_b))


def test_it_needs_no_special_case_for_empty_submatrices() -> None:
    alpha, beta0 = 1e3, 1e4
    assert betaln(1, 1) == 0.0
    assert betaln(1, beta0) == pytest.approx(-math.log(beta0))
    # everyone agrees and passes everything: no wrong solutions, E1 and E0 are empty
    everyone = np.ones((2, 2), dtype=int)
    expected = betaln(2 + alpha, 1) + betaln(2 + alpha, 1) + 0.0 - math.log(beta0)
    assert b4_score(everyone, [0, 1]) == pytest.approx(expected)
    # one solution, no tests: E1 and E0 empty, y empty
    assert b4_score(np.zeros((1, 0), dtype=int), [0]) == pytest.approx(
        betaln(1 + alpha, 1) + betaln(alpha, 1) + 0.0 - math.log(beta0)
    )
    # x = {0}, y = {}: E1 (wrong x correct tests) is empty; E0 = the wrong row [1, 1]
    matrix = np.array([[0, 0], [1, 1]])
    assert b4_score(matrix, [0]) == pytest.approx(
        betaln(1 + alpha, 2) + betaln(alpha, 3) + 0.0 + betaln(2 + 1, 2 - 2 + beta0)
    )


def test_it_selects_the_top_cluster_with_fractional_credit() -> None:
    pool = [
        Candidate(text="a", is_correct=True),
        Candidate(text="b", is_correct=False),
        Candidate(text="c", is_correct=True),
        Candidate(text="d", is_correct=False),
    ]
    selection = select_b4(pool, matrix=MATRIX)
    assert (selection.index, selection.tied, selection.ranking) == (0, (0, 1, 2), (0, 3))
    assert selection_credit(selection, pool) == pytest.approx(2 / 3)
    codet = select_codet(pool, matrix=MATRIX)
    assert (codet.index, codet.tied, codet.ranking) == (3, (3,), (3, 0))
    assert codet.scores == pytest.approx((math.sqrt(3),) * 3 + (2.0,))
    assert selection_credit(codet, pool) == 0.0


def test_it_checks_the_matrix() -> None:
    pool = [Candidate(text="a"), Candidate(text="b")]
    with pytest.raises(ValueError, match="matrix="):
        select_codet(pool)
    with pytest.raises(ValueError, match="rows"):
        select_b4(pool, matrix=MATRIX)
    with pytest.raises(ValueError, match="0 and 1"):
        codet_rank(np.array([[2, 0]]))
    with pytest.raises(ValueError, match="2-D"):
        b4_rank(np.array([1, 0]))


def test_it_rejects_bad_configs() -> None:
    with pytest.raises(ValueError, match="solution_exponent"):
        CodeTConfig(solution_exponent=2.0)
    with pytest.raises(ValueError, match="alpha_xy"):
        B4Config(alpha_xy=0.0)
    with pytest.raises(ValueError, match="beta_0"):
        B4Config(beta_0=-1.0)
