"""Bootstrap CIs, paired comparison (sign-flip, bootstrap, McNemar) and Holm-Bonferroni."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from strategies.metrics.stats import (
    BootstrapConfig,
    bootstrap_ci,
    bootstrap_cis,
    holm_bonferroni,
    mcnemar_exact,
    paired_comparison,
)


def test_the_ci_covers_the_mean_and_shrinks_with_more_problems() -> None:
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.6, size=50)
    large = rng.binomial(1, 0.6, size=5000)
    ci_small = bootstrap_ci(small, n_resamples=4000)
    ci_large = bootstrap_ci(large, n_resamples=4000)
    for ci, values in ((ci_small, small), (ci_large, large)):
        assert ci.mean == pytest.approx(values.mean())
        assert ci.low < ci.mean < ci.high
    assert ci_large.high - ci_large.low < (ci_small.high - ci_small.low) / 5  # ~ 1/sqrt(n)
    # The percentile interval is close to the normal one for a mean of Bernoullis.
    half_width = 1.96 * large.std() / np.sqrt(large.size)
    assert ci_large.high - ci_large.low == pytest.approx(2 * half_width, rel=0.1)


def test_the_ci_is_reproducible_from_its_seed() -> None:
    values = np.random.default_rng(1).normal(size=300)
    first = bootstrap_ci(values, n_resamples=1000, seed=7)
    assert first == bootstrap_ci(values, n_resamples=1000, seed=7)
    assert first != bootstrap_ci(values, n_resamples=1000, seed=8)
    assert (first.seed, first.n_resamples) == (7, 1000)


def test_intervals_computed_together_equal_those_computed_alone() -> None:
    rng = np.random.default_rng(3)
    samples = [rng.normal(size=40), rng.binomial(1, 0.3, size=25).astype(float),
               rng.normal(size=40), rng.uniform(size=40)]
    together = bootstrap_cis(samples, n_resamples=700, seed=5)
    assert together == [bootstrap_cis([s], n_resamples=700, seed=5)[0] for s in samples]
    assert together[0] == bootstrap_ci(samples[0], n_resamples=700, seed=5)
    assert together[0] != together[2]  # the same indices, other values


def test_the_ci_of_a_constant_is_a_point() -> None:
    ci = bootstrap_ci([0.25] * 10, n_resamples=100)
    assert ci.low == ci.high == ci.mean == 0.25


def test_the_sign_flip_p_value_is_one_without_differences() -> None:
    scores = np.random.default_rng(2).random(40)
    result = paired_comparison(scores, scores, n_resamples=2000)
    assert result.p_value_sign_flip == 1.0
    assert result.p_value_bootstrap == 1.0
    assert (result.wins, result.ties, result.losses) == (0, 40, 0)
    assert result.mean_diff == 0.0 and result.p_value_mcnemar is None


def test_a_consistent_shift_is_significant() -> None:
    rng = np.random.default_rng(3)
    b = rng.random(60)
    a = b + 0.05 + rng.normal(0.0, 0.01, size=60)
    result = paired_comparison(a, b, n_resamples=5000, seed=1)
    assert result.p_value_sign_flip == pytest.approx(1 / 5001)
    assert result.p_value_bootstrap < 0.01
    assert result.ci_low > 0 and result.ci_low < result.mean_diff < result.ci_high
    assert result.wins > 55


def test_a_null_difference_gives_a_large_p_value() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random(200), rng.random(200)
    result = paired_comparison(a, b, n_resamples=5000)
    assert result.p_value_sign_flip > 0.05
    assert result.ci_low < 0 < result.ci_high


def test_mcnemar_matches_a_hand_case() -> None:
    # b = 2 discordant for A, c = 8 for B: p = 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * 56/1024.
    assert mcnemar_exact(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    a = [1] * 2 + [0] * 8 + [1] * 5 + [0] * 5
    b = [0] * 2 + [1] * 8 + [1] * 5 + [0] * 5
    result = paired_comparison(a, b, n_resamples=1000)
    assert result.p_value_mcnemar == pytest.approx(2 * 56 / 1024)
    assert (result.wins, result.ties, result.losses) == (2, 10, 8)
    expected = sum(comb(10, i) for i in range(3)) / 2**10 * 2
    assert result.p_value_mcnemar == pytest.approx(expected)


def test_paired_comparison_is_reproducible_and_checks_lengths() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random(30), rng.random(30)
    assert paired_comparison(a, b, seed=3, n_resamples=500) == paired_comparison(
        a, b, seed=3, n_resamples=500
    )
    with pytest.raises(ValueError, match="same problems"):
        paired_comparison([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])


def test_holm_bonferroni_matches_a_hand_case() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    adjusted = holm_bonferroni([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm_bonferroni([0.5, 0.6]), [1.0, 1.0])
    assert holm_bonferroni([]).size == 0
    with pytest.raises(ValueError):
        holm_bonferroni([1.5])


def test_the_config_validates() -> None:
    for bad in ({"n_resamples": 0}, {"alpha": 1.0}, {"seed": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BootstrapConfig(**bad)  # type: ignore[arg-type]
