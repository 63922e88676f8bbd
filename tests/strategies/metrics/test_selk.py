"""sel@k: the generic seeded estimator and the exact first, oracle and best-of-n forms."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from strategies.metrics.majk import majority_at_k_array
from strategies.metrics.passk import pass_at_k
from strategies.metrics.selk import (
    SelAtKConfig,
    best_of_n_at_k,
    best_of_n_curve,
    first_at_k,
    majority_vote_accuracy,
    oracle_at_k,
    oracle_gap,
    sel_at_k,
)


def _best_of_n_brute_force(scores: list[float], correct: list[int], k: int) -> Fraction:
    total = Fraction(0)
    subsets = list(itertools.combinations(range(len(scores)), k))
    for subset in subsets:
        top = max(scores[i] for i in subset)
        tied = [i for i in subset if scores[i] == top]
        total += Fraction(sum(correct[i] for i in tied), len(tied))
    return total / len(subsets)


def test_best_of_n_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(123)
    for _ in range(150):
        n = int(rng.integers(1, 10))
        scores = rng.integers(0, 4, size=n).astype(float)  # few levels: many ties
        correct = rng.integers(0, 2, size=n)
        k = int(rng.integers(1, n + 1))
        expected = _best_of_n_brute_force(scores.tolist(), correct.tolist(), k)
        got = best_of_n_at_k(scores, correct, k)[0]
        assert got == pytest.approx(float(expected), abs=1e-12)


def test_best_of_n_without_ties_uses_the_rank_formula() -> None:
    # Sorted scores: element i (0-based) is the subset max with prob C(i, k-1) / C(n, k).
    scores = np.array([[0.3, 0.1, 0.9, 0.5, 0.7]])
    correct = np.array([[0, 1, 0, 1, 1]])  # in score order: 1, 0, 1, 1, 0
    k = 3
    probs = [0, 0, 1 / 10, 3 / 10, 6 / 10]
    expected = sum(p * c for p, c in zip(probs, [1, 0, 1, 1, 0], strict=True))
    assert best_of_n_at_k(scores, correct, k)[0] == pytest.approx(expected)


def test_best_of_n_is_pass_at_1_at_k_1_and_the_top_pick_at_k_n() -> None:
    scores = np.array([[0.2, 0.8, 0.5, 0.8], [1.0, 0.0, 0.0, 0.0]])
    correct = np.array([[1, 1, 0, 0], [0, 1, 1, 1]])
    np.testing.assert_allclose(best_of_n_at_k(scores, correct, 1), [0.5, 0.75])
    np.testing.assert_allclose(best_of_n_at_k(scores, correct, 4), [0.5, 0.0])


def test_first_at_k_is_pass_at_1_for_every_k() -> None:
    correct = np.array([1, 0, 0, 1, 0, 1, 0, 0])
    for k in (1, 3, 8):
        assert first_at_k(correct, k)[0] == pytest.approx(3 / 8)
        # A random k-subset, in random order: its first element is a uniform draw.
        estimate = sel_at_k(
            8,
            k,
            lambda idx: float(correct[idx[0]]),
            rng=np.random.default_rng(k),
            n_resamples=20_000,
        )
        assert estimate == pytest.approx(3 / 8, abs=0.015)


def test_oracle_at_k_is_pass_at_k() -> None:
    correct = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 0, 1, 0]])
    got = oracle_at_k(correct, 2)
    expected = [pass_at_k(5, c, 2) for c in (1, 0, 3)]
    np.testing.assert_allclose(got, expected)


def test_the_generic_estimator_agrees_with_the_exact_forms() -> None:
    rng = np.random.default_rng(7)
    scores = rng.normal(size=12)
    correct = rng.integers(0, 2, size=12)

    def best(idx: np.ndarray) -> float:
        return float(correct[idx[np.argmax(scores[idx])]])

    def oracle(idx: np.ndarray) -> float:
        return float(correct[idx].max())

    for k in (2, 5):
        seeded = np.random.default_rng(0)
        assert sel_at_k(12, k, best, rng=seeded, n_resamples=20_000) == pytest.approx(
            best_of_n_at_k(scores, correct, k)[0], abs=0.015
        )
        assert sel_at_k(12, k, oracle, rng=seeded, n_resamples=20_000) == pytest.approx(
            oracle_at_k(correct, k)[0], abs=0.015
        )


def test_the_generic_estimator_is_reproducible_and_draws_distinct_indices() -> None:
    seen: list[np.ndarray] = []

    def record(idx: np.ndarray) -> float:
        seen.append(idx.copy())
        return float(idx.sum())

    first = sel_at_k(10, 4, record, rng=np.random.default_rng(3), n_resamples=50)
    second = sel_at_k(10, 4, record, rng=np.random.default_rng(3), n_resamples=50)
    assert first == second
    assert all(len(set(idx.tolist())) == 4 for idx in seen)
    with pytest.raises(ValueError):
        sel_at_k(3, 4, record, rng=np.random.default_rng(0))


def test_oracle_gap_is_coverage_minus_selected() -> None:
    assert oracle_gap([1.0, 0.5, 0.0], [0.5, 0.5, 0.0]) == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError):
        oracle_gap([1.0], [1.0, 0.0])


def test_it_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        best_of_n_at_k([[1.0, 2.0]], [[1, 0, 1]], 1)
    with pytest.raises(ValueError, match="NaN"):
        best_of_n_at_k([[1.0, np.nan]], [[1, 0]], 1)
    with pytest.raises(ValueError, match="k"):
        first_at_k([[1, 0]], 3)


def test_it_validates_the_config() -> None:
    assert SelAtKConfig().n_resamples == 200
    for field in ("k", "n_resamples", "seed"):
        with pytest.raises(ValueError, match=field):
            SelAtKConfig(**{field: -1})


def test_the_whole_pool_vote_matches_maj_at_n_and_weights_change_it() -> None:
    rng = np.random.default_rng(6)
    ids = rng.integers(-1, 3, size=(200, 7))
    gold = rng.integers(-1, 3, size=200)
    np.testing.assert_allclose(
        majority_vote_accuracy(ids, gold), majority_at_k_array(ids, gold, 7), atol=1e-12
    )
    # 1 vote for 0 (weight 0.9) against 2 for 1 (0.3 + 0.4); None's weight never counts.
    answers, weights = [[0, 1, 1, -1]], [[0.9, 0.3, 0.4, 5.0]]
    assert majority_vote_accuracy(answers, [0], weights)[0] == 1.0
    assert majority_vote_accuracy(answers, [1], weights)[0] == 0.0
    assert majority_vote_accuracy([[0, 1]], [1], [[0.5, 0.5]])[0] == 0.5  # weighted tie
    assert majority_vote_accuracy([[-1, -1]], [0])[0] == 0.0
    with pytest.raises(ValueError, match="weights"):
        majority_vote_accuracy(answers, [0], [[1.0, -1.0, 1.0, 1.0]])


def test_the_best_of_n_curve_sorts_once_and_matches_each_k() -> None:
    rng = np.random.default_rng(10)
    scores = np.round(rng.random((20, 30)), 1)
    correct = rng.integers(0, 2, size=(20, 30))
    curve = best_of_n_curve(scores, correct, [1, 4, 30])
    for k, values in curve.items():
        np.testing.assert_allclose(values, best_of_n_at_k(scores, correct, k))
    np.testing.assert_allclose(curve[1], correct.mean(axis=1))  # k = 1 is pass@1
