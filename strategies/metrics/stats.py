"""Bootstrap confidence intervals and paired comparison over problems (ALGORITHMS §16).

The unit of resampling is the problem: pass per-problem scores (0/1 accuracy, pass@k,
maj@k), never per-sample values. Resampling is vectorised in chunks of index matrices so
memory stays bounded; seeds are explicit and reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats  # type: ignore[import-untyped]

__all__ = [
    "BootstrapConfig",
    "ConfidenceInterval",
    "HolmConfig",
    "PairedComparison",
    "bootstrap_ci",
    "bootstrap_cis",
    "cohen_kappa",
    "holm_bonferroni",
    "mcnemar_exact",
    "paired_comparison",
]

_CHUNK_ELEMENTS = 2_000_000  # indices per chunk: about 16 MB of int64


@dataclass(frozen=True, kw_only=True)
class BootstrapConfig:
    """Resamples, two-sided level alpha and seed for ``bootstrap_ci``/``paired_comparison``."""

    n_resamples: int = 10_000
    alpha: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_resamples", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be >= 1, got {self.n_resamples}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha!r}")


@dataclass(frozen=True, kw_only=True)
class HolmConfig:
    """Holm-Bonferroni has no knobs: it controls the family-wise error rate."""


@dataclass(frozen=True)
class ConfidenceInterval:
    """The sample mean and its percentile-bootstrap interval, with the seed that made it."""

    mean: float
    low: float
    high: float
    seed: int
    n_resamples: int


@dataclass(frozen=True)
class PairedComparison:
    """A minus B on the same problems: mean difference, its CI, counts and p-values."""

    mean_diff: float
    ci_low: float
    ci_high: float
    wins: int
    ties: int
    losses: int
    p_value_sign_flip: float
    p_value_bootstrap: float
    p_value_mcnemar: float | None


def _as_scores(name: str, values: ArrayLike) -> NDArray[np.float64]:
    """Return a 1-D finite float array of per-problem scores (at least one)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-problem scores")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (drop or fill NaN problems first)")
    return arr


