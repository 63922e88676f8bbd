"""pass^k: all k draws correct, against the combinatorial form."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from strategies.metrics.passk import mean_pass_hat_k, pass_hat_k, pass_hat_k_array


def _exact(n: int, c: int, k: int) -> float:
    return float(Fraction(comb(c, k), comb(n, k)))


def test_it_matches_the_combinatorial_form_for_small_n() -> None:
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_hat_k(n, c, k) == pytest.approx(_exact(n, c, k), rel=1e-12, abs=0)


def test_it_computes_hand_cases() -> None:
    assert pass_hat_k(5, 3, 2) == pytest.approx(0.3)  # C(3,2)/C(5,2)
    assert pass_hat_k(10, 10, 7) == 1.0
    assert pass_hat_k(10, 6, 7) == 0.0
    assert pass_hat_k(10, 3, 1) == pytest.approx(0.3)  # pass^1 = pass@1


def test_it_vectorises_like_the_scalar_form_at_large_n() -> None:
    rng = np.random.default_rng(11)
    ns = rng.integers(1, 1200, size=400)
    cs = rng.integers(0, ns + 1)
    for k in (1, 2, 5, 50, 300):
        got = pass_hat_k_array(ns, cs, k)
        for n, c, value in zip(ns, cs, got, strict=True):
            if k > n:
                assert np.isnan(value)
            else:
                assert value == pytest.approx(pass_hat_k(int(n), int(c), k), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (3, 4, 1), (-1, 0, 1), (3, 1, 0)])
def test_it_rejects_invalid_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_hat_k(n, c, k)


def test_it_rejects_invalid_arrays() -> None:
    with pytest.raises(ValueError):
        pass_hat_k_array([3], [4], 1)
    with pytest.raises(ValueError):
        pass_hat_k_array([3.0], [1], 1)


def test_it_averages_over_problems() -> None:
    result = mean_pass_hat_k([4, 10], [2, 10], [1, 2, 5, 20])
    assert set(result) == {1, 2}
    assert result[2] == pytest.approx((_exact(4, 2, 2) + 1.0) / 2)
    assert mean_pass_hat_k([], [], [1]) == {}
