"""Top-H decoding: entropy-bounded truncation of the top candidates (ALGORITHMS §2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from strategies.sampling._checks import check_int, check_number
from strategies.sampling.base import check_batch, check_min_tokens_to_keep
from strategies.sampling.temperature import MAX_TEMPERATURE

__all__ = ["TopHConfig", "apply_top_h", "top_h_counts"]


@dataclass(frozen=True, kw_only=True)
class TopHConfig:
    """Keep the longest prefix of the ``top_n`` most likely tokens within ``alpha`` of the
    pool's entropy; ``temperature`` only shapes the probabilities used for that choice."""

    alpha: float = 0.4
    top_n: int = 100
    temperature: float = 1.0
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        check_number("alpha", self.alpha, 0.0, 1.0, low_open=True)
        check_int("top_n", self.top_n, 1)
        check_number("temperature", self.temperature, 0.0, MAX_TEMPERATURE, low_open=True)
        check_min_tokens_to_keep(self.min_tokens_to_keep)


def top_h_counts(probs_sorted: torch.Tensor, alpha: float) -> torch.Tensor:
    """Return ``m = max(1, #{j: S_j <= alpha * S_n})`` per row of descending probabilities.

    ``S_j`` is the partial entropy sum ``-sum_{i<=j} p_i log p_i`` over the (not
    renormalised) candidates; this closed form equals the reference's greedy loop.

    >>> import torch
    >>> # S = 0.35, 0.69, 0.95, 1.21 nats; budget 0.6 * 1.21 = 0.73 admits two tokens
    >>> top_h_counts(torch.tensor([[0.5, 0.25, 0.125, 0.125]]), 0.6)
    tensor([2])
    """
    partial_entropy = torch.cumsum(-torch.special.xlogy(probs_sorted, probs_sorted), dim=-1)
    budget = alpha * partial_entropy[..., -1:]
    return (partial_entropy <= budget).sum(dim=-1).clamp(min=1)


def apply_top_h(
    scores: torch.Tensor,
    positions: torch.Tensor,
    config: TopHConfig,
    *,
    temperatures: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return a copy of the unscaled ``scores`` with every token outside the Top-H set at -inf.

    Probabilities are ``softmax(scores / T)`` over the full vocabulary, with ``T`` taken
    from ``config.temperature`` or, when given, per row from ``temperatures`` ([B]). The pool
    is the ``min(top_n, V)`` most likely tokens; at least ``min_tokens_to_keep`` survive.
    Unlike HF's ``TopHLogitsWarper``, which renormalises over the pool, this follows the
    reference code (no renormalisation), so the kept sets can differ.

    >>> import torch
    >>> logits = torch.tensor([[0.5, 0.25, 0.125, 0.125]]).log()
    >>> config = TopHConfig(alpha=0.6)
    >>> apply_top_h(logits, torch.zeros(1, dtype=torch.long), config).isinf()
    tensor([[False, False,  True,  True]])
    """
    check_batch(scores, positions)
    if temperatures is None:
        probs = (scores / config.temperature).softmax(dim=-1)
    else:
        probs = (scores / temperatures.to(scores.dtype)[:, None]).softmax(dim=-1)
    vocab = scores.shape[-1]
    pool = min(max(config.top_n, config.min_tokens_to_keep), vocab)
    top_probs, top_indices = torch.topk(probs, pool, dim=-1)
    counts = top_h_counts(top_probs, config.alpha).clamp(min=min(config.min_tokens_to_keep, pool))
    ranks = torch.arange(pool, device=scores.device)
    keep_sorted = ranks[None, :] < counts[:, None]
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, top_indices, keep_sorted)
    return scores.masked_fill(~keep, float("-inf"))
