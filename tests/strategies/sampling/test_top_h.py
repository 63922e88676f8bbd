"""Top-H: the vectorised closed form against the reference's greedy loop (§2)."""

from __future__ import annotations

import math

import pytest
import torch

from strategies.sampling.top_h import TopHConfig, apply_top_h, top_h_counts

INF = float("-inf")


def _zeros(batch: int) -> torch.Tensor:
    return torch.zeros(batch, dtype=torch.long)


def _reference_kept(row: torch.Tensor, alpha: float, top_n: int, temperature: float) -> set[int]:
    """The reference ``logit_processor.py`` loop for one row (batch size 1, bias 0).

    It works in bits on the un-renormalised top-n probabilities; the budget is written as
    ``alpha * A * (H(q) - log A)`` with ``q = p / A``, and a candidate is rejected when the
    renormalised entropy of the grown set would pass the budget's renormalised value.
    """
    probs = (row / temperature).softmax(dim=-1).double()
    top_probs, top_indices = torch.topk(probs, min(top_n, row.numel()))
    p = top_probs.tolist()
    mass = sum(p)
    q = [x / mass for x in p]
    entropy_q = -sum(x * math.log2(x) for x in q if x > 0)
    tau = alpha * mass * (entropy_q - math.log2(mass))

    def term(x: float) -> float:
        return -x * math.log2(x) if x > 0 else 0.0

    selected = [0]
    cumulative = term(p[0])
    sigma = p[0]
    j = 1
    while j < len(p):  # the reference has no such bound and overruns with alpha = 1
        new_sigma = sigma + p[j]
        new_cumulative = cumulative + term(p[j])
        if new_cumulative / new_sigma + math.log2(new_sigma) > tau / new_sigma + math.log2(
            new_sigma
        ):
            break
        selected.append(j)
        cumulative, sigma = new_cumulative, new_sigma
        j += 1
    return {int(top_indices[i]) for i in selected}


def test_it_matches_the_reference_loop_on_500_random_distributions() -> None:
    generator = torch.Generator().manual_seed(2024)
    for _ in range(500):
        vocab = int(torch.randint(20, 300, (1,), generator=generator))
        sharpness = float(torch.rand(1, generator=generator)) * 6 + 0.2
        row = torch.randn(1, vocab, generator=generator) * sharpness
        alpha = float(torch.rand(1, generator=generator)) * 0.9 + 0.05
        top_n = int(torch.randint(1, 150, (1,), generator=generator))
        temperature = (0.5, 1.0, 2.0)[int(torch.randint(0, 3, (1,), generator=generator))]
        config = TopHConfig(alpha=alpha, top_n=top_n, temperature=temperature)
        got = apply_top_h(row, _zeros(1), config)
        kept = set(torch.nonzero(~got[0].isinf()).flatten().tolist())
        assert kept == _reference_kept(row[0], alpha, top_n, temperature)
        assert torch.equal(got[~got.isinf()], row[~got.isinf()])  # unscaled logits


def test_it_keeps_the_whole_pool_at_alpha_one() -> None:
    generator = torch.Generator().manual_seed(7)
    scores = torch.randn(4, 200, generator=generator) * 3
    got = apply_top_h(scores, _zeros(4), TopHConfig(alpha=1.0, top_n=100))
    assert (~got.isinf()).sum(dim=-1).tolist() == [100] * 4
    top = torch.topk(scores, 100, dim=-1).indices
    assert not got.gather(-1, top).isinf().any()
    small = apply_top_h(scores[:, :30], _zeros(4), TopHConfig(alpha=1.0, top_n=100))
    assert not small.isinf().any()  # the pool is capped at the vocabulary


def test_it_treats_batch_rows_independently() -> None:
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(6, 80, generator=generator) * torch.linspace(0.5, 5, 6)[:, None]
    config = TopHConfig(alpha=0.4, top_n=50, temperature=1.5)
    batched = apply_top_h(scores, _zeros(6), config)
    for row in range(6):
        alone = apply_top_h(scores[row : row + 1], _zeros(1), config)
        assert torch.equal(batched[row : row + 1], alone)


def test_it_counts_by_the_closed_form_by_hand() -> None:
    probs = torch.tensor([[0.5, 0.25, 0.125, 0.125], [0.97, 0.01, 0.01, 0.01]])
    # row 0: S = 0.347, 0.693, 0.953, 1.213 nats; row 1: S = 0.030, 0.076, 0.122, 0.168
    assert top_h_counts(probs, 0.6).tolist() == [2, 2]
    assert top_h_counts(probs, 0.1).tolist() == [1, 1]  # max(1, 0) for row 0
    assert top_h_counts(probs, 1.0).tolist() == [4, 4]


def test_it_uses_the_temperature_for_the_probabilities_only() -> None:
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0]])
    cold = apply_top_h(scores, _zeros(1), TopHConfig(alpha=0.8, temperature=0.5))
    hot = apply_top_h(scores, _zeros(1), TopHConfig(alpha=0.8, temperature=2.0))
    assert (~cold.isinf()).sum().item() == 1
    assert (~hot.isinf()).sum().item() == 3
    assert torch.equal(hot[~hot.isinf()], scores[~hot.isinf()])
    per_row = apply_top_h(
        scores.repeat(2, 1), _zeros(2), TopHConfig(alpha=0.8), temperatures=torch.tensor([0.5, 2.0])
    )
    assert torch.equal(per_row, torch.cat([cold, hot]))


def test_it_respects_min_tokens_to_keep_and_never_mutates() -> None:
    scores = torch.tensor([[10.0, 0.0, -1.0, -2.0]])
    before = scores.clone()
    got = apply_top_h(scores, _zeros(1), TopHConfig(alpha=0.05, min_tokens_to_keep=3))
    assert (~got.isinf()).sum() == 3
    got = apply_top_h(scores, _zeros(1), TopHConfig(alpha=0.05, top_n=1, min_tokens_to_keep=2))
    assert (~got.isinf()).sum() == 2
    assert torch.equal(scores, before)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.01}, "alpha"),
        ({"top_n": 0}, "top_n"),
        ({"top_n": 2.0}, "top_n"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": 6.0}, "temperature"),
        ({"min_tokens_to_keep": 0}, "min_tokens_to_keep"),
    ],
)
def test_it_validates_the_config(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TopHConfig(**kwargs)  # type: ignore[arg-type]
