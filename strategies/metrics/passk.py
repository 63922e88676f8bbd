"""Unbiased pass@k (Chen et al. 2021) in its numerically stable form, and pass^k (ALGORITHMS §14).

pass@k asks whether *any* of k draws is correct; pass^k (pass-hat-k) whether *all* of them
are, which measures reliability rather than coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from strategies.metrics._comb import comb_ratio

__all__ = [
    "PassAtKConfig",
    "mean_pass_at_k",
    "mean_pass_hat_k",
    "pass_at_k",
    "pass_at_k_array",
    "pass_hat_k",
    "pass_hat_k_array",
]


@dataclass(frozen=True, kw_only=True)
class PassAtKConfig:
    """Which k to report pass@k for (each >= 1; only k <= n of every problem is reported)."""

    ks: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        check_ks(self.ks)


def _check_int(name: str, value: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (numpy ints allowed)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Return the probability that at least one of k draws (of n, c correct) is correct.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, and 1.0 when ``n - c < k``.

    >>> round(pass_at_k(10, 1, 1), 12)
    0.1
    >>> round(pass_at_k(5, 2, 2), 4)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    0.7
    >>> pass_at_k(4, 3, 2)
    1.0
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        _check_int(name, value)
    if n < 0 or c < 0 or k < 1:
        raise ValueError(f"need n >= 0, c >= 0 and k >= 1, got n={n}, c={c}, k={k}")
    if c > n:
        raise ValueError(f"c (correct samples) cannot exceed n (samples): c={c}, n={n}")
    if k > n:
        raise ValueError(f"pass@k is unbiased only for k <= n: k={k}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _checked_arrays(
    n: ArrayLike, c: ArrayLike, k: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Validate k and the integer arrays n and c (0 <= c <= n); return them broadcast."""
    _check_int("k", k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_arr = np.asarray(n)
    c_arr = np.asarray(c)
    for name, arr in (("n", n_arr), ("c", c_arr)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    n_arr, c_arr = np.broadcast_arrays(n_arr.astype(np.int64), c_arr.astype(np.int64))
    if np.any(n_arr < 0) or np.any(c_arr < 0):
        raise ValueError("n and c must be >= 0")
    if np.any(c_arr > n_arr):
        raise ValueError("c (correct samples) cannot exceed n (samples)")
    return n_arr, c_arr


def check_ks(ks: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``ks`` is a non-empty tuple of integers >= 1."""
    if not ks:
        raise ValueError("ks must name at least one k")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"ks must hold integers >= 1, got {k!r}")


def pass_at_k_array(n: ArrayLike, c: ArrayLike, k: int) -> NDArray[np.float64]:
    """Vectorised ``pass_at_k`` over broadcast arrays of n and c; NaN where ``k > n``.

    The product of the stable form is a difference of prefix sums of ``log(1 - k/i)``,
    so there is no Python loop over problems or samples.

    >>> pass_at_k_array([10, 5, 4, 1], [1, 2, 3, 1], 2).round(4)
    array([0.2, 0.7, 1. , nan])
    """
    n_arr, c_arr = _checked_arrays(n, c, k)
    # prod_{i=n-c+1}^{n} (1 - k/i) = exp(S[n] - S[n-c]) with S the prefix sums of
    # log(1 - k/i) over i > k; every factor lies in that range whenever n - c >= k.
    max_n = int(n_arr.max()) if n_arr.size else 0
    i = np.arange(max_n + 1, dtype=np.float64)
    terms = np.zeros(max_n + 1, dtype=np.float64)
    terms[k + 1 :] = np.log1p(-k / i[k + 1 :])
    prefix = np.cumsum(terms)
    computable = (n_arr - c_arr >= k) & (n_arr >= k)
    log_ratio = np.where(computable, prefix[n_arr] - prefix[n_arr - c_arr], 0.0)
    result = np.where(computable, 0.0 - np.expm1(log_ratio), 1.0)  # not -expm1: no -0.0
    return np.where(n_arr < k, np.nan, result).astype(np.float64)


def mean_pass_at_k(ns: Sequence[int], cs: Sequence[int], ks: Iterable[int]) -> dict[int, float]:
    """Return ``{k: mean pass@k over problems}`` for each k that is <= n for every problem.

    A k larger than some problem's n is omitted (the estimator would be biased there);
    no problems at all gives an empty dict.

    >>> {k: round(v, 4) for k, v in mean_pass_at_k([4, 4], [0, 2], [1, 2, 8]).items()}
    {1: 0.25, 2: 0.4167}
    """
    if len(ns) != len(cs):
        raise ValueError(f"ns and cs must have the same length, got {len(ns)} and {len(cs)}")
    if not ns:
        return {}
    min_n = min(ns)
    return {k: float(np.mean(pass_at_k_array(ns, cs, k))) for k in sorted(set(ks)) if k <= min_n}


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Return pass^k: the probability that k draws without replacement are all correct.

    That is ``C(c, k) / C(n, k) = prod_{i<k} (c - i) / (n - i)``, every factor <= 1.

    >>> round(pass_hat_k(5, 3, 2), 12)  # C(3,2)/C(5,2) = 3/10
    0.3
    >>> pass_hat_k(5, 1, 2), pass_hat_k(4, 4, 3)
    (0.0, 1.0)
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        _check_int(name, value)
    if n < 0 or c < 0 or k < 1:
        raise ValueError(f"need n >= 0, c >= 0 and k >= 1, got n={n}, c={c}, k={k}")
    if c > n:
        raise ValueError(f"c (correct samples) cannot exceed n (samples): c={c}, n={n}")
    if k > n:
        raise ValueError(f"pass^k is unbiased only for k <= n: k={k}, n={n}")
    if c < k:
        return 0.0
    i = np.arange(k, dtype=np.float64)
    return float(np.prod((c - i) / (n - i)))


def pass_hat_k_array(n: ArrayLike, c: ArrayLike, k: int) -> NDArray[np.float64]:
    """Vectorised ``pass_hat_k`` over broadcast arrays of n and c; NaN where ``k > n``.

    >>> pass_hat_k_array([5, 5, 4, 1], [3, 1, 4, 1], 2).round(4)
    array([0.3, 0. , 1. , nan])
    """
    n_arr, c_arr = _checked_arrays(n, c, k)
    usable = n_arr >= k
    ratio = comb_ratio(c_arr, np.where(usable, n_arr, k), k)
    return np.where(usable, np.minimum(ratio, 1.0), np.nan).astype(np.float64)


def mean_pass_hat_k(ns: Sequence[int], cs: Sequence[int], ks: Iterable[int]) -> dict[int, float]:
    """Return ``{k: mean pass^k over problems}`` for each k that is <= n for every problem.

    >>> {k: round(v, 4) for k, v in mean_pass_hat_k([4, 4], [4, 2], [1, 2, 8]).items()}
    {1: 0.75, 2: 0.5833}
    """
    if len(ns) != len(cs):
        raise ValueError(f"ns and cs must have the same length, got {len(ns)} and {len(cs)}")
    if not ns:
        return {}
    min_n = min(ns)
    return {k: float(np.mean(pass_hat_k_array(ns, cs, k))) for k in sorted(set(ks)) if k <= min_n}
