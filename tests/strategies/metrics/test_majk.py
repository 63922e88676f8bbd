"""maj@k: the exact DP against brute force over every k-subset, floats and Monte Carlo."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from strategies.metrics.majk import (
    MajorityAtKConfig,
    answer_counts,
    majority_at_k,
    majority_at_k_array,
    majority_at_k_counts,
    majority_at_k_exact,
    majority_at_k_mc,
    mean_majority_at_k,
)


def _brute_force(ids: list[int], gold: int, k: int) -> Fraction:
    """Average the tie-split vote credit over every k-subset (-1 = None, never votes)."""
    total = Fraction(0)
    subsets = list(itertools.combinations(ids, k))
    for subset in subsets:
        votes: dict[int, int] = {}
        for answer in subset:
            if answer >= 0:
                votes[answer] = votes.get(answer, 0) + 1
        if gold < 0 or gold not in votes:
            continue
        top = max(votes.values())
        tied = [a for a, count in votes.items() if count == top]
        if gold in tied:
            total += Fraction(1, len(tied))
    return total / len(subsets)


def _counts(ids: list[int], gold: int) -> tuple[int, list[int], int, int]:
    c_star = ids.count(gold) if gold >= 0 else 0
    others = [ids.count(a) for a in set(ids) if a >= 0 and a != gold]
    return c_star, others, ids.count(-1), len(ids)


def _random_cases(count: int, seed: int) -> list[tuple[list[int], int, int]]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        n = int(rng.integers(1, 12))
        n_classes = int(rng.integers(1, 5))
        ids = [int(a) for a in rng.integers(-1, n_classes, size=n)]
        gold = int(rng.integers(-1, n_classes))
        cases.append((ids, gold, int(rng.integers(1, n + 1))))
    return cases


def test_it_matches_brute_force_on_200_random_cases() -> None:
    cases = _random_cases(200, seed=20250101)
    assert any(-1 in ids for ids, _, _ in cases)  # None answers are exercised
    for ids, gold, k in cases:
        expected = _brute_force(ids, gold, k)
        assert majority_at_k_exact(*_counts(ids, gold), k) == expected, (ids, gold, k)
        got = majority_at_k_array(np.array([ids]), [gold], k)[0]
        assert got == pytest.approx(float(expected), abs=1e-12), (ids, gold, k)


def test_it_splits_ties_uniformly() -> None:
    # {g, g, o, o}: k=2 gives a tie in 4 of 6 pairs and a gold pair in 1.
    assert majority_at_k_exact(2, [2], 0, 4, 2) == Fraction(1 * 1 + 4 * Fraction(1, 2), 6)
    # Three-way tie at k = n: credit 1/3.
    assert majority_at_k_exact(1, [1, 1], 0, 3, 3) == Fraction(1, 3)
    # All None but gold: a gold vote always wins.
    assert majority_at_k_exact(1, [], 3, 4, 2) == Fraction(1, 2)


def test_it_gives_pass_at_1_at_k_1() -> None:
    assert majority_at_k(3, [4, 2], 1, 10, 1) == pytest.approx(0.3)


def test_the_float_dp_matches_the_exact_dp_on_large_pools() -> None:
    rng = np.random.default_rng(5)
    probs = np.array([0.1, 0.35, 0.25, 0.15, 0.1, 0.05])  # None, gold, four distractors
    ids = rng.choice(np.arange(-1, 5), p=probs, size=(4, 200))
    gold = np.zeros(4, dtype=np.int64)
    for k in (1, 7, 16, 40, 200):
        got = majority_at_k_array(ids, gold, k)
        for row, value in zip(ids, got, strict=True):
            exact = majority_at_k(*_counts(row.tolist(), 0), k)
            assert value == pytest.approx(exact, rel=1e-9, abs=1e-12)


def _contested_counts(seed: int, problems: int, n: int) -> tuple[list[int], list[list[int]],
                                                                  list[int]]:
    """Vote counts of problems whose gold answer and a few distractors run close."""
    rng = np.random.default_rng(seed)
    golds, others, nones = [], [], []
    for _ in range(problems):
        shares = rng.dirichlet([3.0, 3.0, 2.0, 1.0, 0.5, 0.3])
        counts = rng.multinomial(n, shares).tolist()
        golds.append(counts[0])
        others.append(sorted(counts[1:5], reverse=True))
        nones.append(counts[5])
    return golds, others, nones


def test_the_pruned_dp_matches_the_exact_dp_where_votes_are_contested() -> None:
    golds, others, nones = _contested_counts(11, 6, 150)
    for k in (5, 40, 75, 149, 150):
        got = majority_at_k_counts(golds, others, nones, k)
        for row in range(6):
            exact = majority_at_k(golds[row], others[row], nones[row], 150, k)
            assert got[row] == pytest.approx(exact, rel=1e-9, abs=1e-12), (row, k)


def test_a_problem_over_the_work_bound_is_left_to_the_caller() -> None:
    golds, others, nones = _contested_counts(12, 8, 200)
    full = majority_at_k_counts(golds, others, nones, 100)
    bounded = majority_at_k_counts(golds, others, nones, 100, max_cells=2e4)
    left = np.isnan(bounded)
    assert left.any() and not left.all()
    assert np.array_equal(bounded[~left], full[~left])  # each problem on its own
    assert not np.isnan(majority_at_k_counts(golds, others, nones, 200, max_cells=0)).any()
    with pytest.raises(ValueError, match="same number"):
        majority_at_k_counts([1, 2], [[1], [1]], [0, 0], 1)


def test_the_monte_carlo_estimate_agrees_with_the_exact_value() -> None:
    rng = np.random.default_rng(9)
    ids = rng.choice(np.arange(-1, 4), p=[0.1, 0.3, 0.3, 0.2, 0.1], size=60)
    exact = majority_at_k(*_counts(ids.tolist(), 0), 9)
    estimate = majority_at_k_mc(ids, 0, 9, rng=np.random.default_rng(1), n_resamples=20_000)
    assert estimate == pytest.approx(exact, abs=0.015)  # ~4 standard errors
    again = majority_at_k_mc(ids, 0, 9, rng=np.random.default_rng(1), n_resamples=20_000)
    assert again == estimate
    assert majority_at_k_mc(ids, -1, 9, rng=np.random.default_rng(1)) == 0.0


def test_it_groups_answers_by_their_canonical_form() -> None:
    counts = answer_counts(["18", "18.0", r"\frac{1}{2}", "0.5", None, ""], "18.00")
    assert (counts.c_star, counts.others, counts.n_none, counts.n) == (2, (2,), 2, 6)
    assert answer_counts(["1", None], None).c_star == 0


def test_it_averages_over_problems_and_drops_k_above_n() -> None:
    ids = np.array([[0, 0, 1, -1], [1, 1, 0, 0]])
    result = mean_majority_at_k(ids, [0, 0], [1, 3, 4, 5])
    assert set(result) == {1, 3, 4}
    assert result[4] == pytest.approx((1.0 + 0.5) / 2)  # the second pool ties 2-2


@pytest.mark.parametrize(
    "args",
    [
        (1, [1], 0, 3, 1),  # n is not the sum of the counts
        (1, [1], 0, 2, 3),  # k > n
        (1, [1], 0, 2, 0),  # k < 1
        (-1, [1], 0, 0, 1),
        (1, [-1], 2, 2, 1),
    ],
)
def test_it_rejects_inconsistent_counts(args: tuple[int, list[int], int, int, int]) -> None:
    with pytest.raises(ValueError):
        majority_at_k_exact(*args)


def test_it_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="answers"):
        majority_at_k_array([0, 1], [0], 1)
    with pytest.raises(ValueError, match="gold"):
        majority_at_k_array([[0, 1]], [0, 1], 1)
    with pytest.raises(ValueError, match="k"):
        majority_at_k_array([[0, 1]], [0], 3)
    with pytest.raises(ValueError, match="answers"):
        majority_at_k_array([[0, -2]], [0], 1)


def test_it_validates_the_config() -> None:
    with pytest.raises(ValueError, match="ks"):
        MajorityAtKConfig(ks=(0,))
    with pytest.raises(ValueError, match="ks"):
        MajorityAtKConfig(ks=())


def test_it_counts_answers_by_the_math_equivalence() -> None:
    counts = answer_counts(["x = 18", "18", "y = 18", r"\frac{36}{2}", "17", None], "18.0")
    assert (counts.c_star, counts.others, counts.n_none, counts.n) == (4, (1,), 1, 6)
    assert answer_counts([r"\{1, 2\}", "2, 1", "(1, 2)"], r"\{2,1\}").c_star == 2