def _chunks(total: int, width: int) -> Iterator[int]:
    """Yield row counts adding up to ``total`` with about ``_CHUNK_ELEMENTS`` per chunk."""
    step = max(1, _CHUNK_ELEMENTS // max(width, 1))
    for start in range(0, total, step):
        yield min(step, total - start)


def _resample_indices(
    n: int, n_resamples: int, rng: np.random.Generator
) -> list[NDArray[np.int32]]:
    """Chunks of ``n_resamples`` rows of n indices drawn with replacement from ``range(n)``."""
    return [rng.integers(0, n, size=(rows, n), dtype=np.int32)
            for rows in _chunks(n_resamples, n)]


def _bootstrap_means(
    values: NDArray[np.float64], n_resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Means of ``n_resamples`` resamples (with replacement) of ``values``."""
    return _resampled_means(values, _resample_indices(values.size, n_resamples, rng))


def _resampled_means(
    values: NDArray[np.float64], indices: list[NDArray[np.int32]]
) -> NDArray[np.float64]:
    return np.concatenate([values[chunk].mean(axis=1) for chunk in indices])


def bootstrap_ci(
    values: ArrayLike, *, n_resamples: int = 10_000, alpha: float = 0.05, seed: int = 0
) -> ConfidenceInterval:
    """Return the mean of per-problem scores with its percentile-bootstrap (1 - alpha) CI.

    >>> ci = bootstrap_ci([0, 1, 1, 1, 0, 1, 1, 1], n_resamples=2000, seed=1)
    >>> ci.mean, ci.low <= ci.mean <= ci.high, (ci.seed, ci.n_resamples)
    (0.75, True, (1, 2000))
    """
    return bootstrap_cis([values], n_resamples=n_resamples, alpha=alpha, seed=seed)[0]


def bootstrap_cis(
    samples: Sequence[ArrayLike], *, n_resamples: int = 10_000, alpha: float = 0.05,
    seed: int = 0,
) -> list[ConfidenceInterval]:
    """Return ``bootstrap_ci`` of each sample of per-problem scores, the same intervals as
    one call each: samples of one length share one draw of the resample indices.

    >>> [ci.mean for ci in bootstrap_cis([[0, 1], [1, 1], [0, 0, 1]], n_resamples=100)]
    [0.5, 1.0, 0.3333333333333333]
    """
    config = BootstrapConfig(n_resamples=n_resamples, alpha=alpha, seed=seed)
    drawn: dict[int, list[NDArray[np.int32]]] = {}
    out = []
    for values in samples:
        scores = _as_scores("values", values)
        if scores.size not in drawn:
            drawn[scores.size] = _resample_indices(
                scores.size, config.n_resamples, np.random.default_rng(config.seed))
        means = _resampled_means(scores, drawn[scores.size])
        low, high = np.quantile(means, [config.alpha / 2, 1 - config.alpha / 2])
        out.append(ConfidenceInterval(
            float(scores.mean()), float(low), float(high), config.seed, config.n_resamples
        ))
    return out


def _binom_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), typed."""
    return float(cast("float", stats.binom.cdf(k, n, 0.5)))


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p-value on discordant counts: ``min(1, 2 * BinomCDF(min(b, c); b+c, 1/2))``.

    >>> round(mcnemar_exact(1, 6), 6)  # 2 * (1 + 7) / 128
    0.125
    >>> mcnemar_exact(0, 0)
    1.0
    """
    if min(b, c) < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return min(1.0, 2.0 * _binom_cdf(min(b, c), b + c))


def _sign_flip_p(diff: NDArray[np.float64], n_resamples: int, rng: np.random.Generator) -> float:
    """Sign-flip permutation p = (1 + #{|mean(s*d)| >= |mean(d)|}) / (1 + R)."""
    n = diff.size
    observed = abs(diff.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(diff).max()))  # equal means must count as >=
    hits = 0
    for rows in _chunks(n_resamples, n):
        # One random bit per sign: s = 2 * bit - 1, so s @ d = 2 * (bits @ d) - sum(d).
        packed = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
        bits = np.unpackbits(packed, axis=1, count=n).astype(np.float64)
        flipped = np.abs(2.0 * (bits @ diff) - diff.sum()) / n
        hits += int(np.count_nonzero(flipped >= observed - tolerance))
    return (1 + hits) / (1 + n_resamples)


def paired_comparison(
    a: ArrayLike,
    b: ArrayLike,
    *,
    seed: int = 0,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
) -> PairedComparison:
    """Compare strategies A and B on the same problems (per-problem scores, paired).

    McNemar's p-value is given only when both score vectors are 0/1.

    >>> result = paired_comparison([1, 1, 1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 1, 0, 0])
    >>> result.mean_diff, (result.wins, result.ties, result.losses)
    (0.75, (6, 2, 0))
    >>> result.p_value_mcnemar, result.p_value_sign_flip < 0.05
    (0.03125, True)
    """
    config = BootstrapConfig(n_resamples=n_resamples, alpha=alpha, seed=seed)
    first = _as_scores("a", a)
    second = _as_scores("b", b)
    if first.shape != second.shape:
        raise ValueError(f"a and b must score the same problems: {first.size} vs {second.size}")
    diff = first - second
    bootstrap_rng, flip_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(2)
    )
    means = _bootstrap_means(diff, config.n_resamples, bootstrap_rng)
    low, high = np.quantile(means, [config.alpha / 2, 1 - config.alpha / 2])
    p_boot = min(1.0, 2.0 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    is_binary = bool(np.all(np.isin(first, (0.0, 1.0))) and np.all(np.isin(second, (0.0, 1.0))))
    p_mcnemar = (
        mcnemar_exact(int(np.sum(first > second)), int(np.sum(first < second)))
        if is_binary
        else None
    )
    return PairedComparison(
        mean_diff=float(diff.mean()),
        ci_low=float(low),
        ci_high=float(high),
        wins=int(np.sum(diff > 0)),
        ties=int(np.sum(diff == 0)),
        losses=int(np.sum(diff < 0)),
        p_value_sign_flip=_sign_flip_p(diff, config.n_resamples, flip_rng),
        p_value_bootstrap=p_boot,
        p_value_mcnemar=p_mcnemar,
    )


def holm_bonferroni(p_values: ArrayLike) -> NDArray[np.float64]:
    """Return Holm-Bonferroni adjusted p-values, in the input order.

    >>> holm_bonferroni([0.01, 0.04, 0.03, 0.005])
    array([0.03, 0.06, 0.06, 0.02])
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def cohen_kappa(table: ArrayLike) -> float:
    """Return Cohen's kappa of a square agreement table (rows: one rater, columns: the other).

    ``kappa = (p_o - p_e) / (1 - p_e)``: ``p_o`` the share of items on the diagonal,
    ``p_e`` the share expected by chance from the two raters' margins. Computed as
    ``(n * diag - sum(row * col)) / (n**2 - sum(row * col))``, exact for counts. NaN
    when chance agreement is certain (``p_e = 1``: both raters used one category only).

    >>> cohen_kappa([[20, 5], [10, 15]])  # p_o = 35/50 = 0.7, p_e = (25*30 + 25*20)/50**2 = 0.5
    0.4
    >>> cohen_kappa([[3, 0], [0, 2]]), cohen_kappa([[0, 4], [4, 0]])
    (1.0, -1.0)
    """
    counts = np.asarray(table, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] < 2:
        raise ValueError(f"table must be a square k x k table with k >= 2, got {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("table must hold finite counts >= 0")
    n = float(counts.sum())
    if n == 0:
        raise ValueError("table is empty: there is no agreement to measure")
    chance = float(counts.sum(axis=1) @ counts.sum(axis=0))
    if n * n == chance:
        return float("nan")
    return (n * float(np.trace(counts)) - chance) / (n * n - chance)
