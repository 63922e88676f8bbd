"""sel@k: expected correctness of a selector applied to a random k-subset of the pool.

``sel_at_k`` averages any selector over seeded random k-subsets. Three selectors have
exact vectorised forms over (problems, samples) arrays:

* first@k: the subset is a uniformly random *sequence* of k distinct samples, so its first
  element is a uniform draw from the pool whatever k is, and first@k = c/n = pass@1.
* oracle@k: picks a correct sample whenever there is one, which is pass@k.
* best-of-n@k: the top-scored element of the subset. Sort the scores; a tie group with
  ``lo`` elements strictly below it and ``hi`` at or below it holds the subset's maximum
  with probability ``(C(hi, k) - C(lo, k)) / C(n, k)``, and then each of its members is
  equally likely to be picked, so the group contributes its mean correctness. Without ties
  an element with i lower elements is the maximum with probability ``C(i, k-1) / C(n, k)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from strategies.metrics._comb import comb_ratio
from strategies.metrics.passk import pass_at_k_array

__all__ = [
    "OracleGapConfig",
    "SelAtKConfig",
    "best_of_n_at_k",
    "best_of_n_curve",
    "first_at_k",
    "majority_vote_accuracy",
    "oracle_at_k",
    "oracle_gap",
    "sel_at_k",
]


@dataclass(frozen=True, kw_only=True)
class SelAtKConfig:
    """Subset size k, and the number of seeded random subsets for selectors without a formula."""

    k: int = 1
    n_resamples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("k", "n_resamples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")


@dataclass(frozen=True, kw_only=True)
class OracleGapConfig:
    """No knobs: pass coverage and a selector's accuracy at the same k."""


def _check_k(k: int, n: int) -> None:
    """Raise ``ValueError`` unless ``1 <= k <= n``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer with 1 <= k <= n={n}, got {k!r}")


def _as_matrix(name: str, values: ArrayLike) -> NDArray[np.float64]:
    """Return ``values`` as a (problems, samples) float matrix (1-D is one problem)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be (problems, samples) or (samples,), got {arr.shape}")
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not contain NaN")
    return arr


def sel_at_k(
    n: int,
    k: int,
    score_subset: Callable[[NDArray[np.intp]], float],
    *,
    rng: np.random.Generator,
    n_resamples: int = 200,
) -> float:
    """Return the mean of ``score_subset(indices)`` over random k-subsets (in random order).

    ``score_subset`` runs the selector on the samples at ``indices`` and returns the
    correctness of its choice (0/1, or a tie-split expectation).

    >>> correct = np.array([1, 0, 0, 1])
    >>> first = sel_at_k(4, 2, lambda idx: float(correct[idx[0]]),
    ...                  rng=np.random.default_rng(0), n_resamples=2000)
    >>> round(first, 1)  # first@2 is pass@1 = 0.5
    0.5
    """
    _check_k(k, n)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    subsets = np.argsort(rng.random((n_resamples, n)), axis=1)[:, :k]
    return float(np.mean([score_subset(subset) for subset in subsets]))


def first_at_k(correct: ArrayLike, k: int) -> NDArray[np.float64]:
    """Return first@k per problem, which is pass@1 (c/n) for every k (see the module doc).

    >>> first_at_k([[1, 0, 0, 0], [1, 1, 0, 1]], 3)
    array([0.25, 0.75])
    """
    matrix = _as_matrix("correct", correct)
    _check_k(k, matrix.shape[1])
    return np.asarray(matrix.mean(axis=1), dtype=np.float64)


def oracle_at_k(correct: ArrayLike, k: int) -> NDArray[np.float64]:
    """Return oracle@k per problem: an oracle picks a correct sample if any, so pass@k.

    >>> oracle_at_k([[1, 0, 0, 0], [0, 0, 0, 0]], 2)
    array([0.5, 0. ])
    """
    matrix = _as_matrix("correct", correct)
    _check_k(k, matrix.shape[1])
    counts = np.rint(matrix.sum(axis=1)).astype(np.int64)
    return pass_at_k_array(matrix.shape[1], counts, k)


def best_of_n_at_k(scores: ArrayLike, correct: ArrayLike, k: int) -> NDArray[np.float64]:
    """Return best-of-n@k per problem: correctness of the top-scored sample of a k-subset.

    Ties split the credit evenly among the tied top samples.

    >>> best_of_n_at_k([[0.1, 0.9, 0.5]], [[1, 0, 1]], 2).round(6)  # max is 0.9 in 2 of 3
    array([0.333333])
    >>> best_of_n_at_k([[1.0, 1.0]], [[1, 0]], 1), best_of_n_at_k([[1.0, 1.0]], [[1, 0]], 2)
    (array([0.5]), array([0.5]))
    """
    return best_of_n_curve(scores, correct, [k])[k]


