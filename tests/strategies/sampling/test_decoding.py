"""DecodingConfig validation and the chained processor (temperature -> top-k -> top-p)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from strategies.sampling.decoding import DecodingConfig, build_processor

hf = pytest.importorskip("transformers.generation.logits_process")


def _hf_chain(config: DecodingConfig) -> object:
    warpers = hf.LogitsProcessorList()
    if config.temperature != 1.0:
        warpers.append(hf.TemperatureLogitsWarper(config.temperature))
    if config.top_k != 0:
        warpers.append(hf.TopKLogitsWarper(config.top_k))
    if config.top_p < 1.0:
        warpers.append(hf.TopPLogitsWarper(config.top_p))
    return warpers


@pytest.mark.parametrize(
    "config",
    [
        DecodingConfig(),
        DecodingConfig(temperature=0.7),
        DecodingConfig(temperature=0.6, top_p=0.95),
        DecodingConfig(temperature=1.3, top_k=20),
        DecodingConfig(temperature=0.8, top_k=10, top_p=0.5),
        DecodingConfig(top_k=3, top_p=0.2),
    ],
)
def test_it_chains_like_hf(config: DecodingConfig) -> None:
    process = build_processor(config)
    warpers = _hf_chain(config)
    for seed in range(4):
        generator = torch.Generator().manual_seed(seed)
        scores = torch.randn(5, 64, generator=generator) * 4
        positions = torch.arange(5)
        before = scores.clone()
        got = process(scores, positions)
        expected = warpers(torch.zeros(5, 2, dtype=torch.long), scores.clone())  # type: ignore[operator]
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        assert torch.equal(scores, before)


def test_it_applies_no_warpers_when_greedy() -> None:
    config = DecodingConfig(temperature=0, top_k=2, top_p=0.1)
    assert config.is_greedy
    scores = torch.tensor([[1.0, 3.0, 2.0]])
    got = build_processor(config)(scores, torch.zeros(1, dtype=torch.long))
    assert torch.equal(got, scores)
    assert got.data_ptr() != scores.data_ptr()
    assert not DecodingConfig(temperature=0.1).is_greedy


def test_it_has_sensible_defaults() -> None:
    config = DecodingConfig()
    assert (config.temperature, config.top_p, config.top_k, config.max_new_tokens) == (
        1.0,
        1.0,
        0,
        256,
    )


def test_it_is_frozen_and_keyword_only() -> None:
    config = DecodingConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.temperature = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        DecodingConfig(0.5)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 5.01}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.01}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 8193}, "max_new_tokens"),
    ],
)
def test_it_names_the_invalid_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DecodingConfig(**kwargs)  # type: ignore[arg-type]


def test_it_accepts_the_bounds() -> None:
    DecodingConfig(temperature=0, top_p=1.0, top_k=0, max_new_tokens=1)
    DecodingConfig(temperature=5, top_p=1e-6, top_k=100_000, max_new_tokens=8192)
