"""RPC: Reasoning Pruning and Perplexity Consistency (ALGORITHMS §9)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.select import rpc
from strategies.select.majority import select_majority
from strategies.select.rpc import RPCConfig, reasoning_pruning_mask, select_rpc
from strategies.types import Candidate

HIGH = [0.90, 0.91, 0.92]
LOW = [0.10 + 0.01 * i for i in range(20)]  # 0.10 .. 0.29; mean of all 23 is about 0.288


def _candidate(text: str, answer: str | None, p: float) -> Candidate:
    return Candidate(text=text, answer=answer, logprob_sum=math.log(p), generated_tokens=1)


def _pool(low_answer: str | None = "5", high_answer: str | None = "7") -> list[Candidate]:
    pool = [_candidate(f"high {i}", high_answer, p) for i, p in enumerate(HIGH)]
    pool += [_candidate(f"low {i}", low_answer, p) for i, p in enumerate(LOW)]
    return pool


def test_it_prunes_the_low_probability_cluster() -> None:
    keep = reasoning_pruning_mask(HIGH + LOW)
    # the high cluster stays; the low cluster goes, except 0.29, which is above the mean
    assert keep.tolist() == [True] * 3 + [False] * 19 + [True]


def test_it_lets_pruning_change_the_winner() -> None:
    pool = _pool()
    # without pruning: "5" has 20 paths, mass 3.9 > "7" with 2.73
    assert select_rpc(pool, RPCConfig(prune=False)).answer == "5"
    assert select_majority(pool).answer == "5"
    selection = select_rpc(pool)
    assert (selection.answer, selection.index, selection.tied) == ("7", 0, (0,))
    assert selection.scores is not None
    assert selection.scores[0] == pytest.approx(sum(HIGH))
    assert selection.scores[3] == 0.0  # pruned
    assert selection.scores[-1] == pytest.approx(0.29)  # kept, alone in its group
    assert selection.ranking == (0, 22)


def test_it_counts_duplicate_completions_once() -> None:
    pool = [_candidate("same text", "7", 0.5)] * 3 + [
        _candidate("one way", "8", 0.4),
        _candidate("another way", "8", 0.4),
    ]
    selection = select_rpc(pool, RPCConfig(prune=False))
    assert selection.answer == "8"  # 0.4 + 0.4 > 0.5 (counted once, not 1.5)
    assert selection.scores == pytest.approx([0.5, 0.5, 0.5, 0.8, 0.8])
    assert select_majority(pool).answer == "7"


def test_it_skips_pruning_for_small_or_flat_pools() -> None:
    assert reasoning_pruning_mask([0.9, 0.1]).tolist() == [True, True]
    assert reasoning_pruning_mask([0.3] * 10).tolist() == [True] * 10
    assert reasoning_pruning_mask([]).tolist() == []


def test_it_skips_pruning_when_the_fit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpc, "_fit_mixture", lambda x: None)
    assert reasoning_pruning_mask(HIGH + LOW).all()
    assert select_rpc(_pool()).answer == "5"


def test_it_rejects_a_non_finite_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def nan_fit(fun: object, x0: object, bounds: object) -> tuple[np.ndarray, float]:
        return np.full(5, np.nan), math.nan

    monkeypatch.setattr(rpc, "minimize_bounded", nan_fit)
    assert rpc._fit_mixture(np.array(HIGH + LOW)) is None
    assert reasoning_pruning_mask(HIGH + LOW).all()


def test_it_never_prunes_every_answer_away() -> None:
    # the kept paths (the high cluster and 0.29) have no answer: keep everything instead
    pool = _pool(high_answer=None)
    pool[-1] = _candidate("low 19", None, LOW[-1])
    selection = select_rpc(pool)
    assert selection.answer == "5"


def test_it_abstains_without_answers() -> None:
    pool = [_candidate(f"t{i}", None, 0.5) for i in range(4)]
    assert select_rpc(pool).index is None
    assert select_rpc([]).index is None


def test_it_orders_components_by_mean() -> None:
    fit = rpc._fit_mixture(np.array(HIGH + LOW))
    assert fit is not None
    w, k1, lam1, k2, lam2 = fit
    assert 0.2 - 1e-9 <= w <= 0.8 + 1e-9
    assert lam1 * math.gamma(1 + 1 / k1) > lam2 * math.gamma(1 + 1 / k2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_it_prunes_like_the_reference_or_fits_better() -> None:
    """Against the reference's direct-density code: the same pruning, or a likelier fit."""
    from scipy.optimize import minimize  # type: ignore[import-untyped]
    from scipy.special import gamma  # type: ignore[import-untyped]

    def pdf(x: np.ndarray, k: float, lam: float) -> np.ndarray:
        return (k / lam) * (x / lam) ** (k - 1) * np.exp(-((x / lam) ** k))

    def reference(p: np.ndarray) -> tuple[np.ndarray, float]:
        def nll(params: np.ndarray) -> float:
            w, k1, l1, k2, l2 = params
            with np.errstate(all="ignore"):
                return float(-np.sum(np.log(w * pdf(p, k1, l1) + (1 - w) * pdf(p, k2, l2))))

        bounds = [(0.2, 0.8)] + [(0.01, None)] * 4
        result = minimize(nll, [0.5, 1, 1, 1.5, 2], bounds=bounds)
        w, k1, l1, k2, l2 = result.x
        if l1 * gamma(1 + 1 / k1) < l2 * gamma(1 + 1 / k2):
            k1, l1, k2, l2, w = k2, l2, k1, l1, 1 - w
        p1 = w * pdf(p, k1, l1) / (w * pdf(p, k1, l1) + (1 - w) * pdf(p, k2, l2))
        return ~((p1 < 1 - p1) & (p < p.mean())), float(result.fun)

    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(6):
        p = np.concatenate([rng.uniform(0.7, 0.95, 8), rng.uniform(0.05, 0.4, 12)])
        expected, reference_nll = reference(p)
        if np.array_equal(reasoning_pruning_mask(p), expected):
            agree += 1
        else:  # the reference stopped in a worse local optimum
            fit = rpc._fit_mixture(p)
            assert fit is not None
            assert rpc._mixture_nll(np.array(fit), p) < reference_nll
    assert agree >= 4