def best_of_n_curve(
    scores: ArrayLike, correct: ArrayLike, ks: Iterable[int]
) -> dict[int, NDArray[np.float64]]:
    """Return ``{k: best-of-n@k per problem}``, sorting the scores once for every k.

    >>> curve = best_of_n_curve([[3, 1, 2]], [[0, 1, 1]], [1, 3])
    >>> {k: v.round(4).tolist() for k, v in curve.items()}
    {1: [0.6667], 3: [0.0]}
    """
    score = _as_matrix("scores", scores)
    right = _as_matrix("correct", correct)
    if score.shape != right.shape:
        raise ValueError(f"scores and correct differ in shape: {score.shape} and {right.shape}")
    n_problems, n = score.shape
    wanted = sorted(set(ks))
    for k in wanted:
        _check_k(k, n)
    order = np.argsort(score, axis=1)  # the order inside a tie group does not matter
    ranked = np.take_along_axis(score, order, axis=1)
    ranked_right = np.take_along_axis(right, order, axis=1)
    position = np.broadcast_to(np.arange(n), (n_problems, n))
    starts = np.ones((n_problems, n), dtype=bool)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    ends = np.ones((n_problems, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    lo = np.maximum.accumulate(np.where(starts, position, 0), axis=1)  # # strictly below
    hi = np.minimum.accumulate(np.where(ends, position + 1, n)[:, ::-1], axis=1)[:, ::-1]
    share = ranked_right / (hi - lo)  # each member of the top group is picked equally often
    curve = {}
    for k in wanted:
        below = comb_ratio(np.arange(n + 1), n, k)  # P(all k drawn among the lowest m)
        curve[k] = np.asarray((share * (below[hi] - below[lo])).sum(axis=1), dtype=np.float64)
    return curve


def oracle_gap(coverage: ArrayLike, selected: ArrayLike) -> float:
    """Return mean coverage minus mean selected accuracy: what a perfect selector would add.

    >>> round(oracle_gap([0.9, 0.5], [0.6, 0.5]), 6)
    0.15
    """
    cov = np.asarray(coverage, dtype=np.float64)
    sel = np.asarray(selected, dtype=np.float64)
    if cov.shape != sel.shape or cov.size == 0:
        raise ValueError(
            f"coverage and selected need one equal, non-empty shape: {cov.shape}, {sel.shape}"
        )
    return float(cov.mean() - sel.mean())


def majority_vote_accuracy(
    answers: ArrayLike, gold: ArrayLike, weights: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Return the tie-split correctness of a (weighted) vote over each whole pool (k = N).

    ``answers`` are (P, N) class ids with -1 for None (never votes), ``gold`` (P,) ids
    (-1: no valid gold); ``weights`` (P, N), e.g. ``exp(mean logprob)``, default 1 each.

    >>> majority_vote_accuracy([[0, 1, 1, -1]], [0]), majority_vote_accuracy(
    ...     [[0, 1, 1, -1]], [0], [[0.9, 0.3, 0.4, 5.0]])
    (array([0.]), array([1.]))
    """
    ids = np.asarray(answers)
    gold_ids = np.asarray(gold)
    if ids.ndim != 2 or gold_ids.shape != (ids.shape[0],):
        raise ValueError(f"need (P, N) answers and (P,) gold, got {ids.shape}, {gold_ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer) or not np.issubdtype(gold_ids.dtype, np.integer):
        raise ValueError("answers and gold must hold integer class ids (-1 for None)")
    weight = np.ones(ids.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    if weight.shape != ids.shape or np.any(~np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError("weights must be finite, >= 0 and shaped like answers")
    n_problems = ids.shape[0]
    width = int(max(ids.max(initial=0), gold_ids.max(initial=0))) + 1
    voted = ids >= 0
    flat = (np.arange(n_problems)[:, None] * width + ids)[voted]
    totals = np.bincount(flat, weight[voted], minlength=n_problems * width)
    totals = totals.reshape(n_problems, width)
    top = totals.max(axis=1, keepdims=True)
    tied = (
        (totals == top)
        & (top > 0)
        & (np.bincount(flat, minlength=totals.size) > 0).reshape(n_problems, width)
    )
    gold_tied = tied[np.arange(n_problems), np.maximum(gold_ids, 0)] & (gold_ids >= 0)
    return np.where(gold_tied, 1.0 / np.maximum(tied.sum(axis=1), 1), 0.0)
