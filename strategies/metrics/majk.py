"""maj@k: expected correctness of a majority vote over a random k-subset (ALGORITHMS §7).

For one problem with gold count ``c*``, other valid answer counts ``c_1..c_r`` and ``u``
``None`` answers (n in all), with uniform tie-breaking (credit ``1/(m+1)`` when ``m`` other
answers tie the gold one)::

    maj@k = 1/C(n,k) * sum_{j=1}^{min(c*,k)} C(c*, j) * sum_m W_j(k-j, m) / (m+1)

``W_j(t, m)`` counts the ways to take t items from the other classes and the ``None``
bucket with every class at most j and exactly m classes at j. ``majority_at_k_exact`` runs
that DP in exact integers; ``majority_at_k_array`` runs it in floats for many problems at
once, with binomial pmfs at p = k/n in place of binomial coefficients (the ratio is the
same multivariate hypergeometric law, and every term stays in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import comb

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from strategies.metrics._comb import binom_pmf
from strategies.metrics.passk import check_ks
from strategies.verify.grouping import group_answers
from strategies.verify.math import is_equivalent

__all__ = [
    "AnswerCounts",
    "MajorityAtKConfig",
    "answer_counts",
    "majority_at_k",
    "majority_at_k_array",
    "majority_at_k_exact",
    "majority_at_k_mc",
    "mean_majority_at_k",
]


@dataclass(frozen=True, kw_only=True)
class MajorityAtKConfig:
    """Which k to report maj@k for (each >= 1; only k <= n is reported)."""

    ks: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        check_ks(self.ks)


@dataclass(frozen=True)
class AnswerCounts:
    """One problem's vote counts: gold, the other answers (descending), ``None``, total."""

    c_star: int
    others: tuple[int, ...]
    n_none: int
    n: int


def answer_counts(answers: Sequence[str | None], gold: str | None) -> AnswerCounts:
    """Group equivalent answers (``group_answers``, §17) and count gold, other and ``None``.

    The gold count is that of the groups whose first answer is equivalent to ``gold``.

    >>> answer_counts(["18", "18.0", "7", None, "x", "x = 18"], "18")
    AnswerCounts(c_star=3, others=(1, 1), n_none=1, n=6)
    """
    groups, firsts = group_answers(answers)
    counts = np.bincount(groups[groups >= 0], minlength=len(firsts))
    is_gold = [gold is not None and is_equivalent(answers[i], gold) for i in firsts]
    c_star = int(sum(int(count) for count, hit in zip(counts, is_gold, strict=True) if hit))
    others = tuple(
        sorted((int(c) for c, hit in zip(counts, is_gold, strict=True) if not hit), reverse=True)
    )
    return AnswerCounts(c_star, others, int(np.sum(groups < 0)), len(answers))


