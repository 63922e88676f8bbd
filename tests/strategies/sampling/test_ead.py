"""Exploratory annealed decoding: the schedule's listed values and the processor (§3)."""

from __future__ import annotations

import math

import pytest
import torch

from strategies.sampling.ead import EADConfig, apply_ead, ead_temperature, suggest_decay

DEFAULT = EADConfig()


def test_it_has_the_reference_defaults() -> None:
    assert (DEFAULT.tau_max, DEFAULT.tau_min, DEFAULT.decay, DEFAULT.warmup) == (1.2, 0.1, 25.0, 10)


def test_it_gives_the_listed_temperatures() -> None:
    assert ead_temperature(10, DEFAULT) == pytest.approx(2.2 - math.exp(10 / 500), abs=1e-12)
    assert ead_temperature(10, DEFAULT) == pytest.approx(1.18, abs=5e-3)
    assert ead_temperature(200, DEFAULT) == pytest.approx(0.71, abs=5e-3)
    assert ead_temperature(200, DEFAULT) == pytest.approx(2.2 - math.exp(0.4), abs=1e-12)


def test_it_crosses_one_near_91_tokens() -> None:
    crossing = 500 * math.log(1.2)  # 91.16
    assert crossing == pytest.approx(91, abs=0.5)
    assert ead_temperature(91, DEFAULT) > 1.0 > ead_temperature(92, DEFAULT)


def test_it_reaches_the_floor_near_371_tokens() -> None:
    floor_at = 500 * math.log(2.1)  # 370.97
    assert floor_at == pytest.approx(371, abs=0.5)
    assert ead_temperature(370, DEFAULT) > 0.1
    assert ead_temperature(371, DEFAULT) == 0.1
    assert ead_temperature(5000, DEFAULT) == 0.1


def test_it_leaves_the_warmup_alone() -> None:
    assert [ead_temperature(t, DEFAULT) for t in range(10)] == [1.0] * 10
    assert ead_temperature(0, EADConfig(warmup=0)) == pytest.approx(1.2)
    scores = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    got = apply_ead(scores, torch.tensor([0, 9, 10]), DEFAULT)
    assert torch.equal(got[:2], scores[:2])
    assert not torch.equal(got[2], scores[2])


def test_it_divides_each_row_by_its_own_temperature() -> None:
    positions = torch.tensor([0, 10, 91, 200, 371, 1000])
    scores = torch.randn(6, 32, generator=torch.Generator().manual_seed(1)) * 3
    before = scores.clone()
    got = apply_ead(scores, positions, DEFAULT)
    for row, t in enumerate(positions.tolist()):
        expected = scores[row] / ead_temperature(t, DEFAULT)
        torch.testing.assert_close(got[row], expected, rtol=1e-6, atol=0)
    assert torch.equal(scores, before)


def test_it_suggests_the_decay_for_a_length() -> None:
    assert suggest_decay(371) == pytest.approx(25.0, abs=0.01)
    d = suggest_decay(1000)
    assert d == pytest.approx(1000 / (20 * math.log(2.1)))
    config = EADConfig(decay=d)
    assert ead_temperature(999, config) > 0.1
    assert ead_temperature(1001, config) == 0.1
    assert suggest_decay(100, tau_max=1.0, tau_min=0.5) == pytest.approx(100 / (20 * math.log(1.5)))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tau_min": 0.0}, "tau_min"),
        ({"tau_min": -0.1}, "tau_min"),
        ({"tau_max": 0.0}, "tau_max"),
        ({"tau_max": 0.5, "tau_min": 0.6}, "tau_min"),
        ({"decay": 0.0}, "decay"),
        ({"decay": float("inf")}, "decay"),
        ({"warmup": -1}, "warmup"),
        ({"warmup": 1.5}, "warmup"),
    ],
)
def test_it_validates_the_config(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        EADConfig(**kwargs)  # type: ignore[arg-type]


def test_it_validates_suggest_decay() -> None:
    with pytest.raises(ValueError, match="length"):
        suggest_decay(0)
    with pytest.raises(ValueError, match="tau_min"):
        suggest_decay(100, tau_min=0.0)
