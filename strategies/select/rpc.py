"""RPC: Reasoning Pruning (a Weibull mixture) plus Perplexity Consistency (ALGORITHMS §9)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection, answer_groups, selection_from_options
from strategies.select.numeric import gamma, minimize_bounded
from strategies.types import Candidate

__all__ = ["RPCConfig", "reasoning_pruning_mask", "select_rpc"]

#: Initial guess ``(w, k1, λ1, k2, λ2)`` and bounds of the reference implementation.
INITIAL_GUESS = (0.5, 1.0, 1.0, 1.5, 2.0)
BOUNDS: tuple[tuple[float | None, float | None], ...] = (
    (0.2, 0.8),
    (0.01, None),
    (0.01, None),
    (0.01, None),
    (0.01, None),
)
MIN_SAMPLES_TO_PRUNE = 3


@dataclass(frozen=True, kw_only=True)
class RPCConfig:
    """``prune=False`` skips Reasoning Pruning and leaves plain Perplexity Consistency."""

    prune: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.prune, bool):
            raise ValueError(f"prune must be a bool, got {self.prune!r}")


def _weibull_logpdf(x: np.ndarray, k: float, lam: float) -> np.ndarray:
    """Return ``log((k/λ)(x/λ)^(k-1) exp(-(x/λ)^k))`` for ``x > 0``."""
    z = np.log(x) - np.log(lam)
    return np.asarray(np.log(k) - np.log(lam) + (k - 1) * z - np.exp(k * z), dtype=np.float64)


def _mixture_nll(params: np.ndarray, x: np.ndarray) -> float:
    """Return the mixture's negative log-likelihood of ``x`` (``inf`` when undefined)."""
    return _mixture_nll_and_gradient(params, x)[0]


def _mixture_nll_and_gradient(params: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Return the negative log-likelihood and its gradient in ``(w, k1, λ1, k2, λ2)``."""
    w, k1, lam1, k2, lam2 = (float(v) for v in params)
    with np.errstate(all="ignore"):
        log1 = np.log(w) + _weibull_logpdf(x, k1, lam1)
        log2 = np.log1p(-w) + _weibull_logpdf(x, k2, lam2)
        log_mix = np.logaddexp(log1, log2)
        value = -float(np.sum(log_mix))
        r1 = np.exp(log1 - log_mix)  # posterior membership of component 1
        gradient = np.zeros(5)
        gradient[0] = -float(np.sum(r1 / w - (1 - r1) / (1 - w)))
        for slot, (k, lam, r) in enumerate(((k1, lam1, r1), (k2, lam2, 1 - r1))):
            z = np.log(x) - np.log(lam)
            t = np.exp(k * z)  # (x / λ)^k
            gradient[1 + 2 * slot] = -float(np.sum(r * (1 / k + z - t * z)))
            gradient[2 + 2 * slot] = -float(np.sum(r * k * (t - 1) / lam))
    if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
        return math.inf, np.zeros(5)
    return value, gradient


def _fit_mixture(x: np.ndarray) -> tuple[float, float, float, float, float] | None:
    """Fit ``(w, k1, λ1, k2, λ2)`` by maximum likelihood; ``None`` when the fit fails."""
    try:
        params, nll = minimize_bounded(
            lambda p: _mixture_nll_and_gradient(p, x), INITIAL_GUESS, BOUNDS
        )
    except (ValueError, FloatingPointError, ArithmeticError):
        return None
    if not (np.all(np.isfinite(params)) and np.isfinite(nll)):
        return None
    w, k1, lam1, k2, lam2 = (float(v) for v in params)
    if lam1 * gamma(1 + 1 / k1) < lam2 * gamma(1 + 1 / k2):  # component 1: the larger mean
        w, k1, lam1, k2, lam2 = 1 - w, k2, lam2, k1, lam1
    return w, k1, lam1, k2, lam2


def reasoning_pruning_mask(probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return a boolean mask of the paths to keep, given each path's ``p_i = exp(ℓ_i)``.

    A path is pruned when the low-mean mixture component explains it better
    (``P1 < P2``) **and** ``p_i`` is below the mean. Nothing is pruned with fewer than
    three paths, equal probabilities or a failed fit.

    >>> reasoning_pruning_mask([0.5, 0.9]).tolist()
    [True, True]
    """
    p = np.asarray(probabilities, dtype=np.float64)
    keep = np.ones(len(p), dtype=bool)
    if len(p) < MIN_SAMPLES_TO_PRUNE or np.all(p == p[0]) or not np.all(p > 0):
        return keep
    fit = _fit_mixture(p)
    if fit is None:
        return keep
    w, k1, lam1, k2, lam2 = fit
    with np.errstate(all="ignore"):
        log1 = np.log(w) + _weibull_logpdf(p, k1, lam1)
        log2 = np.log1p(-w) + _weibull_logpdf(p, k2, lam2)
    p1 = 1.0 / (1.0 + np.exp(log2 - log1))  # NaN when both densities vanish: keep the path
    return np.asarray(~((p1 < 0.5) & (p < p.mean())), dtype=bool)


def select_rpc(
    candidates: Sequence[Candidate],
    config: RPCConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Prune low-probability paths, then return the answer with the most probability mass.

    A group's score sums ``p_i = exp(mean logprob)`` over its **distinct** completion
    texts (duplicates count once). The chosen index is the group's first kept member;
    ``scores`` gives each kept candidate its group's score (0 when pruned or unanswered).

    >>> pool = [Candidate(text=t, answer=a, generated_tokens=1, logprob_sum=lp)
    ...         for t, a, lp in [("x", "7", -0.7), ("x", "7", -0.7), ("y", "8", -0.9),
    ...                          ("z", "8", -0.9)]]
    >>> select_rpc(pool, RPCConfig(prune=False)).answer  # 0.50 once vs 0.41 + 0.41
    '8'
    """
    del rng  # deterministic
    config = config or RPCConfig()
    group, firsts = answer_groups(candidates)
    p = np.exp(np.array([c.mean_logprob for c in candidates], dtype=np.float64))
    keep = reasoning_pruning_mask(p) if config.prune else np.ones(len(p), dtype=bool)
    if not np.any(keep & (group >= 0)):
        keep = np.ones(len(p), dtype=bool)  # never prune every answer away
    mass = np.zeros(len(firsts))
    representative: dict[int, int] = {}
    seen: set[tuple[int, str]] = set()
    for index, g in enumerate(group.tolist()):
        if g < 0 or not keep[index]:
            continue
        representative.setdefault(g, index)
        if (g, candidates[index].text) not in seen:
            seen.add((g, candidates[index].text))
            mass[g] += p[index]
    groups = sorted(representative, key=representative.__getitem__)
    scores = [float(mass[g]) if g >= 0 and keep[i] else 0.0 for i, g in enumerate(group.tolist())]
    return selection_from_options(
        candidates,
        [representative[g] for g in groups],
        [(float(mass[g]),) for g in groups],
        scores,
    )
