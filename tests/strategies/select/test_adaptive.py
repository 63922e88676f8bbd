"""The Beta stopping rule of adaptive-consistency (ALGORITHMS §12b)."""

from __future__ import annotations

import pytest
from scipy.integrate import quad  # type: ignore[import-untyped]

from strategies.select.adaptive import (
    AdaptiveConfig,
    adaptive_sample_count,
    beta_stop_probability,
    select_adaptive_consistency,
    should_stop,
)
from strategies.select.majority import select_majority
from strategies.types import Candidate


def test_it_matches_the_closed_form_without_a_runner_up() -> None:
    for a in range(12):
        assert beta_stop_probability(a, 0) == pytest.approx(1 - 0.5 ** (a + 1))
    assert beta_stop_probability(4, 0) == pytest.approx(0.96875)
    assert beta_stop_probability(0, 0) == pytest.approx(0.5)


def _integral(a: int, b: int, low: float) -> float:
    """``∫_low^1 x^a (1 - x)^b dx``, numerically, as the reference implementation does."""
    return float(quad(lambda x: x**a * (1 - x) ** b, low, 1)[0])


def test_it_matches_numerical_integration() -> None:
    for a, b in [(1, 1), (3, 1), (5, 2), (10, 4), (7, 7), (20, 3)]:
        expected = _integral(a, b, 0.5) / _integral(a, b, 0.0)
        assert beta_stop_probability(a, b) == pytest.approx(expected, abs=1e-10)


def test_it_stops_after_four_unanimous_answers() -> None:
    assert not should_stop(["7", "7", "7"])  # 0.9375
    assert should_stop(["7", "7", "7", "7"])  # 0.96875
    assert should_stop(["7", "7.0", "7.00", "7"])  # equivalent spellings count together
    assert not should_stop([])


def test_it_excludes_none_from_counts_but_not_from_the_budget() -> None:
    assert not should_stop([None] * 10 + ["7"] * 3)
    assert should_stop([None] * 5, AdaptiveConfig(max_samples=5))
    assert should_stop(["1", "2"] * 20)  # the default budget: 40 samples


def test_it_counts_the_samples_adaptive_sampling_would_draw() -> None:
    assert adaptive_sample_count(["7"] * 10) == 4
    # after 7 draws: a = 6, b = 1 -> 1 - I_0.5(7, 2) = 1 - 9/256 = 0.965
    assert adaptive_sample_count(["7", "8", "7", "7", "7", "7", "7", "7"]) == 7
    assert adaptive_sample_count(["1", "2"] * 30) == 40
    assert adaptive_sample_count(["1", "2"] * 3) == 6  # the pool ran out first
    assert adaptive_sample_count([]) == 0
    config = AdaptiveConfig(threshold=0.99)
    assert adaptive_sample_count(["7"] * 10, config) == 6  # 1 - 0.5^7 = 0.992


def test_it_agrees_with_should_stop_on_every_prefix() -> None:
    answers = ["3", None, "4", "3", "3", None, "4", "3", "3", "3", "3", "3"]
    used = adaptive_sample_count(answers)
    assert should_stop(answers[:used])
    assert not any(should_stop(answers[:t]) for t in range(used))


def test_it_votes_over_the_drawn_prefix() -> None:
    pool = [Candidate(text="", answer=a) for a in ["7"] * 4 + ["8"] * 9]
    selection = select_adaptive_consistency(pool)
    assert selection.answer == "7"
    assert select_majority(pool).answer == "8"
    assert selection.scores == (4.0,) * 4 + (0.0,) * 9


def test_it_rejects_bad_configs() -> None:
    with pytest.raises(ValueError, match="threshold"):
        AdaptiveConfig(threshold=0.4)
    with pytest.raises(ValueError, match="max_samples"):
        AdaptiveConfig(max_samples=0)
    with pytest.raises(ValueError, match="counts"):
        beta_stop_probability(-1, 0)
