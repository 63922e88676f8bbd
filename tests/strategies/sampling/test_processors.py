"""Temperature, top-k and top-p against the transformers warpers, plus hand cases (§1)."""

from __future__ import annotations

import pytest
import torch

from strategies.sampling.temperature import TemperatureConfig, apply_temperature
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p

hf = pytest.importorskip("transformers.generation.logits_process")

INF = float("-inf")


def _batch(seed: int, batch: int = 6, vocab: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, vocab, generator=generator) * 3
    positions = torch.randint(0, 20, (batch,), generator=generator)
    return scores, positions


def _input_ids(batch: int) -> torch.Tensor:
    return torch.zeros(batch, 3, dtype=torch.long)


def _zeros(batch: int) -> torch.Tensor:
    return torch.zeros(batch, dtype=torch.long)


@pytest.mark.parametrize("temperature", [0.1, 0.7, 1.0, 1.5, 5.0])
def test_it_scales_like_hf_temperature(temperature: float) -> None:
    for seed in range(5):
        scores, positions = _batch(seed)
        expected = hf.TemperatureLogitsWarper(temperature)(_input_ids(6), scores.clone())
        got = apply_temperature(scores, positions, TemperatureConfig(temperature=temperature))
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize(("top_k", "keep"), [(1, 1), (5, 1), (5, 8), (39, 1), (40, 1), (100, 1)])
def test_it_truncates_like_hf_top_k(top_k: int, keep: int) -> None:
    for seed in range(5):
        scores, positions = _batch(seed)
        warper = hf.TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=keep)
        expected = warper(_input_ids(6), scores.clone())
        got = apply_top_k(scores, positions, TopKConfig(top_k=top_k, min_tokens_to_keep=keep))
        assert torch.equal(got, expected)


@pytest.mark.parametrize(
    ("top_p", "keep"), [(0.01, 1), (0.3, 1), (0.5, 3), (0.9, 1), (0.95, 1), (0.999, 1), (1.0, 1)]
)
def test_it_truncates_like_hf_top_p(top_p: float, keep: int) -> None:
    for seed in range(5):
        scores, positions = _batch(seed)
        warper = hf.TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=keep)
        expected = warper(_input_ids(6), scores.clone())
        got = apply_top_p(scores, positions, TopPConfig(top_p=top_p, min_tokens_to_keep=keep))
        assert torch.equal(got, expected)


def test_it_keeps_ties_with_the_kth_logit() -> None:
    scores = torch.tensor([[1.0, 3.0, 2.0, 2.0, 0.0], [5.0, 5.0, 5.0, 1.0, 0.0]])
    got = apply_top_k(scores, _zeros(2), TopKConfig(top_k=2))
    expected = torch.tensor([[INF, 3.0, 2.0, 2.0, INF], [5.0, 5.0, 5.0, INF, INF]])
    assert torch.equal(got, expected)


def test_it_keeps_the_token_that_crosses_the_threshold() -> None:
    scores = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = ~apply_top_p(scores, _zeros(1), TopPConfig(top_p=0.6)).isinf()
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.6, 0.8 crosses: kept
    kept = ~apply_top_p(scores, _zeros(1), TopPConfig(top_p=0.5)).isinf()
    assert kept.tolist() == [[True, False, False, False]]  # exactly reaching top_p suffices
    kept = ~apply_top_p(scores, _zeros(1), TopPConfig(top_p=0.01)).isinf()
    assert kept.tolist() == [[True, False, False, False]]  # at least one token survives


def test_it_respects_min_tokens_to_keep() -> None:
    scores = torch.tensor([[10.0, 0.0, -1.0, -2.0]])
    assert (
        ~apply_top_p(scores, _zeros(1), TopPConfig(top_p=0.1, min_tokens_to_keep=3)).isinf()
    ).sum() == 3
    assert (
        ~apply_top_k(scores, _zeros(1), TopKConfig(top_k=1, min_tokens_to_keep=2)).isinf()
    ).sum() == 2


def test_it_disables_top_k_at_zero() -> None:
    scores, positions = _batch(0)
    assert torch.equal(apply_top_k(scores, positions, TopKConfig(top_k=0)), scores)


def test_it_never_mutates_its_input() -> None:
    scores, positions = _batch(1)
    before = scores.clone()
    outputs = [
        apply_temperature(scores, positions, TemperatureConfig(temperature=0.5)),
        apply_top_k(scores, positions, TopKConfig(top_k=3)),
        apply_top_k(scores, positions, TopKConfig(top_k=0)),
        apply_top_p(scores, positions, TopPConfig(top_p=0.5)),
    ]
    assert torch.equal(scores, before)
    assert all(out.data_ptr() != scores.data_ptr() for out in outputs)


def test_it_rejects_badly_shaped_batches() -> None:
    config = TopKConfig(top_k=2)
    with pytest.raises(ValueError, match="scores"):
        apply_top_k(torch.zeros(4), _zeros(1), config)
    with pytest.raises(ValueError, match="positions"):
        apply_top_k(torch.zeros(2, 4), _zeros(3), config)
    with pytest.raises(ValueError, match="floating"):
        apply_top_k(torch.zeros(2, 4, dtype=torch.long), _zeros(2), config)
    with pytest.raises(ValueError, match="integer"):
        apply_top_k(torch.zeros(2, 4), torch.zeros(2), config)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: TemperatureConfig(temperature=0), "temperature"),
        (lambda: TemperatureConfig(temperature=5.5), "temperature"),
        (lambda: TemperatureConfig(temperature=float("nan")), "temperature"),
        (lambda: TopKConfig(top_k=-1), "top_k"),
        (lambda: TopKConfig(top_k=2, min_tokens_to_keep=0), "min_tokens_to_keep"),
        (lambda: TopPConfig(top_p=0), "top_p"),
        (lambda: TopPConfig(top_p=1.2), "top_p"),
    ],
)
def test_it_validates_processor_configs(factory: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        factory()  # type: ignore[operator]
