"""Epsilon truncation (HF ``EpsilonLogitsWarper``): keep tokens with p >= epsilon."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from strategies.sampling._checks import check_number
from strategies.sampling.base import check_batch, check_min_tokens_to_keep

__all__ = ["EpsilonConfig", "apply_epsilon", "keep_above"]


@dataclass(frozen=True, kw_only=True)
class EpsilonConfig:
    """Keep tokens whose probability is at least ``epsilon`` (0 disables)."""

    epsilon: float = 3e-4
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, 0.0, 1.0, high_open=True)
        check_min_tokens_to_keep(self.min_tokens_to_keep)


def keep_above(
    scores: torch.Tensor, probs: torch.Tensor, cutoff: torch.Tensor | float, min_tokens_to_keep: int
) -> torch.Tensor:
    """Return ``scores`` with tokens of ``probs < cutoff`` at -inf, keeping the top logits.

    A token survives when its logit reaches the ``min_tokens_to_keep``-th largest (HF's
    rule, so ties with that logit survive too).

    >>> import torch
    >>> keep_above(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.7, 0.3]]), 0.5, 1)
    tensor([[1., -inf]])
    """
    keep = min(min_tokens_to_keep, scores.shape[-1])
    kth_largest = torch.topk(scores, keep, dim=-1).values[..., -1:]
    remove = (probs < cutoff) & (scores < kth_largest)
    return scores.masked_fill(remove, float("-inf"))


def apply_epsilon(
    scores: torch.Tensor, positions: torch.Tensor, config: EpsilonConfig
) -> torch.Tensor:
    """Return a copy of ``scores`` with every token of probability below ``epsilon`` at -inf.

    >>> import torch
    >>> logits = torch.tensor([[0.9, 0.0999, 0.0001]]).log()
    >>> apply_epsilon(logits, torch.zeros(1, dtype=torch.long), EpsilonConfig()).isinf()
    tensor([[False, False,  True]])
    """
    check_batch(scores, positions)
    if config.epsilon == 0:
        return scores.clone()
    return keep_above(scores, scores.softmax(dim=-1), config.epsilon, config.min_tokens_to_keep)
