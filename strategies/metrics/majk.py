"""maj@k: expected correctness of a majority vote over a random k-subset (ALGORITHMS §7).

For one problem with gold count ``c*``, other valid answer counts ``c_1..c_r`` and ``u``
``None`` answers (n in all), with uniform tie-breaking (credit ``1/(m+1)`` when ``m`` other
answers tie the gold one)::

    maj@k = 1/C(n,k) * sum_{j=1}^{min(c*,k)} C(c*, j) * sum_m W_j(k-j, m) / (m+1)

``W_j(t, m)`` counts the ways to take t items from the other classes and the ``None``
bucket with every class at most j and exactly m classes at j. ``majority_at_k_exact`` runs
that DP in exact integers; ``majority_at_k_counts`` (and ``majority_at_k_array`` over
answer ids) runs it in floats for many problems at once, with binomial pmfs at p = k/n in
place of binomial coefficients (the ratio is the same multivariate hypergeometric law, and
every term stays in [0, 1]), skipping the terms below ``NEGLIGIBLE``: each j convolves
only the classes that can still tie or beat the gold, and the others join at the end as
one binomial pmf (their sum), which makes large pools affordable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import comb

import numpy as np
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
    "majority_at_k_counts",
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
    return majority_at_k_counts(*_class_counts(ids, gold_ids), k)


#: A term below this share of P(k drawn) is left out: with C other classes the result
#: moves by at most about ``C * NEGLIGIBLE``, far below the floats' own ~1e-13.
NEGLIGIBLE = 1e-17


def majority_at_k_counts(
    c_star: ArrayLike, others: ArrayLike, n_none: ArrayLike, k: int, *,
    max_cells: float | None = None,
) -> NDArray[np.float64]:
    """Return maj@k per problem from vote counts: gold (P,), the other answers (P, C;
    0: no class), ``None`` (P,); every problem has the same n.

    Floats, vectorised over problems, in the form of the binomial trick (module
    docstring): the gold count j, then the other classes that can still reach j, each at
    most j, with the ties at j counted. Terms below ``NEGLIGIBLE`` are pruned (a gold
    count that improbable, a class that almost surely stays below j or almost surely
    beats it), so only contested counts cost work. ``max_cells`` bounds the DP's work per
    problem: a problem that would take more gets NaN, for the caller to estimate.

    >>> majority_at_k_counts([2, 2], [[1, 0], [2, 0]], [1, 0], 3).round(4)
    array([0.75, 0.5 ])
    """
    gold, rest, none = (np.asarray(a, dtype=np.int64) for a in (c_star, others, n_none))
    rest = -np.sort(-rest.reshape(len(gold), -1), axis=1)
    n = gold + rest.sum(axis=1) + none
    if gold.size and (n != n[0]).any():
        raise ValueError("every problem needs the same number of samples")
    if not gold.size:
        return np.zeros(0)
    size = int(n[0])
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= size:
        raise ValueError(f"k must be an integer with 1 <= k <= n={size}, got {k!r}")
    if k == size:  # one subset: the whole pool
        top = rest.max(axis=1, initial=0)
        ties = (rest == gold[:, None]).sum(axis=1)
        won = np.where(gold > top, 1.0, np.where(gold == top, 1.0 / (1 + ties), 0.0))
        return np.asarray(won * (gold > 0), dtype=np.float64)
    plan = _MajorityPlan(gold, rest, none, size, k)
    value = plan.run(plan.cost() <= (np.inf if max_cells is None else max_cells))
    return value


class _MajorityPlan:
    """The pruned DP of ``majority_at_k_counts`` for one k (see there)."""

    #: Bound on the DP state's cells per batch of problems (about 32 MB of floats).
    STATE_CELLS = 1 << 22

    def __init__(self, gold: NDArray[np.int64], rest: NDArray[np.int64],
                 none: NDArray[np.int64], n: int, k: int) -> None:
        self.gold, self.rest, self.none, self.n, self.k = gold, rest, none, n, k
        self.p = k / n
        self.normaliser = float(binom_pmf(k, n, self.p))
        negligible = NEGLIGIBLE * self.normaliser
        top = int(max(rest.max(initial=0), k))
        s = np.arange(top + 1)
        self.gold_pmf = binom_pmf(s[None, : k + 1], gold[:, None], self.p)
        # Other classes' pmfs, one row per distinct count (a problem has at most
        # sqrt(2n) distinct counts).
        self.values, at = np.unique(np.concatenate([[0], rest.ravel()]), return_inverse=True)
        self.at = at[1:].reshape(rest.shape)
        self.pmf = binom_pmf(s[None, :], self.values[:, None], self.p)
        cdf = np.cumsum(self.pmf[:, : k + 1], axis=1)  # P(Y <= j), exact in the far tail
        tail = np.cumsum(self.pmf[:, ::-1], axis=1)[:, ::-1][:, : k + 1]  # P(Y >= j)
        j = np.arange(k + 1)
        # A class can reach j if it holds j votes and does so with some probability.
        reaches = (self.values[:, None] >= j[None, :]) & (tail >= negligible)
        lowest = np.where(reaches.any(axis=0), np.argmax(reaches, axis=0), len(self.values))
        # Problems and gold counts j worth the work: j itself likely enough, and the
        # largest other class not almost surely above j.
        largest = self.at[:, 0] if rest.shape[1] else np.zeros(len(gold), dtype=np.int64)
        self.live = (self.gold_pmf >= negligible) & (cdf[largest] >= negligible)
        self.live[:, 0] = False
        # Classes that can reach j come first (counts sort descending): how many per j,
        # from each problem's classes counted by count value, largest first.
        rows = np.repeat(np.arange(len(gold)), rest.shape[1])
        by_value = np.zeros((len(gold), len(self.values) + 1), dtype=np.int64)
        np.add.at(by_value, (rows, self.at.ravel()), 1)
        at_least = np.cumsum(by_value[:, ::-1], axis=1)[:, ::-1]
        self.width = at_least[:, lowest]
        self.width[:, j > k - j] = 0  # with t = k - j < j no other class reaches j

    def cost(self) -> NDArray[np.float64]:
        """Each problem's DP work in state cells (about one multiply-add each)."""
        j = np.arange(self.k + 1, dtype=np.float64)[None, :]
        t = self.k - j
        w = self.width.astype(np.float64)
        q = np.floor(t / np.maximum(j, 1))
        b = np.minimum(w, q)
        # Sum over the 2nd..w-th class of the state's length min(t, a * j) + 1.
        lengths = j * np.where(b >= 2, b * (b + 1) / 2 - 1, 0) + t * np.maximum(
            0, w - np.maximum(q, 1)) + np.maximum(w - 1, 0)
        cells = (b + 1) * (j * lengths + t + 1)
        return np.asarray(np.where(self.live, cells, 0).sum(axis=1), dtype=np.float64)

    def run(self, rows: NDArray[np.bool_]) -> NDArray[np.float64]:
        """maj@k of the problems in ``rows``; NaN for the others."""
        total = np.zeros(len(self.gold))
        for j in range(1, self.k + 1):
            live = self.live[:, j] & rows
            for width in np.unique(self.width[live, j]):
                chosen = np.flatnonzero(live & (self.width[:, j] == width))
                step = max(1, self.STATE_CELLS // ((min(width, self.k // j) + 1) * (self.k + 1)))
                for start in range(0, len(chosen), step):
                    batch = chosen[start:start + step]
                    total[batch] += self.gold_pmf[batch, j] * self._credit(batch, j, int(width))
        value = np.clip(total / self.normaliser, 0.0, 1.0)
        return np.asarray(np.where(rows, value, np.nan), dtype=np.float64)

    def _credit(self, rows: NDArray[np.int64], j: int, width: int) -> NDArray[np.float64]:
        """For gold count j: the chance (times P(k - j drawn elsewhere)) that the first
        ``width`` other classes each draw at most j, the rest freely, ties at j split."""
        t = self.k - j
        at = self.at[rows, :width]
        free = self.none[rows] + self.rest[rows, width:].sum(axis=1)
        # state[m, r, s]: s votes drawn by the classes so far, m of them tied at j.
        state = np.ones((1, len(rows), 1))
        for i in range(width):
            kernel = self.pmf[at[:, i], : j + 1]
            state = _add_class(state, kernel, j, t, width)
        tail = binom_pmf(t - np.arange(state.shape[2])[None, :], free[:, None], self.p)
        split = 1.0 / np.arange(1, state.shape[0] + 1)
        return np.asarray(np.einsum("mrs,rs,m->r", state, tail, split), dtype=np.float64)


def _add_class(state: NDArray[np.float64], kernel: NDArray[np.float64], j: int, t: int,
               width: int) -> NDArray[np.float64]:
    """Convolve one class that draws at most j votes (``kernel[r, u]``: P(u votes)) into
    the state, a draw of exactly j moving to the next tie count; lengths above t drop."""
    ties, rows, length = state.shape
    size = min(t, length - 1 + j) + 1
    new = np.zeros((min(ties + 1, min(width, t // j) + 1), rows, size))
    if length <= j:  # shift the kernel along the (shorter) state
        for v in range(length):
            span = min(j, size - v)
            new[:ties, :, v:v + span] += state[:, :, v, None] * kernel[None, :, :span]
            if v + j < size:
                new[1:ties + 1, :, v + j] += state[: new.shape[0] - 1, :, v] * kernel[None, :, j]
        return new
    for u in range(j):  # shift the state along the (shorter) kernel
        span = min(length, size - u)
        new[:ties, :, u:u + span] += state[:, :, :span] * kernel[None, :, u, None]
    span = min(length, size - j)
    if span > 0:
        new[1:ties + 1, :, j:j + span] += state[: new.shape[0] - 1, :, :span] \
            * kernel[None, :, j, None]
    return new


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
