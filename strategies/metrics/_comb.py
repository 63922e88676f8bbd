"""Typed, vectorised log-binomial helpers shared by the metric modules (scipy wrapped once)."""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special  # type: ignore[import-untyped]

__all__ = ["binom_pmf", "comb_ratio", "log_comb"]


def _gammaln(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(Gamma(x))`` elementwise, typed."""
    return cast("NDArray[np.float64]", special.gammaln(x))


def log_comb(n: ArrayLike, k: ArrayLike) -> NDArray[np.float64]:
    """Return ``log C(n, k)`` elementwise, ``-inf`` where ``k < 0`` or ``k > n``.

    >>> float(np.exp(log_comb(5, 2)).round(9))
    10.0
    """
    n_arr, k_arr = np.broadcast_arrays(np.asarray(n, np.float64), np.asarray(k, np.float64))
    valid = (k_arr >= 0) & (k_arr <= n_arr)
    safe_n = np.where(valid, n_arr, 0.0)
    safe_k = np.where(valid, k_arr, 0.0)
    value = _gammaln(safe_n + 1) - _gammaln(safe_k + 1) - _gammaln(safe_n - safe_k + 1)
    return np.where(valid, value, -np.inf)


def comb_ratio(m: ArrayLike, n: ArrayLike, k: ArrayLike) -> NDArray[np.float64]:
    """Return ``C(m, k) / C(n, k)`` elementwise (0 where ``m < k``); needs ``k <= n``.

    >>> comb_ratio([2, 3, 4], 4, 2).round(6)  # (1, 3, 6) / 6
    array([0.166667, 0.5     , 1.      ])
    """
    return np.exp(log_comb(m, k) - log_comb(n, k))


def binom_pmf(s: ArrayLike, c: ArrayLike, p: ArrayLike) -> NDArray[np.float64]:
    """Binomial pmf ``C(c, s) p^s (1-p)^(c-s)`` elementwise, exact at ``p = 1`` (0 outside 0..c).

    >>> binom_pmf([0, 1, 2], 2, 0.5).tolist()
    [0.25, 0.5, 0.25]
    """
    s_arr, c_arr, p_arr = np.broadcast_arrays(
        np.asarray(s, np.float64), np.asarray(c, np.float64), np.asarray(p, np.float64)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = c_arr - s_arr
        log_p = np.where(s_arr > 0, s_arr * np.log(p_arr), 0.0)
        log_q = np.where(rest > 0, rest * np.log1p(-p_arr), 0.0)
        return np.exp(log_comb(c_arr, s_arr) + log_p + log_q)
