"""Min-p, typical-p, epsilon and eta against the transformers warpers, plus hand cases (§1)."""

from __future__ import annotations

import math

import pytest
import torch

from strategies.sampling.epsilon import EpsilonConfig, apply_epsilon
from strategies.sampling.eta import EtaConfig, apply_eta, eta_threshold
from strategies.sampling.greedy import GreedyConfig, apply_greedy
from strategies.sampling.min_p import MinPConfig, apply_min_p
from strategies.sampling.typical import TypicalConfig, apply_typical

hf = pytest.importorskip("transformers.generation.logits_process")

INF = float("-inf")


def _batch(seed: int, batch: int = 8, vocab: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    scale = 1 + 5 * torch.rand(batch, 1, generator=generator)  # flat to peaked rows
    scores = torch.randn(batch, vocab, generator=generator) * scale
    positions = torch.randint(0, 20, (batch,), generator=generator)
    return scores, positions


def _with_masked(scores: torch.Tensor, seed: int) -> torch.Tensor:
    """Set a few logits to -inf, as an earlier truncation step would."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(scores.shape, generator=generator) < 0.3
    mask[:, 0] = False
    return scores.masked_fill(mask, INF)


def _input_ids(batch: int) -> torch.Tensor:
    return torch.zeros(batch, 3, dtype=torch.long)


def _zeros(batch: int) -> torch.Tensor:
    return torch.zeros(batch, dtype=torch.long)


def _assert_same(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert torch.equal(got.isinf(), expected.isinf())
    assert torch.equal(got, expected)


CASES = [(seed, masked) for seed in range(6) for masked in (False, True)]


@pytest.mark.parametrize(("min_p", "keep"), [(0.0, 1), (0.02, 1), (0.1, 1), (0.5, 3), (1.0, 1)])
@pytest.mark.parametrize(("seed", "masked"), CASES)
def test_it_truncates_like_hf_min_p(min_p: float, keep: int, seed: int, masked: bool) -> None:
    scores, positions = _batch(seed)
    scores = _with_masked(scores, seed) if masked else scores
    expected = hf.MinPLogitsWarper(min_p=min_p, min_tokens_to_keep=keep)(
        _input_ids(8), scores.clone()
    )
    got = apply_min_p(scores, positions, MinPConfig(min_p=min_p, min_tokens_to_keep=keep))
    _assert_same(got, expected)


@pytest.mark.parametrize(("mass", "keep"), [(0.05, 1), (0.2, 1), (0.5, 2), (0.9, 1), (0.99, 1)])
@pytest.mark.parametrize(("seed", "masked"), CASES)
def test_it_truncates_like_hf_typical(mass: float, keep: int, seed: int, masked: bool) -> None:
    scores, positions = _batch(seed)
    scores = _with_masked(scores, seed) if masked else scores
    expected = hf.TypicalLogitsWarper(mass=mass, min_tokens_to_keep=keep)(
        _input_ids(8), scores.clone()
    )
    config = TypicalConfig(typical_p=mass, min_tokens_to_keep=keep)
    _assert_same(apply_typical(scores, positions, config), expected)


@pytest.mark.parametrize(("epsilon", "keep"), [(1e-4, 1), (3e-4, 1), (3e-3, 2), (0.05, 1)])
@pytest.mark.parametrize(("seed", "masked"), CASES)
def test_it_truncates_like_hf_epsilon(epsilon: float, keep: int, seed: int, masked: bool) -> None:
    scores, positions = _batch(seed)
    scores = _with_masked(scores, seed) if masked else scores
    expected = hf.EpsilonLogitsWarper(epsilon=epsilon, min_tokens_to_keep=keep)(
        _input_ids(8), scores.clone()
    )
    config = EpsilonConfig(epsilon=epsilon, min_tokens_to_keep=keep)
    _assert_same(apply_epsilon(scores, positions, config), expected)


@pytest.mark.parametrize(("epsilon", "keep"), [(3e-4, 1), (2e-3, 1), (2e-2, 3), (0.2, 1)])
@pytest.mark.parametrize(("seed", "masked"), CASES)
def test_it_truncates_like_hf_eta(epsilon: float, keep: int, seed: int, masked: bool) -> None:
    scores, positions = _batch(seed)
    scores = _with_masked(scores, seed) if masked else scores
    expected = hf.EtaLogitsWarper(epsilon=epsilon, min_tokens_to_keep=keep)(
        _input_ids(8), scores.clone()
    )
    config = EtaConfig(epsilon=epsilon, min_tokens_to_keep=keep)
    _assert_same(apply_eta(scores, positions, config), expected)


def test_it_scales_min_p_by_the_top_probability() -> None:
    scores = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]]).log()
    kept = ~apply_min_p(scores, _zeros(2), MinPConfig(min_p=0.5)).isinf()
    # row 0: threshold 0.25 keeps 0.5 and 0.3; row 1: threshold 0.125 keeps all
    assert kept.tolist() == [[True, True, False, False], [True, True, True, True]]
    kept = ~apply_min_p(scores, _zeros(2), MinPConfig(min_p=1.0)).isinf()
    assert kept.tolist() == [[True, False, False, False], [True, True, True, True]]


def test_it_keeps_the_typical_set() -> None:
    scores = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    # H = 1.142 nats; |surprisal - H| = 0.449, 0.062, 0.755, 1.854: order 1, 0, 2, 3
    kept = ~apply_typical(scores, _zeros(1), TypicalConfig(typical_p=0.5)).isinf()
    assert kept.tolist() == [[True, True, False, False]]  # 0.3 < 0.5, 0.8 crosses: kept
    kept = ~apply_typical(scores, _zeros(1), TypicalConfig(typical_p=0.9)).isinf()
    assert kept.tolist() == [[True, True, True, False]]
    assert torch.equal(apply_typical(scores, _zeros(1), TypicalConfig(typical_p=1.0)), scores)


def test_it_cuts_at_epsilon_and_keeps_the_top_token() -> None:
    scores = torch.tensor([[0.6, 0.3, 0.1], [0.34, 0.33, 0.33]]).log()
    kept = ~apply_epsilon(scores, _zeros(2), EpsilonConfig(epsilon=0.2)).isinf()
    assert kept.tolist() == [[True, True, False], [True, True, True]]
    kept = ~apply_epsilon(scores, _zeros(2), EpsilonConfig(epsilon=0.5)).isinf()
    assert kept.tolist() == [[True, False, False], [True, False, False]]
    assert torch.equal(apply_epsilon(scores, _zeros(2), EpsilonConfig(epsilon=0)), scores)


def test_it_computes_eta_from_the_entropy_in_nats() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1, 0.0]])
    entropy = -sum(p * math.log(p) for p in (0.7, 0.2, 0.1))  # the 0 adds 0 (xlogy)
    eps = 0.25
    expected = math.sqrt(eps) * math.exp(-entropy)  # 0.2242 < eps: the entropy term rules
    eta = eta_threshold(probs.log(), eps)
    assert eta.shape == (1, 1)
    assert eta.item() == pytest.approx(expected, rel=1e-6)
    kept = ~apply_eta(probs.log(), _zeros(1), EtaConfig(epsilon=eps)).isinf()
    assert kept.tolist() == [[True, False, False, False]]
    assert eta_threshold(probs.log(), 0.15).item() == pytest.approx(0.15)  # 0.1737 > eps
    kept = ~apply_eta(probs.log(), _zeros(1), EtaConfig(epsilon=0.15)).isinf()
    assert kept.tolist() == [[True, True, False, False]]
    # a flat row has high entropy: eta = sqrt(eps) / 8 drops below epsilon
    flat = torch.zeros(1, 8)
    assert eta_threshold(flat, eps).item() == pytest.approx(math.sqrt(eps) / 8, rel=1e-6)


def test_it_never_mutates_its_input() -> None:
    scores, positions = _batch(3)
    before = scores.clone()
    outputs = [
        apply_min_p(scores, positions, MinPConfig(min_p=0.2)),
        apply_typical(scores, positions, TypicalConfig(typical_p=0.5)),
        apply_epsilon(scores, positions, EpsilonConfig(epsilon=0.01)),
        apply_eta(scores, positions, EtaConfig(epsilon=0.01)),
    ]
    assert torch.equal(scores, before)
    assert all(out.data_ptr() != scores.data_ptr() for out in outputs)


def test_it_rejects_badly_shaped_batches() -> None:
    with pytest.raises(ValueError, match="positions"):
        apply_min_p(torch.zeros(2, 4), _zeros(3), MinPConfig())
    with pytest.raises(ValueError, match="scores"):
        apply_eta(torch.zeros(4), _zeros(1), EtaConfig())


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: MinPConfig(min_p=-0.1), "min_p"),
        (lambda: MinPConfig(min_p=1.1), "min_p"),
        (lambda: MinPConfig(min_tokens_to_keep=0), "min_tokens_to_keep"),
        (lambda: TypicalConfig(typical_p=0), "typical_p"),
        (lambda: TypicalConfig(typical_p=1.5), "typical_p"),
        (lambda: TypicalConfig(typical_p=float("nan")), "typical_p"),
        (lambda: EpsilonConfig(epsilon=1.0), "epsilon"),
        (lambda: EpsilonConfig(epsilon=-1e-4), "epsilon"),
        (lambda: EtaConfig(epsilon=1.0), "epsilon"),
        (lambda: EtaConfig(epsilon=True), "epsilon"),
        (lambda: EtaConfig(min_tokens_to_keep=0), "min_tokens_to_keep"),
    ],
)
def test_it_validates_the_configs(factory: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        factory()  # type: ignore[operator]


def test_it_keeps_only_the_argmax_when_greedy() -> None:
    scores, positions = _batch(5)
    got = apply_greedy(scores, positions, GreedyConfig())
    assert (~got.isinf()).sum(dim=-1).tolist() == [1] * 8
    assert torch.equal(got.argmax(dim=-1), scores.argmax(dim=-1))
    ties = apply_greedy(torch.tensor([[2.0, 5.0, 5.0]]), _zeros(1), GreedyConfig())
    assert ties.tolist() == [[INF, 5.0, INF]]  # the first of tied maxima, as torch.argmax
