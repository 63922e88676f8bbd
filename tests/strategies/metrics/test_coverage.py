"""Coverage curve and the exponentiated power-law fit."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.metrics.coverage import (
    CoverageConfig,
    PowerLawFit,
    coverage_curve,
    extrapolate,
    fit_power_law,
    forecast_coverage,
    log_grid,
)
from strategies.metrics.passk import pass_at_k


def test_it_builds_a_log_grid_that_ends_at_n() -> None:
    assert log_grid(1000) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
    assert log_grid(16) == (1, 2, 4, 8, 16)
    with pytest.raises(ValueError):
        log_grid(0)


def _mean_pass(k: int) -> float:
    return (pass_at_k(8, 1, k) + pass_at_k(10, 3, k)) / 2


def test_it_averages_pass_at_k_on_the_grid() -> None:
    curve = coverage_curve([8, 10], [1, 3])
    assert list(curve) == [1, 2, 4, 8]  # the grid stops at the smallest n
    for k, value in curve.items():
        assert value == pytest.approx(_mean_pass(k))
    assert coverage_curve([8, 10], [1, 3], ks=[3, 9]) == {3: pytest.approx(_mean_pass(3))}
    assert coverage_curve([], []) == {}


@pytest.mark.parametrize(("a", "b"), [(-0.9, -0.4), (-2.5, -0.15), (-0.05, -0.8)])
def test_it_recovers_a_known_law_from_an_exact_curve(a: float, b: float) -> None:
    ks = np.array(log_grid(1000))
    fit = fit_power_law(ks, np.exp(a * ks**b))
    assert fit is not None
    assert fit.a == pytest.approx(a, rel=1e-10)
    assert fit.b == pytest.approx(b, rel=1e-10)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.n_points == ks.size


def test_it_recovers_a_known_law_from_a_noisy_curve() -> None:
    rng = np.random.default_rng(4)
    ks = np.array(log_grid(1000))
    a, b = -1.2, -0.3
    noisy = np.exp(a * ks**b * np.exp(rng.normal(0.0, 0.03, ks.size)))  # 3% noise on -log c
    fit = fit_power_law(ks, noisy)
    assert fit is not None
    assert fit.a == pytest.approx(a, rel=0.05)
    assert fit.b == pytest.approx(b, abs=0.02)
    assert 0.95 < fit.r2 < 1.0


def test_it_fits_a_curve_from_heavy_tailed_problem_difficulty() -> None:
    # Schaeffer et al.: a heavy-tailed spread of per-problem pass@1 gives a power law.
    rng = np.random.default_rng(8)
    rates = rng.beta(0.3, 3.0, size=2000)
    ns = np.full(rates.size, 1000)
    cs = rng.binomial(1000, rates)
    curve = coverage_curve(ns, cs)
    fit = fit_power_law(list(curve), list(curve.values()))
    assert fit is not None
    assert fit.a < 0 and fit.b < 0
    assert fit.r2 > 0.9


def test_it_uses_only_points_strictly_between_0_and_1() -> None:
    fit = fit_power_law([1, 2, 4, 8, 16], [0.0, 0.2, 0.4, 1.0, np.nan])
    assert fit is not None and fit.n_points == 2
    assert fit_power_law([1, 2, 4], [0.0, 0.5, 1.0]) is None
    assert fit_power_law([2, 2], [0.3, 0.5]) is None  # one distinct k
    with pytest.raises(ValueError):
        fit_power_law([1, 2], [0.5])
    with pytest.raises(ValueError):
        fit_power_law([0, 2], [0.1, 0.5])


def test_it_extrapolates_scalars_and_arrays() -> None:
    fit = PowerLawFit(a=-1.0, b=-0.5, r2=1.0, n_points=3)
    assert extrapolate(fit, 1.0) == pytest.approx(np.exp(-1.0))
    np.testing.assert_allclose(extrapolate(fit, [1.0, 4.0]), np.exp([-1.0, -0.5]))
    with pytest.raises(ValueError):
        extrapolate(fit, 0.0)


def test_it_forecasts_ten_times_the_pool() -> None:
    rng = np.random.default_rng(2)
    cs = rng.binomial(100, rng.beta(0.3, 3.0, size=500))
    forecast = forecast_coverage(np.full(500, 100), cs)
    assert forecast.k == 1000
    assert forecast.fit is not None
    assert forecast.curve[100] < forecast.coverage < 1.0
    unfittable = forecast_coverage([10, 10], [0, 0])  # coverage 0 everywhere
    assert unfittable.fit is None and np.isnan(unfittable.coverage)
    flat = forecast_coverage([10, 10], [0, 10])  # 0.5 at every k: b = 0, no growth
    assert flat.fit is not None and flat.fit.b == pytest.approx(0.0)
    assert flat.coverage == pytest.approx(0.5)


def test_it_validates_the_config() -> None:
    assert CoverageConfig().factor == 10.0
    for bad in ({"ks": ()}, {"ks": (0,)}, {"factor": 0.5}, {"factor": float("nan")}):
        with pytest.raises(ValueError, match="ks|factor"):
            CoverageConfig(**bad)  # type: ignore[arg-type]