def _check_counts(c_star: int, others: Sequence[int], n_none: int, n: int, k: int) -> None:
    """Raise ``ValueError`` naming the first inconsistent argument."""
    for name, value in (("c_star", c_star), ("n_none", n_none), ("n", n), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if any(isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 0 for c in others):
        raise ValueError(f"other_counts must hold integers >= 0, got {list(others)!r}")
    if c_star + sum(others) + n_none != n:
        raise ValueError(f"n={n} must equal c_star + sum(other_counts) + n_none")
    if not 1 <= k <= n:
        raise ValueError(f"k must satisfy 1 <= k <= n, got k={k}, n={n}")


def _tie_weighted_ways(others: Sequence[int], n_none: int, j: int, t: int) -> Fraction:
    """Return ``sum_m W_j(t, m) / (m+1)`` by the DP over the classes that can reach j."""
    free = n_none + sum(c for c in others if c < j)  # these can never reach j
    table = [[1] + [0] * t]  # table[m][s]: ways to take s items with m classes at exactly j
    for c in (c for c in others if c >= j):
        weights = [comb(c, s) for s in range(min(j, t) + 1)]
        new = [[0] * (t + 1) for _ in range(min(len(table) + 1, t // j + 1))]
        for m, row in enumerate(table):
            for s0, ways in enumerate(row):
                if ways:
                    for s, weight in enumerate(weights[: t - s0 + 1]):
                        new[m + (s == j)][s0 + s] += ways * weight
        table = new
    return sum(
        (
            Fraction(sum(row[s] * comb(free, t - s) for s in range(t + 1)), m + 1)
            for m, row in enumerate(table)
        ),
        Fraction(0),
    )


def majority_at_k_exact(
    c_star: int, other_counts: Sequence[int], n_none: int, n: int, k: int
) -> Fraction:
    """Return maj@k as an exact fraction (ties split uniformly, ``None`` never votes).

    >>> majority_at_k_exact(1, [1], 0, 2, 1), majority_at_k_exact(1, [1], 0, 2, 2)
    (Fraction(1, 2), Fraction(1, 2))
    >>> majority_at_k_exact(2, [1], 1, 4, 3)  # 3-subsets of {g, g, o, None}: 1, 1, 1/2, 1/2
    Fraction(3, 4)
    """
    _check_counts(c_star, other_counts, n_none, n, k)
    others = [int(c) for c in other_counts if c > 0]
    rest = n - c_star
    total = Fraction(0)
    for j in range(1, min(c_star, k) + 1):
        t = k - j
        if t > rest:
            continue
        # With t < j no other class can reach j: every way wins outright.
        ways = Fraction(comb(rest, t)) if t < j else _tie_weighted_ways(others, n_none, j, t)
        total += comb(c_star, j) * ways
    return total / comb(n, k)


def majority_at_k(c_star: int, other_counts: Sequence[int], n_none: int, n: int, k: int) -> float:
    """Return maj@k as a float (see ``majority_at_k_exact``).

    >>> majority_at_k(3, [2], 0, 5, 5), round(majority_at_k(3, [2], 0, 5, 1), 6)
    (1.0, 0.6)
    """
    return float(majority_at_k_exact(c_star, other_counts, n_none, n, k))


def _class_counts(
    ids: NDArray[np.int64], gold: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Return gold counts (P,), other counts sorted descending (P, C) and None counts (P,)."""
    n_problems = ids.shape[0]
    n_classes = int(max(ids.max(initial=0), gold.max(initial=0))) + 1
    valid = ids >= 0
    flat = (np.arange(n_problems)[:, None] * n_classes + ids)[valid]
    counts = np.bincount(flat, minlength=n_problems * n_classes).reshape(n_problems, -1)
    has_gold = gold >= 0
    rows = np.arange(n_problems)
    c_star = np.where(has_gold, counts[rows, np.maximum(gold, 0)], 0)
    others = counts.copy()
    others[rows[has_gold], gold[has_gold]] = 0
    others = -np.sort(-others, axis=1)
    width = int((others > 0).sum(axis=1).max(initial=0))
    return c_star, others[:, :width], (~valid).sum(axis=1)


def _check_ids(answers: ArrayLike, gold: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Validate (P, N) class ids (-1 = None) and (P,) gold ids (-1 = no valid gold)."""
    ids = np.asarray(answers)
    gold_arr = np.asarray(gold)
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"answers must be a (problems, samples) array, got shape {ids.shape}")
    if gold_arr.shape != (ids.shape[0],):
        raise ValueError(f"gold must have shape ({ids.shape[0]},), got {gold_arr.shape}")
    for name, arr in (("answers", ids), ("gold", gold_arr)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
        if np.any(arr < -1):
            raise ValueError(f"{name} must hold class ids >= 0, or -1 for None")
    return ids.astype(np.int64), gold_arr.astype(np.int64)


def majority_at_k_array(answers: ArrayLike, gold: ArrayLike, k: int) -> NDArray[np.float64]:
    """Return maj@k per problem from (P, N) answer class ids (-1 = None) and (P,) gold ids.

    Floats, vectorised over problems; agrees with ``majority_at_k_exact`` to ~1e-12.

    >>> majority_at_k_array([[0, 0, 1, -1], [1, 1, 0, 0]], [0, 0], 3).round(4)
    array([0.75, 0.5 ])
    """
    ids, gold_ids = _check_ids(answers, gold)
    n = ids.shape[1]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer with 1 <= k <= n={n}, got {k!r}")
    c_star, others, n_none = _class_counts(ids, gold_ids)
    if k == n:  # one subset: the whole pool
        top = others.max(axis=1, initial=0)
        ties = (others == c_star[:, None]).sum(axis=1)
        return np.where(c_star > top, 1.0, np.where(c_star == top, 1.0 / (1 + ties), 0.0)) * (
            c_star > 0
        )
    p = k / n
    s = np.arange(k + 1)
    gold_pmf = binom_pmf(s[None, :], c_star[:, None], p)
    other_pmf = binom_pmf(s[None, None, :], others[:, :, None], p)
    total = np.zeros(ids.shape[0])
    # A j whose gold pmf is below 1e-17 * P(k drawn) moves no result by more than 1e-17.
    negligible = 1e-17 * binom_pmf(k, n, p)
    for j in range(1, min(k, int(c_star.max(initial=0))) + 1):
        if gold_pmf[:, j].max() < negligible:
            continue
        t = k - j
        if t < j:  # no other class can reach j
            total += gold_pmf[:, j] * binom_pmf(t, n - c_star, p)
            continue
        capped = others >= j  # classes that can reach j; the rest join the None bucket
        free = n_none + np.where(capped, 0, others).sum(axis=1)
        state = np.zeros((min(others.shape[1], t // j) + 1, ids.shape[0], t + 1))
        state[0] = binom_pmf(np.arange(t + 1)[None, :], free[:, None], p)
        identity = np.zeros(j)
        identity[0] = 1.0
        for i in np.flatnonzero(capped.any(axis=0)):
            kernel = np.where(capped[:, i, None], other_pmf[:, i, :j], identity)[:, ::-1]
            padded = np.concatenate([np.zeros(state.shape[:2] + (j - 1,)), state], axis=2)
            new = (sliding_window_view(padded, j, axis=2) @ kernel[:, :, None])[..., 0]
            tie = np.where(capped[:, i], other_pmf[:, i, j], 0.0)
            new[1:, :, j:] += state[:-1, :, :-j] * tie[None, :, None]
            state = new
        credit = (state[:, :, t] / np.arange(1, state.shape[0] + 1)[:, None]).sum(axis=0)
        total += gold_pmf[:, j] * credit
    return np.clip(total / binom_pmf(k, n, p), 0.0, 1.0)


def mean_majority_at_k(answers: ArrayLike, gold: ArrayLike, ks: Iterable[int]) -> dict[int, float]:
    """Return ``{k: mean maj@k over problems}`` for each k <= N (class ids as above).

    >>> result = mean_majority_at_k([[0, 0, 1, -1], [1, 1, 0, 0]], [0, 0], [1, 3, 9])
    >>> {k: round(v, 6) for k, v in result.items()}
    {1: 0.5, 3: 0.625}
    """
    n = np.asarray(answers).shape[-1]
    return {
        k: float(np.mean(majority_at_k_array(answers, gold, k))) for k in sorted(set(ks)) if k <= n
    }


def majority_at_k_mc(
    answers: ArrayLike,
    gold: int,
    k: int,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
) -> float:
    """Monte Carlo maj@k for one problem: the mean tie-split vote credit over random k-subsets.

    >>> rng = np.random.default_rng(0)
    >>> majority_at_k_mc([0, 0, 0, 1], 0, 4, rng=rng, n_resamples=10)
    1.0
    """
    ids, gold_ids = _check_ids(np.atleast_2d(answers), [gold])
    n = ids.shape[1]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer with 1 <= k <= n={n}, got {k!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if gold_ids[0] < 0:
        return 0.0
    subsets = np.argsort(rng.random((n_resamples, n)), axis=1)[:, :k]
    votes = ids[0][subsets]
    n_classes = int(max(ids.max(), gold_ids[0])) + 1
    flat = (np.arange(n_resamples)[:, None] * n_classes + votes)[votes >= 0]
    counts = np.bincount(flat, minlength=n_resamples * n_classes).reshape(n_resamples, -1)
    top = counts.max(axis=1)
    tied = (counts == top[:, None]) & (top[:, None] > 0)
    credit = np.where(tied[:, gold_ids[0]], 1.0 / np.maximum(tied.sum(axis=1), 1), 0.0)
    return float(credit.mean())
