"""Greedy decoding as a processor: keep only each row's most likely token."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from strategies.sampling.base import check_batch

__all__ = ["GreedyConfig", "apply_greedy"]


@dataclass(frozen=True, kw_only=True)
class GreedyConfig:
    """Greedy decoding has no settings; ``DecodingConfig(temperature=0)`` selects it in a pool."""


def apply_greedy(
    scores: torch.Tensor, positions: torch.Tensor, config: GreedyConfig
) -> torch.Tensor:
    """Return a copy of ``scores`` with every logit but the row's argmax at -inf.

    Sampling from the result always draws the argmax; of tied maxima the first is kept,
    as ``torch.argmax`` (and so HF's greedy search) picks it.

    >>> import torch
    >>> apply_greedy(torch.tensor([[1.0, 3.0, 3.0]]), torch.zeros(1, dtype=torch.long),
    ...              GreedyConfig())
    tensor([[-inf, 3., -inf]])
    """
    check_batch(scores, positions)
    best = scores.argmax(dim=-1, keepdim=True)
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, best, True)
    return scores.masked_fill(~keep, float("-inf"))
