"""Nucleus (top-p) truncation (HF ``TopPLogitsWarper``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from strategies.sampling.base import check_batch, check_min_tokens_to_keep

__all__ = ["TopPConfig", "apply_top_p"]


@dataclass(frozen=True, kw_only=True)
class TopPConfig:
    """Keep the smallest set of most likely tokens whose probability mass reaches ``top_p``."""

    top_p: float = 1.0
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        p = self.top_p
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
            raise ValueError(f"top_p must be a finite number, got {p!r}")
        if not 0 < p <= 1:
            raise ValueError(f"top_p must be > 0 and <= 1, got {p!r}")
        check_min_tokens_to_keep(self.min_tokens_to_keep)


def apply_top_p(scores: torch.Tensor, positions: torch.Tensor, config: TopPConfig) -> torch.Tensor:
    """Return a copy of ``scores`` keeping each row's nucleus; the rest becomes -inf.

    Sorted ascending, a token is dropped when the cumulative probability up to and
    including it is ``<= 1 - top_p``; so the token that crosses the threshold is kept,
    and the ``min_tokens_to_keep`` most likely tokens always are (exactly HF's rule).

    >>> import torch
    >>> logits = torch.tensor([[0.5, 0.3, 0.2]]).log()
    >>> apply_top_p(logits, torch.zeros(1, dtype=torch.long), TopPConfig(top_p=0.6)).isinf()
    tensor([[False, False,  True]])
    """
    check_batch(scores, positions)
    sorted_logits, sorted_indices = torch.sort(scores, descending=False, dim=-1)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_remove = cumulative <= (1 - config.top_p)
    sorted_remove[..., -config.min_tokens_to_keep :] = False
    remove = sorted_remove.scatter(-1, sorted_indices, sorted_remove)
    return scores.masked_fill(remove, float("-inf"))
