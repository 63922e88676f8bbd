"""Coverage curves and the Large Language Monkeys exponentiated power law (ALGORITHMS §14).

Coverage ``c(k)`` is mean pass@k over problems (pass@k with an oracle verifier). The fit
``c(k) ~ exp(a * k**b)`` (a < 0, b < 0) is closed-form OLS of ``log(-log c)`` on ``log k``
over the points with ``0 < c < 1``. Extrapolate with caution: problems with no correct
sample at the largest n pin the asymptote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from strategies.metrics.passk import mean_pass_at_k

__all__ = [
    "CoverageConfig",
    "CoverageForecast",
    "PowerLawFit",
    "coverage_curve",
    "extrapolate",
    "fit_power_law",
    "forecast_coverage",
    "log_grid",
]


@dataclass(frozen=True, kw_only=True)
class CoverageConfig:
    """Which k to evaluate (None: 1, 2, 4, ..., n) and how far to extrapolate (x pool size)."""

    ks: tuple[int, ...] | None = None
    factor: float = 10.0

    def __post_init__(self) -> None:
        if self.ks is not None:
            if not self.ks:
                raise ValueError("ks must be None or name at least one k")
            for k in self.ks:
                if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                    raise ValueError(f"ks must hold integers >= 1, got {k!r}")
        if not np.isfinite(self.factor) or self.factor < 1:
            raise ValueError(f"factor must be a finite number >= 1, got {self.factor!r}")


@dataclass(frozen=True)
class PowerLawFit:
    """``c(k) = exp(a * k**b)``; ``r2`` in the fitted log(-log c) space over ``n_points``."""

    a: float
    b: float
    r2: float
    n_points: int


@dataclass(frozen=True)
class CoverageForecast:
    """The measured curve, its fit (None if unfittable) and the coverage predicted at ``k``."""

    curve: dict[int, float]
    fit: PowerLawFit | None
    k: int
    coverage: float


def log_grid(n: int) -> tuple[int, ...]:
    """Return the log-spaced grid 1, 2, 4, ... up to ``n``, ending at ``n`` itself.

    >>> log_grid(10), log_grid(8), log_grid(1)
    ((1, 2, 4, 8, 10), (1, 2, 4, 8), (1,))
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    grid = [1 << e for e in range(int(n).bit_length()) if 1 << e <= n]
    if grid[-1] != n:
        grid.append(int(n))
    return tuple(grid)


def coverage_curve(
    ns: Sequence[int] | NDArray[np.integer],
    cs: Sequence[int] | NDArray[np.integer],
    ks: Iterable[int] | None = None,
) -> dict[int, float]:
    """Return ``{k: mean pass@k}`` on ``ks`` (default ``log_grid(min n)``), k <= every n.

    >>> {k: round(v, 4) for k, v in coverage_curve([4, 4], [0, 1]).items()}
    {1: 0.125, 2: 0.25, 4: 0.5}
    """
    if len(ns) == 0:
        return {}
    grid = log_grid(int(np.min(ns))) if ks is None else ks
    return mean_pass_at_k([int(n) for n in ns], [int(c) for c in cs], grid)


def fit_power_law(ks: ArrayLike, coverage: ArrayLike) -> PowerLawFit | None:
    """Fit ``c(k) = exp(a k^b)`` by OLS of log(-log c) on log k; None if < 2 usable points.

    Only points with ``0 < c < 1`` are usable (log(-log c) is undefined elsewhere), and
    they need at least two distinct k.

    >>> ks = np.array([1, 2, 4, 8, 16])
    >>> fit = fit_power_law(ks, np.exp(-0.9 * ks**-0.4))
    >>> round(fit.a, 6), round(fit.b, 6), round(fit.r2, 6), fit.n_points
    (-0.9, -0.4, 1.0, 5)
    >>> fit_power_law([1, 2], [0.5, 1.0]) is None
    True
    """
    k_arr = np.asarray(ks, dtype=np.float64).ravel()
    c_arr = np.asarray(coverage, dtype=np.float64).ravel()
    if k_arr.shape != c_arr.shape:
        raise ValueError(f"ks and coverage differ in length: {k_arr.size} and {c_arr.size}")
    if np.any(~np.isfinite(k_arr)) or np.any(k_arr <= 0):
        raise ValueError("ks must be finite and > 0")
    usable = np.isfinite(c_arr) & (c_arr > 0) & (c_arr < 1)
    x = np.log(k_arr[usable])
    y = np.log(-np.log(c_arr[usable]))
    if x.size < 2 or np.ptp(x) == 0:
        return None
    x_centred = x - x.mean()
    slope = float(np.dot(x_centred, y - y.mean()) / np.dot(x_centred, x_centred))
    intercept = float(y.mean() - slope * x.mean())
    residual = y - (intercept + slope * x)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum(residual**2))
    r2 = 1.0 if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return PowerLawFit(a=-float(np.exp(intercept)), b=slope, r2=r2, n_points=int(x.size))


@overload
def extrapolate(fit: PowerLawFit, k: float) -> float: ...


@overload
def extrapolate(
    fit: PowerLawFit, k: Sequence[float] | NDArray[np.generic]
) -> NDArray[np.float64]: ...


def extrapolate(
    fit: PowerLawFit, k: float | Sequence[float] | NDArray[np.generic]
) -> float | NDArray[np.float64]:
    """Return the fitted coverage ``exp(a * k**b)`` at ``k`` (a number or an array).

    >>> round(extrapolate(PowerLawFit(a=-1.0, b=-0.5, r2=1.0, n_points=5), 4.0), 6)
    0.606531
    """
    k_arr = np.asarray(k, dtype=np.float64)
    if np.any(k_arr <= 0):
        raise ValueError("k must be > 0")
    value = np.exp(fit.a * k_arr**fit.b)
    return float(value) if value.ndim == 0 else value


def forecast_coverage(
    ns: Sequence[int] | NDArray[np.integer],
    cs: Sequence[int] | NDArray[np.integer],
    *,
    factor: float = 10.0,
    ks: tuple[int, ...] | None = None,
) -> CoverageForecast:
    """Measure coverage, fit the power law and predict it at ``factor`` x the pool size.

    ``coverage`` is NaN when fewer than two grid points lie strictly between 0 and 1.

    >>> forecast = forecast_coverage([100] * 4, [0, 1, 5, 30], factor=10)
    >>> forecast.k, forecast.fit is not None, forecast.coverage > forecast.curve[100]
    (1000, True, True)
    """
    config = CoverageConfig(ks=ks, factor=factor)
    curve = coverage_curve(ns, cs, config.ks)
    if not curve:
        raise ValueError("forecast_coverage needs at least one problem")
    fit = fit_power_law(list(curve), list(curve.values()))
    target = int(round(int(np.min(ns)) * config.factor))
    value = float("nan") if fit is None else extrapolate(fit, float(target))
    return CoverageForecast(curve=curve, fit=fit, k=target, coverage=value)
