"""Temperature-mix pools: per-sample temperatures and a per-row processor."""

from __future__ import annotations

import pytest
import torch

from strategies.sampling.temperature import TemperatureConfig, apply_temperature
from strategies.sampling.temperature_mix import (
    TemperatureMixConfig,
    apply_row_temperatures,
    temperature_mix_processor,
)

hf = pytest.importorskip("transformers.generation.logits_process")


def test_it_cycles_through_the_temperatures_by_sample_index() -> None:
    config = TemperatureMixConfig(temperatures=(0.6, 0.8, 1.0))
    assert [config.temperature_for_sample(i) for i in range(7)] == [
        0.6,
        0.8,
        1.0,
        0.6,
        0.8,
        1.0,
        0.6,
    ]
    assert config.temperatures_for([4, 0, 2]).tolist() == pytest.approx([0.8, 0.6, 1.0])


def test_it_scales_each_row_like_hf_at_its_own_temperature() -> None:
    config = TemperatureMixConfig(temperatures=(0.3, 0.7, 1.0, 1.9))
    indices = [5, 0, 3, 2, 6, 1]
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 40, generator=generator) * 3
    before = scores.clone()
    got = temperature_mix_processor(config, indices)(scores, torch.zeros(6, dtype=torch.long))
    for row, index in enumerate(indices):
        temperature = config.temperature_for_sample(index)
        warper = hf.TemperatureLogitsWarper(temperature)
        expected = warper(torch.zeros(1, 2, dtype=torch.long), scores[row : row + 1].clone())
        assert torch.equal(got[row : row + 1], expected)
        single = apply_temperature(
            scores[row : row + 1],
            torch.zeros(1, dtype=torch.long),
            TemperatureConfig(temperature=temperature),
        )
        assert torch.equal(got[row : row + 1], single)
    assert torch.equal(scores, before)


def test_it_checks_the_row_temperatures() -> None:
    scores = torch.zeros(2, 3)
    positions = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="temperatures must have shape"):
        apply_row_temperatures(scores, positions, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="> 0"):
        apply_row_temperatures(scores, positions, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="temperatures must have shape"):
        temperature_mix_processor(TemperatureMixConfig(), [0, 1, 2])(scores, positions)


@pytest.mark.parametrize(
    "temperatures",
    [(), [0.5, 1.0], (0.0,), (0.5, -1.0), (5.5,), (float("nan"),), (True,)],
)
def test_it_validates_the_temperatures(temperatures: object) -> None:
    with pytest.raises(ValueError, match="temperatures"):
        TemperatureMixConfig(temperatures=temperatures)  # type: ignore[arg-type]


def test_it_validates_the_sample_index() -> None:
    with pytest.raises(ValueError, match="index"):
        TemperatureMixConfig().temperature_for_sample(-1)
